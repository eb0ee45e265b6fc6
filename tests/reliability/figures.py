"""Figures of the reliability and security suites: collected per session, printed at the end, saved as JSON.

Tests call ``add``; the conftests of tests/reliability and tests/security print the totals in the terminal
summary (once, whichever conftest runs first) and write them to ``reliability_figures.json`` in pytest's
base temporary directory.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

FULL_ENV = "RELIABILITY_FULL"

_lock = threading.Lock()
_figures: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
_printed = False


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


def add_full_option(parser: pytest.Parser) -> None:
    """Register ``--full`` (heavy trial sizes) unless the other suite's conftest already did."""
    # The other suite's conftest may have registered it already (both load under `make reliability`).
    with contextlib.suppress(ValueError):
        parser.addoption(
            "--full",
            action="store_true",
            default=False,
            help=f"run the reliability trials at full size (also: {FULL_ENV}=1); default is the quick size",
        )


def is_full(config: pytest.Config) -> bool:
    """True with ``--full`` or ``RELIABILITY_FULL=1``."""
    return bool(config.getoption("--full", default=False)) or os.environ.get(FULL_ENV) == "1"


def terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Print the figures (once per session) and save them as JSON."""
    global _printed  # noqa: PLW0603
    data = snapshot()
    if _printed or not data:
        return
    _printed = True
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
