"""Figures of the reliability and security suites: collected per session, printed at the end, saved as JSON.

A pytest plugin (listed in tests/conftest.py): tests call ``add``; under xdist each worker hands its figures
to the controller, which prints the totals in the terminal summary and writes them to
``reliability_figures.json`` in pytest's base temporary directory. ``--full`` selects the heavy sizes.
"""

from __future__ import annotations

import json
import os
import threading
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

FULL_ENV = "RELIABILITY_FULL"
_WORKER_KEY = "reliability_figures"

_lock = threading.Lock()
_figures: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))


def add(section: str, **counts: int) -> None:
    """Add ``counts`` to ``section`` (e.g. ``add("crash sqlite grace off", trials=32, lockouts=16)``)."""
    with _lock:
        for name, value in counts.items():
            _figures[section][name] += int(value)


def snapshot() -> dict[str, dict[str, int]]:
    """A copy of every figure so far."""
    with _lock:
        return {section: dict(values) for section, values in sorted(_figures.items())}


def totals() -> dict[str, int]:
    """The headline figures: trials, faults injected, lockouts, leaks found."""
    keys = ("trials", "faults_injected", "lockouts", "leaks_found", "operations", "cases")
    data = snapshot()
    return {key: sum(values.get(key, 0) for values in data.values()) for key in keys}


def is_full(config: pytest.Config) -> bool:
    """True with ``--full`` or ``RELIABILITY_FULL=1``."""
    return bool(config.getoption("--full", default=False)) or os.environ.get(FULL_ENV) == "1"


@pytest.fixture(scope="session")
def full_size(pytestconfig: pytest.Config) -> bool:
    """True when the heavy (``make reliability``) sizes are wanted."""
    return is_full(pytestconfig)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--full",
        action="store_true",
        default=False,
        help=f"run the reliability trials at full size (also: {FULL_ENV}=1); default is the quick size",
    )


def pytest_sessionfinish(session: pytest.Session) -> None:
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: the controller merges and prints
        workeroutput[_WORKER_KEY] = json.dumps(snapshot())


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    for section, values in json.loads(node.workeroutput.get(_WORKER_KEY, "{}")).items():
        add(section, **values)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    data = snapshot()
    if not data or hasattr(config, "workerinput"):
        return
    mode = "full" if is_full(config) else "quick"
    terminalreporter.section(f"reliability and security figures ({mode})")
    for section, values in data.items():
        terminalreporter.write_line(f"{section}: " + ", ".join(f"{k}={v}" for k, v in sorted(values.items())))
    headline = totals()
    terminalreporter.write_line("TOTAL: " + ", ".join(f"{k}={v}" for k, v in headline.items()))
    base = Path(str(config._tmp_path_factory.getbasetemp()))  # type: ignore[attr-defined]
    target = base / "reliability_figures.json"
    target.write_text(json.dumps({"mode": mode, "sections": data, "totals": headline}, indent=2))
    terminalreporter.write_line(f"figures saved to {target}")
