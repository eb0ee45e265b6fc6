"""Shared pytest configuration: fixtures live in tests/fixtures/, one module per concern.

Before anything imports Airflow, the test process gets its own AIRFLOW_HOME (a temporary directory) so
that no test reads or writes ``~/airflow`` or the user's configuration. The public testing kit's pytest plugin
gives the emulator fixtures DAG authors use (``emulated_services``, ``dropbox_conn``, ``box_conn``); told to
keep this home, it migrates no metadata database of its own.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

from cryptography.fernet import Fernet

_HOME = tempfile.mkdtemp(prefix="pytest-airflow-home-")
atexit.register(shutil.rmtree, _HOME, ignore_errors=True)
for _name in [k for k in os.environ if k.startswith("AIRFLOW")]:
    del os.environ[_name]
os.environ.update(
    {
        "AIRFLOW_HOME": _HOME,
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{os.path.join(_HOME, 'airflow.db')}",
        "DROPBOX_BOX_TESTING_AIRFLOW_HOME": "keep",
    }
)

pytest_plugins = [
    "dropbox_box_provider.testing.pytest_plugin",
    "tests.fixtures.environment",
    "tests.fixtures.emulator",
    "tests.fixtures.airflow",
    "tests.fixtures.databases",
    "tests.fixtures.pgbouncer",
    "tests.reliability.figures",
]
