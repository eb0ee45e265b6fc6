"""Web mode (url, exchange), refresh, status, revoke, rotate-keys and save-connection, as subprocesses."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from dropbox_box_provider.store.factory import open_store
from tests.cli.helpers import CliHome, consent, error_line, unique
from tests.fixtures.airflow import AirflowEnv
from tests.fixtures.emulator import RunningEmulator
from tests.helpers.tokens import expire_stored

pytestmark = pytest.mark.airflow


def test_web_mode_then_refresh_status_and_revoke(home: CliHome, emulator: RunningEmulator) -> None:
    callback = "https://airflow.example.com/oauth/box"
    client_id, secret = unique("cli-box"), unique("box-secret")
    emulator.client.register_app("box", client_id, secret, redirect_uris=[callback])
    home.add_connection(
        "bx", {"conn_type": "box_oauth", "login": client_id, "password": secret, "host": emulator.url}
    )

    shown = home.run("url", "bx", "--callback-url", callback, "--json")
    assert shown.returncode == 0, shown.stderr
    request = json.loads(shown.stdout)
    assert request["redirect_uri"] == callback and request["code_verifier"] is None
    redirected = consent(request["url"]).headers["location"]
    done = home.run("exchange", "bx", redirected, "--callback-url", callback, "--state", request["state"])
    assert done.returncode == 0, done.stderr
    assert "Connected 'bx' to Box as Demo User" in done.stdout
    first = home.stored_tokens("bx")
    assert first is not None

    listed = home.run("status", "--json")
    assert listed.returncode == 0, listed.stderr
    (row,) = json.loads(listed.stdout)
    assert row["conn_id"] == "bx" and row["service"] == "box" and row["scheme"] == "oauth"
    assert row["account"].startswith("Demo User") and row["needs_reauthorization"] is False
    assert row["expires_at"] > time.time() + 3000 and row["store"].endswith("oauth_tokens.db")
    assert row["has_refresh_token"] and row["refresh_issued_at"] <= time.time()

    # A forced refresh within FORCE_REFRESH_REUSE_SECONDS of the exchange reuses its tokens (another worker
    # "just refreshed"); with the token expired the refresh must call Box however fast the CLI starts.
    expire_stored(open_store(str(home.store_path), home.key), "bx")
    refreshed = home.run("refresh", "bx")
    assert refreshed.returncode == 0 and "expires in" in refreshed.stderr
    second = home.stored_tokens("bx")
    assert second is not None and second["refresh_token"] != first["refresh_token"]  # Box rotated it
    assert refreshed.stdout == ""

    revoked = home.run("revoke", "bx")
    assert revoked.returncode == 0, revoked.stderr
    assert home.stored_tokens("bx") is None
    table = home.run("status", "bx")
    assert table.returncode == 1
    assert "bx" in table.stdout and "re-authorize" in table.stdout and "no tokens yet" in table.stdout
    home.assert_no_secret_printed(
        first["access_token"], first["refresh_token"], second["access_token"], second["refresh_token"], secret
    )


def test_status_flags_old_box_grants_and_undecryptable_records(
    home: CliHome, emulator: RunningEmulator
) -> None:
    for conn_id in ("old_box", "lost_key", "fresh_db"):
        conn_type = "dropbox" if conn_id == "fresh_db" else "box_oauth"
        home.add_connection(
            conn_id, {"conn_type": conn_type, "login": "app", "password": "secret-x", "host": emulator.url}
        )
    now = time.time()
    store = open_store(str(home.store_path), home.key)
    payload = {"access_token": "at-old", "refresh_token": "rt-old", "expires_at": now + 3000}
    store.write(
        "old_box", "box", payload, expected_version=None, expires_at=now + 3000,
        refresh_issued_at=now - 61 * 86400, seed_fingerprint=None,
    )  # fmt: skip
    store.write(
        "fresh_db", "dropbox", {**payload, "refresh_issued_at": now}, expected_version=None,
        expires_at=now + 3000, refresh_issued_at=now, seed_fingerprint=None,
    )  # fmt: skip
    open_store(str(home.store_path), Fernet.generate_key().decode()).write(
        "lost_key", "box", payload, expected_version=None, expires_at=None, refresh_issued_at=None,
        seed_fingerprint=None,
    )  # fmt: skip
    listed = home.run("status", "--json")
    assert listed.returncode == 1, listed.stderr
    rows = {row["conn_id"]: row for row in json.loads(listed.stdout)}
    assert rows["old_box"]["needs_reauthorization"] and "60 days" in rows["old_box"]["problem"]
    assert rows["lost_key"]["needs_reauthorization"] and "cannot be decrypted" in rows["lost_key"]["problem"]
    assert not rows["fresh_db"]["needs_reauthorization"] and rows["fresh_db"]["has_refresh_token"]
    home.assert_no_secret_printed("at-old", "rt-old", "secret-x")


def test_rotate_keys_needs_no_airflow_connection(tmp_path: Path) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    path = str(tmp_path / "tokens.db")
    open_store(path, old).write(
        "c", "dropbox", {"access_token": "at-rotate"}, expected_version=None, expires_at=None,
        refresh_issued_at=None, seed_fingerprint=None,
    )  # fmt: skip
    from tests.cli.helpers import make_home

    home = make_home(tmp_path / "home")
    done = home.run("rotate-keys", "--store", path, f"--key={new},{old}")  # keys may start with "-"
    assert done.returncode == 0, done.stderr
    assert "Re-encrypted 1 record(s)" in done.stdout
    record = open_store(path, new).read("c")
    assert record is not None and record.payload["access_token"] == "at-rotate"
    failed = home.run("rotate-keys", "--store", path, f"--key={Fernet.generate_key().decode()}")
    assert failed.returncode == 1 and "cannot be decrypted" in error_line(failed.stderr)


def test_save_connection_copies_a_metastore_connection(
    airflow_env: AirflowEnv, emulator: RunningEmulator
) -> None:
    airflow_env.run(
        "connections", "add", "meta_db", "--conn-type", "dropbox", "--conn-login", "meta-app",
        "--conn-password", "meta-secret", "--conn-host", emulator.url,
        "--conn-extra", json.dumps({"scopes": "files.content.read"}),
    )  # fmt: skip
    home = CliHome(airflow_env)
    done = home.run("save-connection", "meta_db")
    assert done.returncode == 0, done.stderr
    saved = open_store(str(home.store_path), home.key).get_connection("meta_db")
    assert saved is not None
    assert saved["login"] == "meta-app" and saved["extra"] == {"scopes": "files.content.read"}
    missing = home.run("save-connection", "nowhere")
    assert missing.returncode == 1 and "is not defined" in error_line(missing.stderr)
    home.assert_no_secret_printed("meta-secret")
