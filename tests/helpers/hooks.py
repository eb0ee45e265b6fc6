"""A hook of either service on an emulator connection: the one arrangement the remote-files tests share."""

from __future__ import annotations

from pathlib import Path

import pytest

from dropbox_box_provider.hooks.base import BaseOAuthHook
from dropbox_box_provider.hooks.box import BoxHook
from dropbox_box_provider.hooks.dropbox import DropboxHook
from tests.fixtures.emulator import Emulator
from tests.helpers import box as box_helpers
from tests.helpers import dropbox as dropbox_helpers
from tests.helpers.dropbox import FAST


def service_hook(
    service: str, monkeypatch: pytest.MonkeyPatch, emulator: Emulator, tmp_path: Path, prefix: str
) -> BaseOAuthHook:
    """A Dropbox or Box OAuth hook (fast retries) on a new connection ``<prefix>_<service>``."""
    conn_id = f"{prefix}_{service}"
    if service == "dropbox":
        dropbox_helpers.dropbox_connection(monkeypatch, emulator, tmp_path, conn_id)
        return DropboxHook(conn_id, retry_policy=FAST)
    box_helpers.box_oauth_connection(monkeypatch, emulator, tmp_path, conn_id)
    return BoxHook(conn_id, retry_policy=FAST)
