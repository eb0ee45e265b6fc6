"""Fixtures of the CLI tests: isolated homes and apps registered on the session emulator."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.helpers import CliHome, make_home


@pytest.fixture
def home(tmp_path: Path) -> CliHome:
    """A fresh AIRFLOW_HOME for one test (no metastore migration: connections come from env vars)."""
    return make_home(tmp_path / "home")
