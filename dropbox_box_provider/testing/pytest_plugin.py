"""Opt-in pytest plugin: an isolated Airflow home and the emulated Dropbox and Box services as fixtures.

Enable it with ``pytest -p dropbox_box_provider.testing.pytest_plugin`` or, in your root ``conftest.py``,
``pytest_plugins = ["dropbox_box_provider.testing.pytest_plugin"]``. It is never loaded on its own.

At start-up it points ``AIRFLOW_HOME`` at a temporary folder (before Airflow is imported), its DAG folder at
the project's (``dags/`` beside the rootdir, or the ini option ``dropbox_box_dags_folder``), and migrates a
sqlite metadata database there once per session, so ``dag.test()`` works and nothing touches ``~/airflow``.
Set ``DROPBOX_BOX_TESTING_AIRFLOW_HOME=keep`` to leave your own Airflow settings alone.

Fixtures: ``emulated_services`` (one emulator per session, reset before each test, its connections set in
the environment during the test), ``dropbox_conn`` and ``box_conn`` (ids of the ready-made connections).
Importing this module loads neither Airflow nor the emulator.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from dropbox_box_provider.testing.services import EmulatedServices

#: ``keep`` leaves AIRFLOW_HOME and the metadata database alone (for a project that isolates Airflow itself).
HOME_SETTING = "DROPBOX_BOX_TESTING_AIRFLOW_HOME"
#: ini option: the project's DAG folder (dag.test() runs DAGs of the configured bundles only).
DAGS_FOLDER_INI = "dropbox_box_dags_folder"
MIGRATE_TIMEOUT = 600

_home_key = pytest.StashKey[str]()
_saved_key = pytest.StashKey[dict[str, str | None]]()


class AirflowAlreadyImported(UserWarning):
    """Airflow was imported before the plugin could isolate its home: the user's settings are in use."""


def isolated_airflow_environ(home: str) -> dict[str, str]:
    """The settings of a throwaway Airflow installation in ``home`` (sqlite metadata database inside)."""
    from cryptography.fernet import Fernet

    return {
        "AIRFLOW_HOME": home,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{os.path.join(home, 'airflow.db')}",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__FERNET_KEY": os.environ.get("AIRFLOW__CORE__FERNET_KEY")
        or Fernet.generate_key().decode(),
    }


def migrate_metadata_database(environ: dict[str, str]) -> None:
    """``airflow db migrate`` in a child process (this one has not imported Airflow and should not yet)."""
    proc = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        env={**os.environ, **environ},
        cwd=environ["AIRFLOW_HOME"],
        capture_output=True,
        text=True,
        timeout=MIGRATE_TIMEOUT,
        check=False,
    )
    if proc.returncode != 0:
        raise pytest.UsageError(
            f"dropbox_box_provider.testing: `airflow db migrate` in {environ['AIRFLOW_HOME']} exited "
            f"{proc.returncode}; run it yourself to see why, or set {HOME_SETTING}=keep to use your own "
            f"Airflow settings:\n{proc.stderr[-3000:] or proc.stdout[-3000:]}"
        )


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        DAGS_FOLDER_INI,
        "folder of the project's DAG files (relative to the rootdir) for dag.test() and `airflow dags test`; "
        "default: 'dags' when the rootdir has one",
        default="",
    )


def dags_folder(config: pytest.Config) -> str | None:
    """The DAG folder the isolated Airflow parses: the ini option, else ``<rootdir>/dags`` if present."""
    configured = str(config.getini(DAGS_FOLDER_INI) or "").strip()
    folder = config.rootpath / (configured or "dags")
    if configured and not folder.is_dir():
        raise pytest.UsageError(f"{DAGS_FOLDER_INI} = {configured!r}: {folder} is not a folder; fix the path")
    return str(folder) if folder.is_dir() else None


def _is_xdist_controller(config: pytest.Config) -> bool:
    """True in pytest-xdist's controlling process: it runs no test, each worker isolates its own Airflow."""
    return bool(getattr(config.option, "numprocesses", None)) and not hasattr(config, "workerinput")


def pytest_configure(config: pytest.Config) -> None:
    """Isolate Airflow before anything imports it: a temporary home with a migrated metadata database."""
    if os.environ.get(HOME_SETTING, "").strip().lower() == "keep" or _is_xdist_controller(config):
        return
    if "airflow" in sys.modules:
        warnings.warn(
            AirflowAlreadyImported(
                "dropbox_box_provider.testing.pytest_plugin: Airflow was imported before the plugin loaded, "
                "so AIRFLOW_HOME could not be pointed at a temporary folder: your own Airflow settings "
                "and metadata database are in use. Load the plugin first (`pytest -p "
                "dropbox_box_provider.testing.pytest_plugin`, or first in your root conftest.py), or set "
                f"{HOME_SETTING}=keep to silence this when that is intended."
            ),
            stacklevel=1,
        )
        return
    home = tempfile.mkdtemp(prefix="airflow-home-")
    environ = isolated_airflow_environ(home)
    folder = dags_folder(config)
    if folder is not None:
        environ["AIRFLOW__CORE__DAGS_FOLDER"] = folder
    config.stash[_home_key] = home
    config.stash[_saved_key] = {name: os.environ.get(name) for name in environ}
    os.environ.update(environ)
    migrate_metadata_database(environ)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Put the environment back and remove the temporary Airflow home."""
    saved = config.stash.get(_saved_key, None)
    if saved is not None:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    home = config.stash.get(_home_key, None)
    if home is not None:
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def emulated_services_session() -> Iterator[EmulatedServices]:
    """The session's emulator (one server thread); prefer ``emulated_services``, which resets it per test."""
    from dropbox_box_provider.testing.services import emulated_services as start

    with start() as services:
        yield services


@pytest.fixture
def emulated_services(emulated_services_session: EmulatedServices) -> Iterator[EmulatedServices]:
    """The emulated Dropbox and Box, reset for this test, with its connections set in the environment."""
    services = emulated_services_session
    services.reset()
    with services.apply_environ():
        yield services


@pytest.fixture
def dropbox_conn(emulated_services: EmulatedServices) -> str:
    """Id of the ready-made, authorized Dropbox OAuth connection (``dropbox_default``)."""
    from dropbox_box_provider.testing.services import DROPBOX_CONN_ID

    return DROPBOX_CONN_ID


@pytest.fixture
def box_conn(emulated_services: EmulatedServices) -> str:
    """Id of the ready-made, authorized Box OAuth connection (``box_default``)."""
    from dropbox_box_provider.testing.services import BOX_CONN_ID

    return BOX_CONN_ID
