"""The valid-token step of the hooks: a cached token is handed out with no store read until its deadline (its
expiry minus the effective margin); past it the full path reads the store; a 401 drops it at once, in every
hook of the connection, so a token replaced or revoked elsewhere is used at most once. Real sqlite stores,
the emulator over loopback, and a second process that refreshes through the shared store."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from dropbox_box_provider.auth.manager import OBTAINED_AT_KEY
from dropbox_box_provider.emulator import seed
from dropbox_box_provider.hooks.dropbox import DropboxHook
from dropbox_box_provider.store.base import TokenRecord, TokenStore
from tests.fixtures.emulator import RunningEmulator
from tests.helpers.dropbox import dropbox_connection

ACCOUNT_ROUTE = "/2/users/get_current_account"


@pytest.fixture(autouse=True)
def airflow_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A tmp AIRFLOW_HOME and ``[core] fernet_key``, inherited by the second process too."""
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow_home"))
    monkeypatch.setenv("AIRFLOW__CORE__FERNET_KEY", Fernet.generate_key().decode())


def refreshes(emu: RunningEmulator) -> int:
    return int(emu.client.stats()["dropbox"]["token"].get("refresh_token", {}).get("ok", 0))


def count_reads(monkeypatch: pytest.MonkeyPatch, store: TokenStore) -> list[str]:
    """Record every ``read`` of the real ``store`` (the connection ids read), still reading through."""
    reads: list[str] = []
    read: Callable[[str], TokenRecord | None] = store.read

    def counted(conn_id: str) -> TokenRecord | None:
        reads.append(conn_id)
        return read(conn_id)

    monkeypatch.setattr(store, "read", counted)
    return reads


def test_cached_token_is_handed_out_with_no_store_read(
    monkeypatch: pytest.MonkeyPatch, fresh_emulator: RunningEmulator, tmp_path: Path
) -> None:
    dropbox_connection(monkeypatch, fresh_emulator, tmp_path, "dbx_hot")
    hook = DropboxHook("dbx_hot")
    token = hook.get_access_token()  # the full path: store, refresh of the seed, cache entry
    reads = count_reads(monkeypatch, hook.token_store)

    assert all(hook.get_access_token() == token for _ in range(1000))
    assert hook.get_current_account()["account_id"] == seed.DEMO_DROPBOX_ACCOUNT_ID  # an authorized call too
    other = DropboxHook("dbx_hot")  # a second hook of the connection shares the manager's entry
    assert other.get_access_token() == token
    assert reads == []


def test_past_expiry_minus_effective_margin_the_store_is_read_again(
    monkeypatch: pytest.MonkeyPatch, fresh_emulator: RunningEmulator, tmp_path: Path
) -> None:
    # 2 s tokens with refresh_margin 300 s: the effective margin is half the lifetime, 1 s.
    fresh_emulator.client.configure(access_token_ttl=2)
    dropbox_connection(monkeypatch, fresh_emulator, tmp_path, "dbx_edge", refresh_margin=300)
    hook = DropboxHook("dbx_edge")
    before = time.monotonic()
    first = hook.get_access_token()
    after = time.monotonic()
    tokens = hook.get_token_set()
    assert tokens.expires_at is not None and tokens.obtained_at is not None
    assert tokens.effective_margin(300) == pytest.approx(1.0, abs=0.01)
    deadline = hook.token_manager.cached_token("dbx_edge", hook.get_auth_config()).deadline
    trusted = tokens.expires_at - tokens.obtained_at - 1.0  # expiry minus the effective margin
    assert before + trusted - 0.5 <= deadline <= after + trusted  # obtained_at is stamped before caching

    reads = count_reads(monkeypatch, hook.token_store)
    assert hook.get_access_token() == first and reads == []
    time.sleep(max(deadline - time.monotonic(), 0.0) + 0.05)
    refreshed_before = refreshes(fresh_emulator)
    second = hook.get_access_token()
    assert reads, "past the deadline the token manager reads the store"
    assert second != first and refreshes(fresh_emulator) == refreshed_before + 1
    assert hook.get_current_account()["account_id"] == seed.DEMO_DROPBOX_ACCOUNT_ID


