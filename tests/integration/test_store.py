"""TokenStore against real sqlite files, the real PostgreSQL and the memory store."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from dropbox_box_provider.errors import LeaseLost, StoreConflict, TokenStoreError
from dropbox_box_provider.store import default_store_path, normalize_store_url, open_store
from dropbox_box_provider.store.base import TokenStore
from dropbox_box_provider.store.memory import memory_space
from tests.fixtures.databases import new_key
from tests.fixtures.environment import free_port

VALID_KEY = "A" * 43 + "="  # 32 zero bytes: a well-formed Fernet key (parametrize ids must be stable)
PAYLOAD = {"access_token": "AT-secret", "refresh_token": "RT-secret", "expires_at": 123.0}


def _write(store: TokenStore, conn_id: str, payload: dict[str, Any], expected: int | None, **kw: Any) -> int:
    record = store.write(
        conn_id,
        "box",
        payload,
        expected_version=expected,
        expires_at=payload.get("expires_at"),
        refresh_issued_at=kw.pop("refresh_issued_at", None),
        seed_fingerprint=kw.pop("seed_fingerprint", "seed-fp"),
        **kw,
    )
    return record.version


def _raw_payload(url: str, conn_id: str) -> str | None:
    """The stored ciphertext, read behind the store's back."""
    if url.startswith("memory://"):
        row = memory_space(url[len("memory://") :]).rows.get(conn_id)
        return None if row is None else row.payload
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            value = conn.execute(
                text("SELECT payload FROM oauth_token_records WHERE conn_id = :c"), {"c": conn_id}
            ).scalar()
            return None if value is None else str(value)
    finally:
        engine.dispose()


def _set_raw_payload(url: str, conn_id: str, ciphertext: str) -> None:
    if url.startswith("memory://"):
        memory_space(url[len("memory://") :]).rows[conn_id].payload = ciphertext
        return
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text("UPDATE oauth_token_records SET payload = :p WHERE conn_id = :c"),
                {"p": ciphertext, "c": conn_id},
            )
    finally:
        engine.dispose()


# -- basic behaviour ---------------------------------------------------------------------------------


def test_write_read_round_trip_and_versions(store_url: str, store_key: str) -> None:
    store = open_store(store_url, store_key)
    assert store.read("c1") is None
    assert _write(store, "c1", PAYLOAD, None, refresh_issued_at=100.0) == 1
    record = store.read("c1")
    assert record is not None
    assert record.payload == PAYLOAD
    assert (record.version, record.service, record.seed_fingerprint) == (1, "box", "seed-fp")
    assert record.expires_at == 123.0
    assert record.refresh_issued_at == 100.0
    assert record.updated_at is not None and abs(record.updated_at - time.time()) < 60
    assert _write(store, "c1", {"access_token": "two"}, 1) == 2
    record = store.read("c1")
    assert record is not None and record.payload == {"access_token": "two"} and record.version == 2
    assert list(store.iter_conn_ids()) == ["c1"]
    assert "AT-secret" not in repr(record)


def test_ciphertext_is_encrypted_at_rest(store_url: str, store_key: str) -> None:
    store = open_store(store_url, store_key)
    _write(store, "c1", PAYLOAD, None)
    raw = _raw_payload(store_url, "c1")
    assert raw is not None
    assert "AT-secret" not in raw and "RT-secret" not in raw


def test_cas_conflicts_leave_the_record_untouched(store_url: str, store_key: str) -> None:
    store = open_store(store_url, store_key)
    _write(store, "c1", PAYLOAD, None)
    with pytest.raises(StoreConflict, match="c1"):
        _write(store, "c1", {"access_token": "lost"}, None)  # "create" over an existing record
    assert _write(store, "c1", {"access_token": "winner"}, 1) == 2
    with pytest.raises(StoreConflict):
        _write(store, "c1", {"access_token": "stale"}, 1)  # a writer that read version 1
    with pytest.raises(StoreConflict):
        _write(store, "other", {"access_token": "x"}, 3)  # expects a record that does not exist
    record = store.read("c1")
    assert record is not None and record.payload == {"access_token": "winner"} and record.version == 2
    assert store.read("other") is None


def _lease_write(store: TokenStore, conn_id: str, owner: str, token: str, **kw: Any) -> Any:
    state = store.lease_state(conn_id)
    return store.write(
        conn_id,
        "box",
        {"access_token": token},
        expected_version=kw.pop("expected_version", state.version),
        expires_at=None,
        refresh_issued_at=None,
        seed_fingerprint=None,
        lease_owner=owner,
        **kw,
    )


