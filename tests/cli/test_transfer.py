"""Headless Option 2: ``export`` on one AIRFLOW_HOME, ``import`` on another, then the tokens work there."""

from __future__ import annotations

import json
import stat
import textwrap
from pathlib import Path

import pytest

from dropbox_box_provider.auth import flows
from dropbox_box_provider.auth.config import AuthConfig
from dropbox_box_provider.auth.manager import TokenManager
from dropbox_box_provider.store.factory import open_store
from tests.cli.helpers import CliHome, error_line, make_home, unique
from tests.fixtures.emulator import RunningEmulator

pytestmark = pytest.mark.airflow

PASSPHRASE = "a long transfer passphrase"
BACKEND = "dropbox_box_provider.secrets.token_store.TokenStoreBackend"

USE_ON_HEADLESS = textwrap.dedent(
    """
    import os, httpx
    os.environ["_AIRFLOW_PROCESS_CONTEXT"] = "server"
    from airflow.sdk import BaseHook
    from dropbox_box_provider.auth.config import AuthConfig
    from dropbox_box_provider.auth.manager import TokenManager
    from dropbox_box_provider.secrets.token_store import resolve_token_store
    config = AuthConfig.from_connection(BaseHook.get_connection("bx"))
    token = TokenManager(resolve_token_store(config)).get_valid_token("bx", config).access_token
    url = config.endpoint + "/api.box.com/2.0/users/me"
    me = httpx.get(url, headers={"Authorization": "Bearer " + token})
    print(me.status_code, me.json()["name"])
    """
)


def _authorized_box_home(tmp_path: Path, emulator: RunningEmulator) -> tuple[CliHome, str]:
    """A browser machine whose store holds tokens for Box connection ``bx`` (exchanged in-process)."""
    home = make_home(tmp_path / "desktop")
    client_id, secret = unique("cli-box"), unique("box-secret")
    emulator.client.register_app("box", client_id, secret, redirect_uris=["http://localhost:33333"])
    definition = {"conn_type": "box_oauth", "login": client_id, "password": secret, "host": emulator.url}
    home.add_connection("bx", definition)
    config = AuthConfig.from_connection(
        type("C", (), {**definition, "conn_id": "bx", "extra_dejson": {}})(), service="box"
    )
    tokens = flows.exchange_code(config, emulator.client.authorize("box", client_id))
    TokenManager(open_store(str(home.store_path), home.key)).store_tokens("bx", config, tokens)
    return home, secret


def test_export_then_import_on_a_headless_home(tmp_path: Path, emulator: RunningEmulator) -> None:
    desktop, secret = _authorized_box_home(tmp_path, emulator)
    tokens = desktop.stored_tokens("bx")
    assert tokens is not None
    out = tmp_path / "bx.settings"
    passenv = {"DROPBOX_BOX_AUTH_PASSPHRASE": PASSPHRASE}

    done = desktop.run("export", "bx", "--out", str(out), env=passenv)
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    sealed = out.read_bytes()
    for value in (tokens["access_token"], tokens["refresh_token"], secret):
        assert value.encode() not in sealed
    again = desktop.run("export", "bx", "--out", str(out), env=passenv)
    assert again.returncode == 1 and "already exists" in error_line(again.stderr)
    assert out.read_bytes() == sealed

    headless = make_home(tmp_path / "headless")
    headless_store = headless.airflow.home / "shared_tokens.db"
    headless.env["AIRFLOW__SECRETS__BACKEND"] = BACKEND
    headless.env["AIRFLOW__SECRETS__BACKEND_KWARGS"] = json.dumps(
        {"store": str(headless_store), "key": headless.key}
    )
    wrong = headless.run("import", str(out), env={"DROPBOX_BOX_AUTH_PASSPHRASE": "not the passphrase"})
    assert wrong.returncode == 1 and "passphrase is wrong" in error_line(wrong.stderr)
    tampered = tmp_path / "tampered.settings"
    document = json.loads(sealed)
    document["data"] = (
        document["data"][:40] + ("A" if document["data"][40] != "A" else "B") + document["data"][41:]
    )
    tampered.write_text(json.dumps(document))
    bad = headless.run("import", str(tampered), env=passenv)
    assert bad.returncode == 1 and "modified" in error_line(bad.stderr)
    assert not headless_store.exists() or open_store(str(headless_store), headless.key).list_meta() == []

    done = headless.run("import", str(out), env=passenv)
    assert done.returncode == 0, done.stderr
    store = open_store(str(headless_store), headless.key)
    assert store.get_connection("bx") is not None
    record = store.read("bx")
    assert record is not None and record.payload["refresh_token"] == tokens["refresh_token"]
    twice = headless.run("import", str(out), env=passenv)
    assert twice.returncode == 1 and "--force" in error_line(twice.stderr)

    used = headless.airflow.python(USE_ON_HEADLESS)
    assert used.stdout.strip().endswith("200 Demo User"), used.stderr
    desktop.assert_no_secret_printed(tokens["access_token"], tokens["refresh_token"], secret)
    headless.assert_no_secret_printed(tokens["access_token"], tokens["refresh_token"], secret)
