"""BaseOAuthHook through DropboxHook: real Airflow connections (AIRFLOW_CONN_<ID> JSON and the metastore),
the emulator over loopback, real sqlite token stores. Token lifecycle, 401 -> refresh once, retries,
the reference connectors' OAuth procedures, the connection test, and secret hygiene in logs."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk._shared.secrets_masker import redact
from cryptography.fernet import Fernet

from dropbox_box_provider.auth.manager import OBTAINED_AT_KEY
from dropbox_box_provider.emulator import seed
from dropbox_box_provider.errors import AuthConfigError, RateLimited, ReauthorizationRequired, ServiceError
from dropbox_box_provider.hooks.dropbox import DropboxHook
from dropbox_box_provider.hooks.progress import TransferProgress
from dropbox_box_provider.testing import EmulatedServices
from tests.fixtures.airflow import AirflowEnv
from tests.helpers.dropbox import FAST, dropbox_connection, dropbox_tokens, set_connection, store_location

ACCOUNT_ROUTE = "/2/users/get_current_account"


@pytest.fixture(autouse=True)
def airflow_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """A tmp AIRFLOW_HOME (default token store) and ``[core] fernet_key`` for this process's lookups."""
    key = Fernet.generate_key().decode()
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow_home"))
    monkeypatch.setenv("AIRFLOW__CORE__FERNET_KEY", key)
    return key


@pytest.fixture
def emu(emulated_services: EmulatedServices) -> EmulatedServices:
    return emulated_services


def route_counts(emu: EmulatedServices, route: str) -> dict[str, int]:
    counts: dict[str, int] = emu.client.stats()["dropbox"]["routes"].get(route, {})
    return counts


def refreshes(emu: EmulatedServices) -> int:
    return int(emu.client.stats()["dropbox"]["token"].get("refresh_token", {}).get("ok", 0))


def meta_refresh_token(hook: DropboxHook) -> str:
    """The refresh token the hook's store holds now."""
    token = hook.get_token_set().refresh_token
    assert token
    return token


def age_record(hook: DropboxHook, seconds: float) -> None:
    """Pretend the stored tokens were obtained ``seconds`` ago (so a forced refresh does not reuse them)."""
    record = hook.token_store.read(hook.conn_id)
    assert record is not None
    hook.token_store.write(
        hook.conn_id,
        record.service,
        {**record.payload, OBTAINED_AT_KEY: time.time() - seconds},
        expected_version=record.version,
        expires_at=record.expires_at,
        refresh_issued_at=record.refresh_issued_at,
        seed_fingerprint=record.seed_fingerprint,
    )
    hook.token_manager.forget(hook.conn_id)


# ----------------------------------------------------------------------------- configuration


def test_auth_config_from_env_connection_masks_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    set_connection(
        monkeypatch,
        "dbx_cfg",
        login="my-app-key",
        password="my-app-secret-123",
        host="http://127.0.0.1:9",
        extra={
            "InitiateOAuth": "REFRESH",
            "OAuthRefreshToken": "seed-refresh-token-xyz",
            "verifier": "one-time-code-abc",
            "OAuthSettingsLocation": "postgresql://airflow:pg-pass-777@127.0.0.1:5432/tokens",
            "select_user": "dbmid:member",
        },
    )
    hook = DropboxHook("dbx_cfg")
    config = hook.get_auth_config()
    assert (config.client_id, config.client_secret, config.initiate_oauth) == (
        "my-app-key",
        "my-app-secret-123",
        "REFRESH",
    )
    assert config.refresh_token == "seed-refresh-token-xyz" and config.verifier == "one-time-code-abc"
    assert hook.get_auth_config() is config  # read once per hook
    for secret in ("my-app-secret-123", "seed-refresh-token-xyz", "one-time-code-abc", "pg-pass-777"):
        assert redact(f"value={secret}!") == "value=***!", secret
    assert "pg-pass-777" not in repr(config)
    assert hook.api_url("https://api.dropboxapi.com/2/files/list_folder") == (
        "http://127.0.0.1:9/api.dropboxapi.com/2/files/list_folder"
    )
    assert hook.act_as_headers() == {"Dropbox-API-Select-User": "dbmid:member"}


def test_bad_connection_raises_typed_error_naming_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    set_connection(monkeypatch, "dbx_bad", login="app", extra={"initiate_oauht": "REFRESH"})
    with pytest.raises(AuthConfigError, match="did you mean 'initiate_oauth'"):
        DropboxHook("dbx_bad").get_auth_config()