def test_a_fenced_write_is_seen_by_the_next_reader_and_releases_the_lease(
    store_url: str, store_key: str
) -> None:
    store = open_store(store_url, store_key)
    claimed = store.claim_lease("c1", "owner-a", 30, service="box")
    assert claimed.acquired and claimed.version is None
    assert store.read("c1") is None and store.list_meta() == []  # a lease alone is no record
    assert store.lease_state("c1").holder == "owner-a"
    written = _lease_write(store, "c1", "owner-a", "a")
    assert written.version == 1
    state = store.lease_state("c1")
    assert (state.holder, state.version) == (None, 1)
    record = open_store(store_url, store_key).read("c1")
    assert record is not None and (record.payload, record.version, record.service) == (
        {"access_token": "a"},
        1,
        "box",
    )


def test_a_live_lease_excludes_other_owners_until_released(store_url: str, store_key: str) -> None:
    store = open_store(store_url, store_key)
    _write(store, "c1", PAYLOAD, None)
    assert store.claim_lease("c1", "owner-a", 30, service="box").acquired
    other = open_store(store_url, store_key).claim_lease("c1", "owner-b", 30, service="box")
    assert not other.acquired and other.holder == "owner-a" and other.version == 1
    assert other.remaining is not None and 25 < other.remaining <= 30
    assert store.claim_lease("c1", "owner-a", 30, service="box").acquired  # a repeated claim is idempotent
    with pytest.raises(LeaseLost):
        _lease_write(store, "c1", "owner-b", "intruder")
    assert store.renew_lease("c1", "owner-b", 30) is False
    store.release_lease("c1", "owner-b")  # not the holder: no effect
    assert store.lease_state("c1").holder == "owner-a"
    store.release_lease("c1", "owner-a")
    assert store.lease_state("c1").holder is None
    assert store.claim_lease("c1", "owner-b", 30, service="box").acquired
    record = store.read("c1")
    assert record is not None and record.payload == PAYLOAD


def test_an_expired_lease_can_be_taken_and_its_old_holder_never_writes(
    store_url: str, store_key: str
) -> None:
    store = open_store(store_url, store_key)
    _write(store, "c1", PAYLOAD, None)
    assert store.claim_lease("c1", "owner-a", 0.3, service="box").acquired
    assert store.renew_lease("c1", "owner-a", 0.3) is True
    time.sleep(0.5)
    assert store.lease_state("c1").holder is None
    assert store.claim_lease("c1", "owner-b", 30, service="box").acquired
    assert store.renew_lease("c1", "owner-a", 30) is False
    with pytest.raises(LeaseLost, match="no longer held"):
        _lease_write(store, "c1", "owner-a", "stale")
    assert _lease_write(store, "c1", "owner-b", "fresh").version == 2


def test_a_write_outside_the_lease_makes_the_fenced_write_conflict(store_url: str, store_key: str) -> None:
    store = open_store(store_url, store_key)
    _write(store, "c1", PAYLOAD, None)
    assert store.claim_lease("c1", "owner-a", 30, service="box").acquired
    _write(store, "c1", {"access_token": "sneaky"}, 1)
    with pytest.raises(StoreConflict):
        _lease_write(store, "c1", "owner-a", "late", expected_version=1)
    record = store.read("c1")
    assert record is not None and record.payload == {"access_token": "sneaky"}


def test_a_slow_lease_holder_never_blocks_another_connection(store_url: str, store_key: str) -> None:
    store = open_store(store_url, store_key)
    assert store.claim_lease("slow", "owner-a", 30, service="dropbox").acquired
    started = time.monotonic()
    other = open_store(store_url, store_key)
    assert other.claim_lease("fast", "owner-b", 30, service="box").acquired
    _lease_write(other, "fast", "owner-b", "t")
    assert time.monotonic() - started < 2


def test_list_meta_needs_no_key(store_url: str, store_key: str) -> None:
    store = open_store(store_url, store_key)
    _write(store, "c1", PAYLOAD, None, refresh_issued_at=50.0)
    store.save_connection("c2", {"conn_type": "dropbox", "login": "app"})
    stranger = open_store(store_url, new_key())
    metas = {meta.conn_id: meta for meta in stranger.list_meta()}
    assert set(metas) == {"c1", "c2"}
    assert (metas["c1"].service, metas["c1"].version, metas["c1"].expires_at) == ("box", 1, 123.0)
    assert metas["c1"].refresh_issued_at == 50.0
    assert metas["c1"].seed_fingerprint == "seed-fp"
    assert metas["c1"].has_connection is False
    assert metas["c2"].has_connection is True and metas["c2"].service == "dropbox"
    assert "secret" not in repr(metas).lower()


