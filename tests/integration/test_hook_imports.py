"""Hook modules stay cheap to import: no emulator, CLI, uvicorn or PostgreSQL driver in a fresh process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# The official SDKs (the [sdk] extra) load only when get_sdk_client() is called.
NEVER = (
    "dropbox_box_provider.emulator",
    "dropbox_box_provider.cli",
    "uvicorn",
    "psycopg",
    "dropbox",
    "box_sdk_gen",
)
# `import airflow.sdk` itself loads SQLAlchemy's PostgreSQL dialect (airflow.models.dagbundle ->
# airflow.utils.sqlalchemy); the hooks must not add it where Airflow does not.
NOT_ADDED = ("sqlalchemy.dialects.postgresql",)
# Box JWT signing (PyJWT, the JWT key loader) loads only when a JWT connection fetches a token.
ON_DEMAND = ("jwt", "dropbox_box_provider.auth.jwt")


def _matches(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def loaded_modules(statement: str, home: Path) -> set[str]:
    """The module names a fresh interpreter holds after ``statement``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env["AIRFLOW_HOME"] = str(home)
    code = f"{statement}; import sys, json; print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


@pytest.fixture(scope="module")
def airflow_baseline(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    return loaded_modules("from airflow.sdk import BaseHook", tmp_path_factory.mktemp("baseline"))


@pytest.mark.parametrize("module", ["dropbox_box_provider.hooks.dropbox", "dropbox_box_provider.hooks.box"])
def test_hook_import_loads_no_heavy_module(module: str, tmp_path: Path, airflow_baseline: set[str]) -> None:
    loaded = loaded_modules(f"import {module}", tmp_path)
    assert module in loaded and "httpx" in loaded  # the probe really imported the hook
    assert sorted(n for n in loaded if _matches(n, NEVER)) == []
    assert sorted(n for n in loaded - airflow_baseline if _matches(n, NOT_ADDED)) == []
    assert sorted(n for n in loaded - airflow_baseline if _matches(n, ON_DEMAND)) == []


@pytest.mark.parametrize(
    "module", ["dropbox_box_provider.triggers.dropbox_changes", "dropbox_box_provider.triggers.box_events"]
)
def test_change_trigger_import_loads_no_hook(module: str, tmp_path: Path, airflow_baseline: set[str]) -> None:
    """DAG files import the change triggers at parse time: no hook, token store or emulator with them."""
    loaded = loaded_modules(f"import {module}", tmp_path)
    assert module in loaded
    heavy = (
        *NEVER,
        "dropbox_box_provider.hooks.base",
        "dropbox_box_provider.store",
        "dropbox_box_provider.auth.manager",
    )
    assert sorted(n for n in loaded if _matches(n, heavy)) == []
    assert sorted(n for n in loaded - airflow_baseline if _matches(n, (*NOT_ADDED, *ON_DEMAND))) == []
