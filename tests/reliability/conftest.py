"""Reliability suite options and figures: ``--full`` (or RELIABILITY_FULL=1) selects the heavy trial sizes."""

from __future__ import annotations

from typing import Any

import pytest

from tests.reliability import figures


def pytest_addoption(parser: pytest.Parser) -> None:
    figures.add_full_option(parser)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    figures.terminal_summary(terminalreporter, config)


@pytest.fixture(scope="session")
def full_size(pytestconfig: pytest.Config) -> bool:
    """True when the heavy (``make reliability``) sizes are wanted."""
    return figures.is_full(pytestconfig)
