"""The public testing kit as a DAG author meets it: the example project under ``example_project/`` (a DAG
file and its tests, importing only ``dropbox_box_provider.testing``) runs as a pytest of its own, with the
plugin enabled by its ``pytest.ini`` and none of this suite's settings; plus the plugin's promises."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).parent / "example_project"
HOME_TEST = """import os

def test_home():
    assert os.environ.get("AIRFLOW_HOME") == os.environ["EXPECTED_HOME"]
"""


def user_environment() -> dict[str, str]:
    """This environment without Airflow, pytest or kit settings: what a user's shell would have."""
    prefixes = ("AIRFLOW", "PYTEST_", "DROPBOX_BOX_TESTING", "_AIRFLOW")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def run_pytest(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=cwd, env=env or user_environment(), capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip


@pytest.mark.slow
@pytest.mark.airflow
@pytest.mark.timeout(900)
def test_the_example_project_passes_with_the_kit_alone(tmp_path: Path) -> None:
    """The DAG moves files Dropbox -> Box with dag.test() and `airflow dags test`, through a 429 storm and a
    forced token expiry, with one refresh per connection."""
    proc = run_pytest(PROJECT, "-q", f"--basetemp={tmp_path / 'basetemp'}")
    output = proc.stdout[-6000:] + proc.stderr[-3000:]
    assert proc.returncode == 0, output
    assert "3 passed" in proc.stdout, output
    assert not (PROJECT / ".pytest_cache").exists()


def test_importing_the_plugin_and_kit_loads_no_airflow_and_no_emulator() -> None:
    code = (
        "import sys, dropbox_box_provider.testing, dropbox_box_provider.testing.pytest_plugin\n"
        "heavy = [m for m in ('airflow', 'uvicorn', 'starlette', 'sqlalchemy', 'httpx', "
        "'dropbox_box_provider.emulator') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env=user_environment(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_the_plugin_warns_when_airflow_was_imported_first(tmp_path: Path) -> None:
    """Too late to isolate AIRFLOW_HOME: the plugin says so and how to fix it, and touches nothing."""
    (tmp_path / "conftest.py").write_text("import airflow  # imported before the plugin could act\n")
    (tmp_path / "test_home.py").write_text(HOME_TEST)
    home = tmp_path / "own_home"
    env = {**user_environment(), "AIRFLOW_HOME": str(home), "EXPECTED_HOME": str(home)}
    proc = run_pytest(tmp_path, "-q", "-p", "dropbox_box_provider.testing.pytest_plugin", env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Airflow was imported before the plugin loaded" in proc.stdout + proc.stderr


def test_the_plugin_leaves_a_kept_home_alone(tmp_path: Path) -> None:
    (tmp_path / "test_home.py").write_text(HOME_TEST)
    home = tmp_path / "own_home"
    env = {
        **user_environment(),
        "AIRFLOW_HOME": str(home),
        "EXPECTED_HOME": str(home),
        "DROPBOX_BOX_TESTING_AIRFLOW_HOME": "keep",
    }
    proc = run_pytest(tmp_path, "-q", "-p", "dropbox_box_provider.testing.pytest_plugin", env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert not home.exists()  # no metadata database was migrated into it


ISOLATED_HOME_TEST = """import os, sys

def test_isolated_home(emulated_services):
    home = os.environ["AIRFLOW_HOME"]
    assert os.path.basename(home).startswith("airflow-home-"), home
    assert os.path.isfile(os.path.join(home, "airflow.db"))  # migrated before the first test
    assert os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].endswith(os.path.join(home, "airflow.db"))
    with open(os.environ["RECORD"], "w") as record:
        record.write(home)
"""


@pytest.mark.airflow
@pytest.mark.timeout(600)
def test_the_plugin_isolates_airflow_home_and_never_touches_the_users(tmp_path: Path) -> None:
    """Enabled with ``-p``: a temporary AIRFLOW_HOME with a migrated sqlite database, set before Airflow is
    imported; the user's ``~/airflow`` is never created, the temporary home is gone after the session."""
    project, user_home = tmp_path / "project", tmp_path / "user"
    project.mkdir()
    user_home.mkdir()
    (project / "test_home.py").write_text(ISOLATED_HOME_TEST)
    record = tmp_path / "home.txt"
    env = {**user_environment(), "HOME": str(user_home), "RECORD": str(record)}
    proc = run_pytest(project, "-q", "-p", "dropbox_box_provider.testing.pytest_plugin", env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "1 passed" in proc.stdout
    assert not (user_home / "airflow").exists()
    assert record.read_text() and not Path(record.read_text()).exists()


def test_the_plugin_is_opt_in(tmp_path: Path) -> None:
    """No pytest11 entry point: a project that does not enable the plugin has no kit fixtures."""
    from importlib.metadata import entry_points

    assert not [ep for ep in entry_points(group="pytest11") if ep.value.startswith("dropbox_box_provider")]
    (tmp_path / "test_x.py").write_text("def test_x(emulated_services):\n    pass\n")
    proc = run_pytest(tmp_path, "-q")
    assert proc.returncode != 0
    assert "fixture 'emulated_services' not found" in proc.stdout, proc.stdout[-3000:]
