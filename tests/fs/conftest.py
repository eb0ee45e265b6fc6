"""Fixtures of the fsspec filesystem tests: a Dropbox and a Box connection on a fresh emulator, and no
filesystem or ObjectStoragePath store cached from another test (each test has its own token store)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from tests.fixtures.emulator import RunningEmulator
from tests.helpers import box as box_helpers
from tests.helpers import dropbox as dropbox_helpers

DROPBOX_CONN = "fs_dropbox"
BOX_CONN = "fs_box"


def forget_filesystems() -> None:
    """Drop fsspec's instance cache and Airflow's attached stores (they hold hooks of earlier tests)."""
    from airflow.sdk.io import store

    from dropbox_box_provider.fs.box import BoxFileSystem
    from dropbox_box_provider.fs.dropbox import DropboxFileSystem

    DropboxFileSystem.clear_instance_cache()
    BoxFileSystem.clear_instance_cache()
    store._STORE_CACHE.clear()


@pytest.fixture
def services(
    monkeypatch: pytest.MonkeyPatch, fresh_emulator: RunningEmulator, tmp_path: Path
) -> Iterator[RunningEmulator]:
    """Both connections (``fs_dropbox``, ``fs_box``) in AIRFLOW_CONN_* variables, fresh trees."""
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow_home"))
    monkeypatch.setenv("AIRFLOW__CORE__FERNET_KEY", Fernet.generate_key().decode())
    dropbox_helpers.dropbox_connection(monkeypatch, fresh_emulator, tmp_path, DROPBOX_CONN)
    box_helpers.box_oauth_connection(monkeypatch, fresh_emulator, tmp_path, BOX_CONN)
    forget_filesystems()
    yield fresh_emulator
    forget_filesystems()


@pytest.fixture(params=["dropbox", "box"])
def scheme(request: pytest.FixtureRequest, services: RunningEmulator) -> str:
    """``dropbox`` or ``box``: the test runs once per service."""
    return str(request.param)


def url(scheme: str, path: str) -> str:
    """``scheme://CONN@/path`` for the test connection of ``scheme``."""
    return f"{scheme}://{DROPBOX_CONN if scheme == 'dropbox' else BOX_CONN}@{path}"