def test_saved_connections_live_beside_tokens(store_url: str, store_key: str) -> None:
    store = open_store(store_url, store_key)
    connection = {"conn_type": "box_oauth", "login": "cid", "password": "csecret", "extra": {"a": 1}}
    store.save_connection("c1", connection)
    assert store.read("c1") is None  # a saved connection alone holds no tokens
    assert store.get_connection("c1") == connection
    assert store.get_connection("missing") is None
    assert _write(store, "c1", PAYLOAD, None) >= 1
    store.save_connection("c1", connection | {"login": "cid2"})
    assert store.get_connection("c1") == connection | {"login": "cid2"}
    record = store.read("c1")
    assert record is not None and record.payload == PAYLOAD
    assert store.delete("c1") is True
    assert store.delete("c1") is False
    assert store.read("c1") is None and store.get_connection("c1") is None


# -- keys and corruption -----------------------------------------------------------------------------


def test_wrong_key_names_the_connection_and_leaves_the_record(store_url: str, store_key: str) -> None:
    store = open_store(store_url, store_key)
    _write(store, "conn-wrong-key", PAYLOAD, None)
    before = _raw_payload(store_url, "conn-wrong-key")
    other = open_store(store_url, new_key())
    with pytest.raises(TokenStoreError, match="conn-wrong-key") as excinfo:
        other.read("conn-wrong-key")
    message = str(excinfo.value)
    assert "key" in message and "rotated" in message
    assert store_key not in message
    with pytest.raises(TokenStoreError, match="Refusing"):
        _write(other, "conn-wrong-key", {"access_token": "overwrite"}, 1)
    assert _raw_payload(store_url, "conn-wrong-key") == before
    record = store.read("conn-wrong-key")
    assert record is not None and record.payload == PAYLOAD


def test_corrupt_ciphertext_is_reported_never_overwritten_unless_forced(
    store_url: str, store_key: str
) -> None:
    store = open_store(store_url, store_key)
    _write(store, "c1", PAYLOAD, None)
    _set_raw_payload(store_url, "c1", "gAAAA-not-a-fernet-token")
    with pytest.raises(TokenStoreError, match="'c1'"):
        store.read("c1")
    with pytest.raises(TokenStoreError, match="Refusing"):
        _write(store, "c1", {"access_token": "x"}, 1)
    assert store.claim_lease("c1", "owner", 30, service="box").acquired
    with pytest.raises(TokenStoreError, match="Refusing"):
        _lease_write(store, "c1", "owner", "x", expected_version=1)
    assert _raw_payload(store_url, "c1") == "gAAAA-not-a-fernet-token"
    # A person re-seeding may overwrite it on purpose.
    _lease_write(store, "c1", "owner", "reseeded", expected_version=1, force=True)
    record = store.read("c1")
    assert record is not None and record.payload == {"access_token": "reseeded"} and record.version == 2


def test_key_rotation_with_multifernet(store_url: str) -> None:
    old, new = new_key(), new_key()
    _write(open_store(store_url, old), "c1", PAYLOAD, None)
    _write(open_store(store_url, old), "c2", {"access_token": "two"}, None)
    open_store(store_url, old).save_connection("c2", {"conn_type": "box_oauth"})
    rotating = open_store(store_url, f"{new},{old}")
    record = rotating.read("c1")
    assert record is not None and record.payload == PAYLOAD  # old ciphertext readable with NEW,OLD
    assert rotating.rotate_keys().rotated == 2
    only_new = open_store(store_url, new)
    assert only_new.read("c1") is not None and only_new.read("c2") is not None
    assert only_new.get_connection("c2") == {"conn_type": "box_oauth"}
    with pytest.raises(TokenStoreError):
        open_store(store_url, old).read("c1")
    # Versions are unchanged: rotation is not a logical write.
    record = only_new.read("c1")
    assert record is not None and record.version == 1


def test_rotation_stops_at_an_undecryptable_record_and_changes_nothing(
    store_url: str, store_key: str
) -> None:
    _write(open_store(store_url, store_key), "a-good", PAYLOAD, None)
    _write(open_store(store_url, new_key()), "b-foreign", PAYLOAD, None)
    before = _raw_payload(store_url, "a-good")
    with pytest.raises(TokenStoreError, match="b-foreign"):
        open_store(store_url, f"{new_key()},{store_key}").rotate_keys()
    assert _raw_payload(store_url, "a-good") == before


