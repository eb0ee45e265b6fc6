"""Tests of the archive_reports DAG against the emulated Dropbox and Box: written as a DAG author would,
with the provider's testing kit only (``emulated_services``), ``dag.test()`` and ``airflow dags test``."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from dropbox_box_provider.testing import EmulatedServices

DAGS = Path(__file__).parents[1] / "dags"


def load_dag(name: str) -> Any:
    """The DAG ``<name>_dag`` of ``dags/<name>.py``, imported the way Airflow parses a DAG file."""
    spec = importlib.util.spec_from_file_location(name, DAGS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, f"{name}_dag")


def put_reports(services: EmulatedServices) -> None:
    services.put_file("dropbox", "/reports/2024-01.csv", "month,total\n2024-01,10\n")
    services.put_file("dropbox", "/reports/2024-02.csv", "month,total\n2024-02,12\n")
    services.put_file("dropbox", "/reports/notes.txt", "not a report")


def test_reports_are_archived_on_box_and_listed_on_dropbox(emulated_services: EmulatedServices) -> None:
    put_reports(emulated_services)

    run = load_dag("archive_reports").test()

    assert run.state == "success"
    assert emulated_services.list_files("box", "/archive") == [
        "/archive/2024-01.csv",
        "/archive/2024-02.csv",
        "/archive/_SUCCESS",
    ]
    assert emulated_services.read_file("box", "/archive/_SUCCESS") == b"done\n"
    assert emulated_services.read_file("box", "/archive/2024-02.csv") == b"month,total\n2024-02,12\n"
    assert emulated_services.read_file("dropbox", "/reports/archived.txt") == b"2024-01.csv\n2024-02.csv\n"
    assert emulated_services.refreshes() == 0  # the kit's connections start authorized


def test_the_dag_survives_a_429_storm_and_an_expired_token(emulated_services: EmulatedServices) -> None:
    put_reports(emulated_services)
    emulated_services.expire_tokens()  # both connections' access tokens ran out before the run
    emulated_services.rate_limit("dropbox", count=3, retry_after=1)
    emulated_services.rate_limit("box", count=3, retry_after=1)

    run = load_dag("archive_reports").test()

    assert run.state == "success"
    assert emulated_services.read_file("box", "/archive/2024-01.csv") == b"month,total\n2024-01,10\n"
    assert emulated_services.request_count("dropbox", status=429) == 3
    assert emulated_services.request_count("box", status=429) == 3
    assert emulated_services.refreshes("dropbox") == 1  # one refresh per connection, not one per retry
    assert emulated_services.refreshes("box") == 1
    assert emulated_services.grants("box") == {"refresh_token": {"ok": 1}}  # never invalid_grant


def test_airflow_dags_test_in_a_subprocess_reaches_the_emulator(emulated_services: EmulatedServices) -> None:
    put_reports(emulated_services)
    emulated_services.expire_tokens("box")

    env = {**os.environ, **emulated_services.environ(), "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS)}
    proc = subprocess.run(
        [sys.executable, "-m", "airflow", "dags", "test", "archive_reports"],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip

    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert emulated_services.read_file("dropbox", "/reports/archived.txt") == b"2024-01.csv\n2024-02.csv\n"
    assert emulated_services.refreshes("box") == 1  # the subprocess refreshed through the shared store
    assert emulated_services.refreshes("dropbox") == 0