def test_initiate_off_without_token_builds_url_but_refuses_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    set_connection(monkeypatch, "dbx_off", login="custom-app", extra={"InitiateOAuth": "OFF"})
    hook = DropboxHook("dbx_off")
    auth = hook.get_authorization_url()
    assert auth["url"].startswith("https://www.dropbox.com/oauth2/authorize?")
    assert "client_id=custom-app" in auth["url"] and f"state={auth['state']}" in auth["url"]
    assert auth["code_verifier"] and "code_challenge=" in auth["url"]  # no secret: PKCE
    assert auth["redirect_uri"] is None  # no callback_url: the no-redirect (headless) flow
    with pytest.raises(AuthConfigError, match="InitiateOAuth is OFF and no access token is set"):
        hook.get_access_token()
    ok, message = hook.test_connection()
    assert not ok and "dropbox-box-auth authorize dbx_off" in message


# ----------------------------------------------------------------------------- token lifecycle


def test_procedures_exchange_refresh_and_revoke(
    monkeypatch: pytest.MonkeyPatch, emu: EmulatedServices, tmp_path: Path
) -> None:
    set_connection(
        monkeypatch,
        "dbx_proc",
        login=seed.DEMO_DROPBOX_CLIENT_ID,
        password=seed.DEMO_DROPBOX_CLIENT_SECRET,
        host=emu.url,
        extra={"initiate_oauth": "REFRESH", "oauth_settings_location": store_location(tmp_path)},
    )
    hook = DropboxHook("dbx_proc")
    with pytest.raises(ReauthorizationRequired, match="dropbox-box-auth authorize dbx_proc"):
        hook.get_access_token()  # nothing authorized yet and REFRESH never asks a person

    auth = hook.get_authorization_url()
    assert auth["url"].startswith(f"{emu.url}/www.dropbox.com/oauth2/authorize?")
    code = emu.client.authorize("dropbox", seed.DEMO_DROPBOX_CLIENT_ID, token_access_type="offline")
    meta = hook.get_access_token_from_code(code)
    assert "access_token" not in meta and "refresh_token" not in meta
    assert 14000 < meta["expires_in"] <= 14400 and meta["account"] == seed.DEMO_DROPBOX_ACCOUNT_ID
    assert meta["has_refresh_token"] is True
    assert DropboxHook("dbx_proc").get_current_account()["email"] == "demo@example.com"

    before = refreshes(emu)
    first = hook.get_access_token()
    # Moments after another refresh, a forced refresh reuses that token (the manager's single flight).
    assert hook.refresh_access_token(include_tokens=True)["access_token"] == first
    assert refreshes(emu) == before
    explicit = hook.refresh_access_token(refresh_token=meta_refresh_token(hook), include_tokens=True)
    assert refreshes(emu) == before + 1 and explicit["access_token"] != first
    assert hook.get_access_token() == explicit["access_token"]
    age_record(hook, seconds=60)
    forced = hook.refresh_access_token()
    assert refreshes(emu) == before + 2 and 14000 < forced["expires_in"] <= 14400
    assert hook.get_access_token() != explicit["access_token"]

    definition = {"conn_type": "dropbox", "login": seed.DEMO_DROPBOX_CLIENT_ID, "host": emu.url}
    hook.token_store.save_connection("dbx_proc", definition)  # as `dropbox-box-auth save-connection` does
    hook.revoke()
    assert hook.token_store.read("dbx_proc") is None  # the tokens are gone...
    assert (
        hook.token_store.get_connection("dbx_proc") == definition
    )  # ...the saved definition stays (as the CLI)
    with pytest.raises(ReauthorizationRequired):
        DropboxHook("dbx_proc").get_current_account()


def test_hooks_share_one_token_manager_and_cache(
    monkeypatch: pytest.MonkeyPatch, emu: EmulatedServices, tmp_path: Path
) -> None:
    dropbox_connection(monkeypatch, emu, tmp_path, "dbx_shared")
    one, two = DropboxHook("dbx_shared"), DropboxHook("dbx_shared")
    token = one.get_access_token()
    calls = emu.client.stats()["dropbox"]["routes"]["/oauth2/token"]
    assert two.token_manager is one.token_manager
    assert two.get_access_token() == token
    assert emu.client.stats()["dropbox"]["routes"]["/oauth2/token"] == calls  # no second refresh


def test_401_invalidates_refreshes_and_retries_once(
    monkeypatch: pytest.MonkeyPatch, emu: EmulatedServices, tmp_path: Path
) -> None:
    dropbox_connection(monkeypatch, emu, tmp_path, "dbx_401")
    hook = DropboxHook("dbx_401")
    hook.get_current_account()
    stale = hook.get_access_token()
    assert emu.client.expire_access_tokens(token=stale) == 1
    before = refreshes(emu)
    assert hook.get_current_account()["account_id"] == seed.DEMO_DROPBOX_ACCOUNT_ID
    assert route_counts(emu, ACCOUNT_ROUTE) == {"200": 2, "401": 1}
    assert refreshes(emu) == before + 1 and hook.get_access_token() != stale

    # A 401 that a new token does not cure is retried exactly once, then surfaces as a typed error.
    emu.client.fault("*" + ACCOUNT_ROUTE, status=401, count=5)
    with pytest.raises(ServiceError) as caught:
        hook.get_current_account()
    assert caught.value.status == 401
    assert route_counts(emu, ACCOUNT_ROUTE) == {"200": 2, "401": 3}