@pytest.mark.parametrize("bad", ["", " , ", "not-a-key", VALID_KEY + ",short"])
def test_bad_keys_are_typed_errors_without_the_key(bad: str, memory_store_url: str) -> None:
    with pytest.raises(TokenStoreError, match="Fernet") as excinfo:
        open_store(memory_store_url, bad)
    if bad.strip(" ,"):
        assert "not-a-key" not in str(excinfo.value) and "short" not in str(excinfo.value)


# -- sqlite specifics --------------------------------------------------------------------------------


def test_sqlite_files_are_private_whatever_the_umask(tmp_path: Path, store_key: str) -> None:
    path = tmp_path / "sub" / "tokens.db"
    previous = os.umask(0)
    try:
        store = open_store(str(path), store_key)
        _write(store, "c1", PAYLOAD, None)
        assert store.read("c1") is not None
        for suffix in ("", "-wal", "-shm"):
            assert stat.S_IMODE(os.stat(f"{path}{suffix}").st_mode) == 0o600, suffix
    finally:
        os.umask(previous)
        store.close()
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    connection = sqlite3.connect(path)
    try:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        connection.close()


def test_migration_from_an_empty_file(tmp_path: Path, store_key: str) -> None:
    path = tmp_path / "empty.db"
    path.touch(mode=0o600)
    store = open_store(f"sqlite:///{path}", store_key)
    assert store.list_meta() == []
    _write(store, "c1", PAYLOAD, None)
    connection = sqlite3.connect(path)
    try:
        assert connection.execute("SELECT id, version FROM oauth_tokens_schema").fetchall() == [(1, 2)]
        columns = {row[1] for row in connection.execute("PRAGMA table_info(oauth_token_records)")}
    finally:
        connection.close()
    assert columns == {
        "conn_id",
        "service",
        "version",
        "payload",
        "connection",
        "expires_at",
        "refresh_issued_at",
        "updated_at",
        "seed_fingerprint",
        "lease_owner",
        "lease_until",
    }


def test_a_newer_schema_is_refused_with_upgrade_advice(tmp_path: Path, store_key: str) -> None:
    path = tmp_path / "newer.db"
    _write(open_store(str(path), store_key), "c1", PAYLOAD, None)
    connection = sqlite3.connect(path)
    connection.execute("UPDATE oauth_tokens_schema SET version = 99")
    connection.commit()
    connection.close()
    from dropbox_box_provider.store.factory import forget_open_stores

    forget_open_stores()
    with pytest.raises(TokenStoreError, match="upgrade"):
        open_store(str(path), store_key).read("c1")


def test_a_file_that_is_not_a_database_is_a_typed_error(tmp_path: Path, store_key: str) -> None:
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(TokenStoreError, match=r"garbage\.db"):
        open_store(str(path), store_key).read("c1")


def test_an_unwritable_location_is_a_typed_error(tmp_path: Path, store_key: str) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(TokenStoreError, match="could not create its file"):
        open_store(str(blocker / "tokens.db"), store_key)


# -- locations ---------------------------------------------------------------------------------------


def test_location_normalisation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "home"))
    assert default_store_path() == str(tmp_path / "home" / "oauth_tokens.db")
    assert normalize_store_url(None) == f"sqlite:///{tmp_path / 'home' / 'oauth_tokens.db'}"
    assert normalize_store_url("") == normalize_store_url(None)
    assert normalize_store_url(str(tmp_path / "x.db")) == f"sqlite:///{tmp_path / 'x.db'}"
    assert normalize_store_url("postgres://u:p@h/db") == "postgresql+psycopg://u:p@h/db"
    assert normalize_store_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_store_url("memory://") == "memory://default"
    monkeypatch.delenv("AIRFLOW_HOME")
    assert default_store_path() == os.path.join(os.path.expanduser("~"), "airflow", "oauth_tokens.db")


@pytest.mark.parametrize(
    "url",
    [
        "mysql://u:hunter2@h/db",
        "sqlite://",
        "sqlite:///:memory:",
        "postgresql+psycopg://u:hunter2@h:notaport/db",
    ],
)
def test_unsupported_or_malformed_urls_are_typed_errors(url: str, store_key: str) -> None:
    with pytest.raises(TokenStoreError) as excinfo:
        open_store(url, store_key).read("c1")
    assert "hunter2" not in str(excinfo.value)


def test_open_store_is_cached_per_location_and_key(tmp_path: Path, store_key: str) -> None:
    path = str(tmp_path / "t.db")
    assert open_store(path, store_key) is open_store(f"sqlite:///{path}", f" {store_key} ")
    assert open_store(path, store_key) is not open_store(path, new_key())