def test_token_replaced_and_revoked_elsewhere_is_dropped_on_first_401(
    monkeypatch: pytest.MonkeyPatch, fresh_emulator: RunningEmulator, tmp_path: Path
) -> None:
    dropbox_connection(monkeypatch, fresh_emulator, tmp_path, "dbx_moved")
    hook, sibling = DropboxHook("dbx_moved"), DropboxHook("dbx_moved")
    stale = hook.get_access_token()
    assert sibling.get_access_token() == stale
    _pretend_obtained_long_ago(hook.token_store, "dbx_moved")  # so the forced refresh below is not reused

    # Another process force-refreshes through the shared sqlite store, and the old token is revoked.
    refreshed_before = refreshes(fresh_emulator)
    fresh = _force_refresh_in_another_process("dbx_moved")
    assert fresh != stale and refreshes(fresh_emulator) == refreshed_before + 1
    assert fresh_emulator.client.expire_access_tokens(token=stale) == 1
    assert hook.get_access_token() == stale  # this process cannot know yet: its cache is still trusted

    statuses_before = dict(fresh_emulator.client.stats()["dropbox"]["routes"].get(ACCOUNT_ROUTE, {}))
    assert hook.get_current_account()["account_id"] == seed.DEMO_DROPBOX_ACCOUNT_ID
    statuses = fresh_emulator.client.stats()["dropbox"]["routes"][ACCOUNT_ROUTE]
    assert statuses.get("401", 0) == statuses_before.get("401", 0) + 1  # used once, then dropped
    assert hook.get_access_token() == fresh and sibling.get_access_token() == fresh
    assert refreshes(fresh_emulator) == refreshed_before + 1  # the stored token was taken, no new grant
    assert sibling.get_current_account()["account_id"] == seed.DEMO_DROPBOX_ACCOUNT_ID
    assert fresh_emulator.client.stats()["dropbox"]["routes"][ACCOUNT_ROUTE].get("401") == statuses.get("401")


def test_a_401_on_the_stored_token_renews_it_with_one_store_write(
    monkeypatch: pytest.MonkeyPatch, fresh_emulator: RunningEmulator, tmp_path: Path
) -> None:
    """The service refuses the token the store still holds: one refresh, one fenced write (the record's
    version moves by one), and the retried call succeeds with the new token."""
    dropbox_connection(monkeypatch, fresh_emulator, tmp_path, "dbx_refused")
    hook = DropboxHook("dbx_refused")
    stale = hook.get_access_token()
    before = hook.token_store.read("dbx_refused")
    assert before is not None
    refreshed_before = refreshes(fresh_emulator)
    assert fresh_emulator.client.expire_access_tokens(token=stale) == 1

    assert hook.get_current_account()["account_id"] == seed.DEMO_DROPBOX_ACCOUNT_ID
    after = hook.token_store.read("dbx_refused")
    assert after is not None and after.version == before.version + 1
    assert refreshes(fresh_emulator) == refreshed_before + 1
    assert hook.get_access_token() != stale


def test_forced_refresh_in_this_process_moves_every_hook_to_the_new_token(
    monkeypatch: pytest.MonkeyPatch, fresh_emulator: RunningEmulator, tmp_path: Path
) -> None:
    dropbox_connection(monkeypatch, fresh_emulator, tmp_path, "dbx_local")
    hook, sibling = DropboxHook("dbx_local"), DropboxHook("dbx_local")
    stale = hook.get_access_token()
    assert sibling.get_access_token() == stale
    _pretend_obtained_long_ago(hook.token_store, "dbx_local")
    fresh = hook.refresh_access_token(include_tokens=True)["access_token"]
    assert fresh != stale
    assert sibling.get_access_token() == fresh and hook.get_access_token() == fresh


def _pretend_obtained_long_ago(store: TokenStore, conn_id: str) -> None:
    """Age the stored grant's ``obtained_at`` by a minute, leaving this process's cache alone."""
    record = store.read(conn_id)
    assert record is not None
    store.write(
        conn_id,
        record.service,
        {**record.payload, OBTAINED_AT_KEY: time.time() - 60},
        expected_version=record.version,
        expires_at=record.expires_at,
        refresh_issued_at=record.refresh_issued_at,
        seed_fingerprint=record.seed_fingerprint,
    )


def _force_refresh_in_another_process(conn_id: str) -> str:
    """``refresh_access_token()`` in a fresh interpreter (same connection, store and key); its new token."""
    code = (
        "from dropbox_box_provider.hooks.dropbox import DropboxHook\n"
        f"print(DropboxHook({conn_id!r}).refresh_access_token(include_tokens=True)['access_token'])\n"
    )
    env: dict[str, Any] = dict(os.environ)
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip().splitlines()[-1]