def test_async_requests_refresh_after_401(
    monkeypatch: pytest.MonkeyPatch, emu: EmulatedServices, tmp_path: Path
) -> None:
    dropbox_connection(monkeypatch, emu, tmp_path, "dbx_async")
    hook = DropboxHook("dbx_async")

    async def scenario() -> tuple[str, dict[str, Any]]:
        token = await hook.aget_access_token()
        emu.client.expire_access_tokens(token=token)
        account = await hook.arpc("users/get_current_account")
        await hook.aclose()
        return token, account

    stale, account = asyncio.run(scenario())
    assert account["email"] == "demo@example.com"
    assert route_counts(emu, ACCOUNT_ROUTE) == {"200": 1, "401": 1}
    assert hook.get_access_token() != stale


def test_static_token_is_used_as_is_and_not_refreshed(
    monkeypatch: pytest.MonkeyPatch, emu: EmulatedServices
) -> None:
    tokens = dropbox_tokens(emu)
    set_connection(
        monkeypatch,
        "dbx_static",
        host=emu.url,
        extra={"auth_scheme": "static", "access_token": tokens.access_token},
    )
    hook = DropboxHook("dbx_static")
    assert hook.get_current_account()["email"] == "demo@example.com"
    emu.client.expire_access_tokens(token=tokens.access_token)
    with pytest.raises(ServiceError) as caught:
        hook.get_current_account()
    assert caught.value.status == 401 and tokens.access_token not in str(caught.value)
    assert route_counts(emu, ACCOUNT_ROUTE) == {"200": 1, "401": 1}  # no refresh, no second try
    assert refreshes(emu) == 0


# ----------------------------------------------------------------------------- retries


def test_429_retry_after_is_honoured(
    monkeypatch: pytest.MonkeyPatch, emu: EmulatedServices, tmp_path: Path
) -> None:
    dropbox_connection(monkeypatch, emu, tmp_path, "dbx_429")
    hook = DropboxHook("dbx_429", retry_policy=FAST)
    hook.get_access_token()
    emu.client.fault("*" + ACCOUNT_ROUTE, status=429, retry_after=1, count=1)
    started = time.monotonic()
    assert hook.get_current_account()["email"] == "demo@example.com"
    assert time.monotonic() - started >= 0.95  # waited as told, not the 0.05 s backoff
    assert route_counts(emu, ACCOUNT_ROUTE) == {"429": 1, "200": 1}

    emu.client.fault("*" + ACCOUNT_ROUTE, status=429, retry_after=30, count=1)
    with pytest.raises(RateLimited) as caught:
        hook.get_current_account()  # a hint beyond max_retry_after ends the loop at once
    assert caught.value.retry_after == 30


def test_5xx_and_dropped_connections_are_retried(
    monkeypatch: pytest.MonkeyPatch, emu: EmulatedServices, tmp_path: Path
) -> None:
    dropbox_connection(monkeypatch, emu, tmp_path, "dbx_5xx")
    hook = DropboxHook("dbx_5xx", retry_policy=FAST)
    hook.get_access_token()
    emu.client.fault("*" + ACCOUNT_ROUTE, status=503, count=2)
    assert hook.get_current_account()["email"] == "demo@example.com"
    emu.client.fault("*" + ACCOUNT_ROUTE, drop=True, count=1)
    assert hook.get_current_account()["email"] == "demo@example.com"
    assert route_counts(emu, ACCOUNT_ROUTE) == {"503": 2, "200": 2, "0": 1}
    emu.client.fault("*" + ACCOUNT_ROUTE, status=500, count=10)
    with pytest.raises(ServiceError) as caught:
        hook.get_current_account()
    assert caught.value.status == 500 and "run the task again later" in str(caught.value)


# ----------------------------------------------------------------------------- connection test, logs


