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
from collections import Counter

import pytest
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

# Files that keep one worker busy for a minute or more (the benchmark's smoke run, real Airflow processes),
# longest first: handed out before the rest, so they overlap the many short files instead of trailing the
# suite. The Makefile passes --no-loadscope-reorder, so pytest-xdist (--dist loadfile) keeps this order.
SLOWEST_FIRST = (
    "tests/bench/test_bench_smoke.py",
    "tests/operators/test_example_dags.py",
    "tests/demo/test_demo.py",
    "tests/security/test_secrets.py",
    "tests/integration/test_secrets_airflow.py",
    "tests/integration/test_hook_imports.py",
    "tests/cli/test_security.py",
    "tests/reliability/test_crash_safety.py",
    "tests/integration/test_event_driven_dags.py",
    "tests/testing_kit/test_example_project.py",
    "tests/docs/test_readme.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slowest files first, then files with more tests before files with fewer (xdist's own order)."""
    rank = {path: position for position, path in enumerate(SLOWEST_FIRST)}
    counts = Counter(item.nodeid.partition("::")[0] for item in items)

    def order(item: pytest.Item) -> tuple[int, int, str]:
        path = item.nodeid.partition("::")[0]
        return rank.get(path, len(rank)), -counts[path], path

    items.sort(key=order)
