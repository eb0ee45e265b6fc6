"""Scenario 4: import cost of the hook modules, and of a DAG file with asset watchers (a hook and every
``dropbox_box_provider.triggers`` module), beyond what Airflow loads anyway; versus ``dropbox`` and
``box_sdk_gen``.

Three figures per row, each from fresh interpreters, rows interleaved within every repetition:

- ``ms``: ``-X importtime`` with no bytecode cache (every module compiled from source: the first import after
  an install that compiled no ``.pyc``): the sum of the cumulative times of the top-level imports after a
  marker printed once the baseline was imported;
- ``cached_ms``: the same with a warm bytecode cache (what a DAG-parsing process pays on a deployed worker:
  pip compiles ``.pyc`` files at install time, and Python writes them on first import otherwise);
- ``process_ms``: whole-process wall time of baseline + statement minus that of the baseline alone, warm
  bytecode cache, the two runs back to back in alternating order (startup, teardown and everything the
  import tree does not show). Without the cache Airflow's own compilation (seconds) drowned the effect.
- ``process_cpu_ms``: the same pairs' CPU time (user + system of each child), which waits for a core do not
  inflate.

The baseline is ``import airflow.sdk``; for the DAG-file rows it also holds ``Asset``, ``AssetWatcher`` and
``airflow.triggers.base``, which Airflow itself imports to validate any asset watcher's trigger.
"""

from __future__ import annotations

import importlib.util
import os
import pkgutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any

from bench.report import summarize
from bench.settings import Settings

SDK_BASELINE = "import airflow.sdk"
WATCHER_BASELINE = (
    "import airflow.sdk; from airflow.sdk import Asset, AssetWatcher; import airflow.triggers.base"
)
MARKER = "--bench-import-marker--"


@dataclass(frozen=True)
class ImportCase:
    """One measured import: a label, the statement, whose it is, and what was imported before it."""

    module: str
    statement: str
    kind: str
    baseline: str


def trigger_modules() -> list[str]:
    """Every ``dropbox_box_provider.triggers.*`` module there is (found on disk, none imported)."""
    spec = importlib.util.find_spec("dropbox_box_provider.triggers")
    locations = list(spec.submodule_search_locations or []) if spec else []
    return sorted(f"dropbox_box_provider.triggers.{info.name}" for info in pkgutil.iter_modules(locations))


def cases() -> list[ImportCase]:
    """The hooks alone, a DAG file with asset watchers per service, and the SDKs."""
    triggers = "; ".join(f"import {module}" for module in trigger_modules())
    out: list[ImportCase] = []
    for service, module in (
        ("Dropbox", "dropbox_box_provider.hooks.dropbox"),
        ("Box", "dropbox_box_provider.hooks.box"),
    ):
        out.append(ImportCase(module, f"import {module}", "provider", SDK_BASELINE))
        out.append(
            ImportCase(
                f"DAG file with asset watchers: {service} hook + every trigger module",
                f"import {module}; {triggers}",
                "provider",
                WATCHER_BASELINE,
            )
        )
    out += [
        ImportCase("dropbox", "import dropbox", "sdk", SDK_BASELINE),
        ImportCase("box_sdk_gen", "import box_sdk_gen", "sdk", SDK_BASELINE),
    ]
    return out


def _env(pycache: str, *, write: bool = True) -> dict[str, str]:
    """The environment of a measured interpreter: bytecode looked up (and, with ``write``, stored) only under
    ``pycache``, so an empty folder without ``write`` means every module compiles from source, whatever
    ``__pycache__`` folders the installation holds."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")}
    env["PYTHONPYCACHEPREFIX"] = pycache
    if not write:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def import_ms(case: ImportCase, pycache: str, *, write: bool = True) -> float:
    """Milliseconds ``case`` adds after its baseline (one fresh interpreter, ``-X importtime``)."""
    mark = f"import sys; sys.stderr.write({MARKER!r} + '\\n'); sys.stderr.flush()"
    code = f"{case.baseline}; {mark}; {case.statement}"
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env=_env(pycache, write=write),
    )
    return parse_after_marker(result.stderr)


def process_s(code: str, pycache: str) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system, from the child's own rusage) of a fresh interpreter
    running ``code``."""
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=_env(pycache),
    )
    assert child.stderr is not None
    stderr = child.stderr.read()
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise subprocess.CalledProcessError(child.returncode, code, stderr=stderr)
    return wall, usage.ru_utime + usage.ru_stime


def process_ms(case: ImportCase, pycache: str, statement_first: bool) -> tuple[float, float]:
    """Whole-process ms ``case`` adds, wall and CPU: baseline + statement minus the baseline alone, run back
    to back (the order alternates between repetitions, so a load change between the two runs cancels out in
    the median). CPU time leaves out the waits for a core that make wall time swing on a shared machine."""
    whole = f"{case.baseline}; {case.statement}"
    order = [whole, case.baseline] if statement_first else [case.baseline, whole]
    seconds = {code: process_s(code, pycache) for code in order}
    (whole_wall, whole_cpu), (base_wall, base_cpu) = seconds[whole], seconds[case.baseline]
    return (whole_wall - base_wall) * 1000, (whole_cpu - base_cpu) * 1000


def parse_after_marker(stderr: str) -> float:
    """Sum of the cumulative µs of top-level import lines after the marker, in ms."""
    _, _, after = stderr.partition(MARKER)
    total_us = 0
    for line in after.splitlines():
        if not line.startswith("import time:"):
            continue
        parts = line.split("|")
        if len(parts) != 3 or not parts[1].strip().isdigit():
            continue
        name = parts[2]
        if name.startswith(" ") and not name.startswith("  "):  # depth 0: one space after the bar
            total_us += int(parts[1].strip())
    return total_us / 1000.0


def run(settings: Settings, **_: Any) -> dict[str, Any]:
    """Every case's three figures over the repetitions (cases interleaved, so drift hits them alike)."""
    measured = cases()
    values: dict[str, dict[str, list[float]]] = {
        case.module: {"ms": [], "process_ms": [], "process_cpu_ms": [], "cached_ms": []} for case in measured
    }
    with (
        tempfile.TemporaryDirectory(prefix="bench-pycache-") as pycache,
        tempfile.TemporaryDirectory(prefix="bench-no-pycache-") as empty,
    ):
        for case in measured:  # fill the bytecode cache (and let Airflow set up its home once)
            import_ms(case, pycache)
        for rep in range(settings.import_repetitions):
            for case in measured:
                values[case.module]["ms"].append(import_ms(case, empty, write=False))
                wall, cpu = process_ms(case, pycache, statement_first=rep % 2 == 1)
                values[case.module]["process_ms"].append(wall)
                values[case.module]["process_cpu_ms"].append(cpu)
                values[case.module]["cached_ms"].append(import_ms(case, pycache))
    rows: list[dict[str, Any]] = [
        {
            "module": case.module,
            "kind": case.kind,
            "baseline": case.baseline,
            "statement": case.statement,
            **{figure: summarize(series, "ms") for figure, series in values[case.module].items()},
        }
        for case in measured
    ]
    return {"baseline": SDK_BASELINE, "watcher_baseline": WATCHER_BASELINE, "rows": rows}