def test_connection_test_reports_account_and_expiry(
    monkeypatch: pytest.MonkeyPatch, emu: EmulatedServices, tmp_path: Path
) -> None:
    tokens = dropbox_connection(monkeypatch, emu, tmp_path, "dbx_ok")
    ok, message = DropboxHook("dbx_ok").test_connection()
    assert ok, message
    assert "Demo User <demo@example.com>" in message and "valid for another 3h 5" in message
    assert tokens.refresh_token and tokens.refresh_token not in message

    bogus = "bogus-refresh-token-0123456789"
    set_connection(
        monkeypatch,
        "dbx_broken",
        login=seed.DEMO_DROPBOX_CLIENT_ID,
        password=seed.DEMO_DROPBOX_CLIENT_SECRET,
        host=emu.url,
        extra={"refresh_token": bogus, "oauth_settings_location": store_location(tmp_path)},
    )
    ok, message = DropboxHook("dbx_broken").test_connection()
    assert not ok and "dropbox-box-auth authorize dbx_broken" in message
    assert bogus not in message and seed.DEMO_DROPBOX_CLIENT_SECRET not in message


def test_no_token_value_reaches_logs(
    monkeypatch: pytest.MonkeyPatch,
    emu: EmulatedServices,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="httpx")  # Airflow sets httpx to WARNING
    seed_tokens = dropbox_connection(monkeypatch, emu, tmp_path, "dbx_logs")
    hook = DropboxHook("dbx_logs", retry_policy=FAST)
    seen = {seed_tokens.access_token, seed_tokens.refresh_token, seed.DEMO_DROPBOX_CLIENT_SECRET}
    hook.get_current_account()
    seen.add(hook.get_access_token())
    emu.client.expire_access_tokens(token=hook.get_access_token())
    emu.client.fault("*" + ACCOUNT_ROUTE, status=429, retry_after=0, count=1)
    hook.get_current_account()  # 429 retry warning, 401, refresh
    seen.add(hook.get_access_token())
    seen.add(hook.refresh_access_token(include_tokens=True)["access_token"])
    hook.test_connection()
    out, err = capsys.readouterr()
    logged = caplog.text + out + err
    assert "retrying in" in logged and "HTTP Request" in logged  # the logs were really captured
    for token in seen:
        assert token and token not in logged
        if token != seed_tokens.access_token:  # the hook never saw the seed access token
            assert redact(f"x {token} y") == "x *** y"  # registered with Airflow's masker


def test_transfer_progress_logs_at_most_once_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="progress-test")
    now = [0.0]
    progress = TransferProgress(
        "upload x", 100 * 2**20, interval=5.0, logger=logging.getLogger("progress-test"), clock=lambda: now[0]
    )
    for _ in range(100):
        now[0] += 0.25
        progress.update(2**20)
    progress.finish()
    lines = [r.getMessage() for r in caplog.records if r.name == "progress-test"]
    assert len(lines) == 6  # at 5, 10, 15, 20 and 25 s, plus the closing line
    assert "100.0 MiB of 100.0 MiB (100%)" in lines[-1] and "MB/s" in lines[-1]
    quiet = TransferProgress("tiny", 10, logger=logging.getLogger("progress-test"))
    quiet.update(10)
    quiet.finish()
    assert len([r for r in caplog.records if r.name == "progress-test"]) == 6


# ----------------------------------------------------------------------------- metastore connection


@pytest.mark.airflow
@pytest.mark.slow
def test_metastore_connection_from_cli_in_a_fresh_process(
    airflow_env: AirflowEnv, emu: EmulatedServices, tmp_path: Path
) -> None:
    tokens = dropbox_tokens(emu)
    conn = {
        "conn_type": "dropbox",
        "login": seed.DEMO_DROPBOX_CLIENT_ID,
        "password": seed.DEMO_DROPBOX_CLIENT_SECRET,
        "host": emu.url,
        "extra": {"initiate_oauth": "REFRESH", "refresh_token": tokens.refresh_token},
    }
    airflow_env.run("connections", "add", "dbx_meta", "--conn-json", json.dumps(conn))
    code = (
        "import json\n"
        "from dropbox_box_provider.hooks.dropbox import DropboxHook\n"
        "hook = DropboxHook('dbx_meta')\n"
        "hook.write_bytes('/from metastore.txt', b'hi', mode='overwrite')\n"
        "print(json.dumps({'account': hook.get_current_account()['email'], "
        "'test': hook.test_connection(), 'names': [e['name'] for e in hook.list_folder('/')]}))\n"
    )
    # A plain process reads env vars only; server processes (api-server, scheduler) read the metastore.
    server = AirflowEnv(airflow_env.home, {**airflow_env.env, "_AIRFLOW_PROCESS_CONTEXT": "server"})
    result = server.python(code)
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["account"] == "demo@example.com"
    assert answer["test"][0] is True and "Demo User" in answer["test"][1]
    assert answer["names"] == ["from metastore.txt"]
    # The default store is the sqlite file in that AIRFLOW_HOME, encrypted with its fernet key.
    assert (airflow_env.home / "oauth_tokens.db").exists()
    assert tokens.refresh_token and tokens.refresh_token not in result.stdout + result.stderr