def test_memory_stores_of_one_name_share_records(memory_store_url: str, store_key: str) -> None:
    _write(open_store(memory_store_url, store_key), "c1", PAYLOAD, None)
    record = open_store(memory_store_url, f"{new_key()},{store_key}").read("c1")
    assert record is not None and record.payload == PAYLOAD


def test_importing_the_store_package_loads_no_database_driver() -> None:
    code = (
        "import sys, dropbox_box_provider.store; "
        "bad = [m for m in ('sqlalchemy', 'psycopg', 'sqlite3') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# -- PostgreSQL specifics ----------------------------------------------------------------------------


def test_unreachable_postgres_is_a_typed_error_with_the_password_masked(store_key: str) -> None:
    url = f"postgresql://postgres:hunter2@127.0.0.1:{free_port()}/test"
    started = time.monotonic()
    with pytest.raises(TokenStoreError) as excinfo:
        open_store(url, store_key).read("c1")
    message = str(excinfo.value)
    assert "hunter2" not in message
    assert "***" in message and "What to do" in message
    assert time.monotonic() - started < 15


# -- a lease dies with its holder -------------------------------------------------------------------


def hold_lease_forever(url: str, key: str, conn_id: str, seconds: float, ready: Any) -> None:
    """Child process: take the refresh lease (kept alive by its renewer), say so, hang until killed."""
    from dropbox_box_provider.store.lease import Lease, LeaseSettings

    lease = Lease(open_store(url, key), conn_id, service="box", settings=LeaseSettings(seconds=seconds))
    lease.acquire()
    ready.set()
    while True:
        time.sleep(0.5)


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_killed_lease_holder_loses_its_lease_within_one_lease_time(
    kind: str, request: pytest.FixtureRequest, store_key: str
) -> None:
    from dropbox_box_provider.store.lease import Lease, LeaseSettings

    url = str(request.getfixturevalue(f"{kind}_store_url"))
    store = open_store(url, store_key)
    _write(store, "c1", PAYLOAD, None)
    lease_seconds = 1.5
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    child = context.Process(
        target=hold_lease_forever, args=(url, store_key, "c1", lease_seconds, ready), daemon=True
    )
    child.start()
    try:
        assert ready.wait(30), "child never took the lease"
        time.sleep(lease_seconds * 1.5)  # past one lease time: only renewals keep it
        state = store.lease_state("c1")
        assert state.holder is not None and f":{child.pid}:" in state.holder, "the live holder lost its lease"
        assert child.pid is not None
        os.kill(child.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        contender = Lease(store, "c1", service="box", settings=LeaseSettings(seconds=lease_seconds))
        assert contender.acquire() is None and contender.held
        assert time.monotonic() - killed_at <= lease_seconds + 0.5
        contender.release()
        record = store.read("c1")
        assert record is not None and record.payload == PAYLOAD
    finally:
        if child.is_alive() and child.pid is not None:
            os.kill(child.pid, signal.SIGKILL)
        child.join(5)


@pytest.mark.postgres
def test_key_rotation_rechecks_a_record_refreshed_during_it(postgres_store_url: str) -> None:
    """A worker (still encrypting with the old key) commits a refresh while the rotation runs: the rotation
    re-reads that record and re-encrypts it, so the old key can be dropped safely afterwards."""
    import psycopg

    from dropbox_box_provider.store.crypto import TokenCipher

    old, new = new_key(), new_key()
    _write(open_store(postgres_store_url, old), "c1", PAYLOAD, None)
    _write(open_store(postgres_store_url, old), "c2", PAYLOAD, None)
    options = dict(part.split("=", 1) for part in postgres_store_url.split("?", 1)[1].split("&"))
    from urllib.parse import unquote

    worker = psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", options=unquote(options["options"]))
    try:
        refreshed = TokenCipher(old).encrypt({"access_token": "refreshed-meanwhile"})
        worker.execute(
            "UPDATE oauth_token_records SET payload = %s, version = version + 1 WHERE conn_id = 'c1'",
            (refreshed,),
        )
        rotation: list[Any] = []
        rotating = threading.Thread(
            target=lambda: rotation.append(open_store(postgres_store_url, f"{new},{old}").rotate_keys())
        )
        rotating.start()
        time.sleep(1.0)  # the rotation has read c1 at version 1 and now waits on the worker's row lock
        worker.commit()
        rotating.join(30)
    finally:
        worker.close()
    assert rotation and rotation[0].skipped == ()
    only_new = open_store(postgres_store_url, new)
    record = only_new.read("c1")
    assert record is not None and record.payload == {"access_token": "refreshed-meanwhile"}
    assert only_new.read("c2") is not None
