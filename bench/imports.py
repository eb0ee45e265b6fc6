"""Scenario 4: import cost of the hook modules beyond ``airflow.sdk``, versus ``dropbox`` and ``box_sdk_gen``.

Each measurement is a fresh interpreter with ``-X importtime`` that imports ``airflow.sdk`` first, prints a
marker, then imports the module: the cost is the sum of the cumulative times of the top-level imports after
the marker (what importing the module adds to a process that already runs Airflow task code).
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

from bench.report import summarize
from bench.settings import Settings

MODULES = (
    ("dropbox_box_provider.hooks.dropbox", "provider"),
    ("dropbox_box_provider.hooks.box", "provider"),
    ("dropbox", "sdk"),
    ("box_sdk_gen", "sdk"),
)
MARKER = "--bench-import-marker--"


def import_ms(module: str) -> float:
    """Milliseconds ``module`` adds after ``airflow.sdk`` (one fresh interpreter)."""
    code = (
        f"import airflow.sdk, sys; sys.stderr.write({MARKER!r} + '\\n'); sys.stderr.flush(); import {module}"
    )
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    return parse_after_marker(result.stderr)


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
    """Every module's import cost over the repetitions (modules interleaved, so drift hits them alike)."""
    values: dict[str, list[float]] = {module: [] for module, _ in MODULES}
    for _rep in range(settings.import_repetitions):
        for module, _kind in MODULES:
            values[module].append(import_ms(module))
    rows: list[dict[str, Any]] = [
        {"module": module, "kind": kind, "ms": summarize(values[module], "ms")} for module, kind in MODULES
    ]
    return {"baseline": "airflow.sdk", "rows": rows}
