"""Issue 21's hardening, each item against real parts: plain-HTTP endpoints, passwords in URL queries,
static tokens without a store, Box app-config secrets, sqlite file modes, an Extra that is not JSON, and a
connection test that answers a name-resolution failure quickly."""

from __future__ import annotations

import json
import logging
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from airflow.sdk._shared.secrets_masker import redact
from cryptography.fernet import Fernet

from dropbox_box_provider.auth.config import AuthConfig, redact_url_password
from dropbox_box_provider.errors import AuthConfigError, TokenStoreError
from dropbox_box_provider.hooks.dropbox import DropboxHook
from dropbox_box_provider.secrets.token_store import TokenStoreBackend, forget_configured_backend
from dropbox_box_provider.store.factory import forget_open_stores, open_store
from dropbox_box_provider.store.urls import mask_url
from tests.helpers.dropbox import set_connection

PG_PASSWORD = "Hunter2Secret"
PG_SSL_PASSWORD = "Ssl2Secret"
PG_URL = f"postgresql+psycopg://airflow@db:5432/tokens?password={PG_PASSWORD}"


@pytest.fixture(autouse=True)
def airflow_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    """A tmp AIRFLOW_HOME (default token store) and ``[core] fernet_key`` for this process's lookups."""
    key = Fernet.generate_key().decode()
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow_home"))
    monkeypatch.setenv("AIRFLOW__CORE__FERNET_KEY", key)
    forget_configured_backend()
    yield key
    forget_configured_backend()
    forget_open_stores()


# ----------------------------------------------------------------------------- 1. plain-http endpoints


@pytest.mark.parametrize(
    "host",
    [
        "http://proxy.example.com:8080",
        "http://10.0.0.5:8765",
        "http://[2001:db8::1]:80",
        "http://127.example",
    ],
)
def test_plain_http_endpoint_to_another_host_is_refused(host: str) -> None:
    with pytest.raises(AuthConfigError, match="https") as refused:
        AuthConfig.from_mapping("box", {"client_id": "a", "client_secret": "b", "endpoint": host})
    assert "allow_insecure_endpoint" in str(refused.value)


@pytest.mark.parametrize(
    "host",
    [
        "http://127.0.0.1:8765",
        "http://127.3.2.1",
        "http://localhost:9",
        "http://LOCALHOST",
        "http://[::1]:8765",
        "https://proxy.example.com:8443",
    ],
)
def test_loopback_http_and_any_https_endpoint_are_accepted(host: str) -> None:
    config = AuthConfig.from_mapping("box", {"client_id": "a", "client_secret": "b", "endpoint": host})
    assert config.endpoint == host


def test_allow_insecure_endpoint_warns_once_per_process_and_connection(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from dropbox_box_provider.auth import endpoint as endpoint_policy

    caplog.set_level(logging.WARNING)
    endpoint_policy.forget_warnings()
    fields = {
        "client_id": "a",
        "client_secret": "b",
        "endpoint": "http://proxy.example.com:8080",
        "allow_insecure_endpoint": True,
    }
    for _ in range(3):
        config = AuthConfig.from_mapping("box", fields, conn_id="insecure_one")
        assert config.allow_insecure_endpoint is True
    AuthConfig.from_mapping("box", {**fields, "allow_insecure_endpoint": "true"}, conn_id="insecure_two")
    warnings = [r.getMessage() for r in caplog.records if "clear text" in r.getMessage()]
    assert len(warnings) == 2, warnings
    assert "insecure_one" in warnings[0] and "insecure_two" in warnings[1]
    with pytest.raises(AuthConfigError, match="allow_insecure_endpoint"):
        AuthConfig.from_mapping("box", {**fields, "allow_insecure_endpoint": "maybe"})


# ----------------------------------------------------------------------------- 2. passwords in URL queries


def test_query_passwords_are_redacted_everywhere_a_url_is_shown() -> None:
    url = f"{PG_URL}&sslpassword={PG_SSL_PASSWORD}&passfile=/etc/airflow/pgpass&sslmode=require"
    shown = [
        mask_url(url),
        redact_url_password(url),
        repr(TokenStoreBackend(store=url, key=Fernet.generate_key().decode())),
        repr(
            AuthConfig.from_mapping(
                "box", {"client_id": "a", "client_secret": "b", "oauth_settings_location": url}
            )
        ),
        mask_url(f"postgresql+psycopg://airflow:{PG_PASSWORD}@db:5432/tokens"),
        open_store(url, Fernet.generate_key().decode()).url,  # SqlTokenStore.url (no connection is made)
        repr(open_store(url, Fernet.generate_key().decode())),
    ]
    for text in shown:
        assert PG_PASSWORD not in text and PG_SSL_PASSWORD not in text, text
    assert "pgpass" in shown[0] and "sslmode=require" in shown[0]  # a passfile is a path: shown
    assert "password=***" in shown[0] and "sslpassword=***" in shown[0]


def test_query_password_stays_out_of_store_errors_and_backend_warnings(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    url = f"postgresql+psycopg://airflow@127.0.0.1:1/tokens?password={PG_PASSWORD}&connect_timeout=1"
    key = Fernet.generate_key().decode()
    with pytest.raises(TokenStoreError) as failed:
        open_store(url, key).list_meta()
    assert PG_PASSWORD not in str(failed.value) and "127.0.0.1:1" in str(failed.value)
    backend = TokenStoreBackend(store=url.replace(PG_PASSWORD, "BackendOnly-991"), key=key)
    assert backend.get_conn_value("anything") is None
    assert "BackendOnly-991" not in caplog.text and "serves no connections" in caplog.text
    assert redact("x BackendOnly-991 y") == "x *** y"  # the backend registered its store's password


def test_hook_masks_a_query_password_of_oauth_settings_location(monkeypatch: pytest.MonkeyPatch) -> None:
    set_connection(
        monkeypatch,
        "dbx_pgq",
        login="app",
        password="app-secret-value",
        extra={"oauth_settings_location": f"{PG_URL}&sslpassword={PG_SSL_PASSWORD}"},
    )
    DropboxHook("dbx_pgq").get_auth_config()
    assert redact(f"x {PG_PASSWORD} y") == "x *** y"
    assert redact(f"x {PG_SSL_PASSWORD} y") == "x *** y"


# ----------------------------------------------------------------------------- 5. static tokens need no store


def test_static_token_connection_needs_no_key_and_creates_no_store(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AIRFLOW__CORE__FERNET_KEY", "")
    set_connection(
        monkeypatch,
        "dbx_static",
        login="app",
        extra={"initiate_oauth": "OFF", "access_token": "static-access-token-value"},
    )
    hook = DropboxHook("dbx_static")
    assert hook.get_access_token() == "static-access-token-value"
    assert hook.get_token_set().access_token == "static-access-token-value"
    hook.invalidate_token("static-access-token-value")
    assert hook.get_access_token() == "static-access-token-value"
    assert not (tmp_path / "airflow_home" / "oauth_tokens.db").exists()


def test_unset_fernet_key_placeholder_says_no_key_is_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    # Airflow 3.3's task SDK returns the template literal for an unset [core] fernet_key.
    monkeypatch.setenv("AIRFLOW__CORE__FERNET_KEY", "{FERNET_KEY}")
    set_connection(
        monkeypatch, "dbx_nokey", login="app", password="secret-value-1", extra={"refresh_token": "r" * 20}
    )
    with pytest.raises(TokenStoreError) as failed:
        DropboxHook("dbx_nokey").get_access_token()
    message = str(failed.value)
    assert "no encryption key is configured: set [core] fernet_key or the backend's key" in message
    assert "not a valid Fernet key" not in message
    with pytest.raises(TokenStoreError, match="no encryption key is configured"):
        open_store(None, "{FERNET_KEY}")


# ----------------------------------------------------------------------------- 8. an Extra that is not JSON


def test_extra_that_is_not_json_is_named_with_its_position(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_DBX_BADJSON",
        json.dumps(
            {
                "conn_type": "dropbox",
                "login": "app",
                "password": "secret",
                "extra": '{"initiate_oauth":\n "REFRESH",}',
            }
        ),
    )
    with pytest.raises(AuthConfigError) as failed:
        DropboxHook("dbx_badjson").get_access_token()
    assert "the connection's extra is not valid JSON (line 2, column 12)" in str(failed.value)
    assert "authorize" not in str(failed.value).split("extra is not valid JSON")[0]


# ----------------------------------------------------------------------------- 6. Box app-config secrets


def _box_app_config(client_secret: str, passphrase: str) -> tuple[dict[str, Any], list[str]]:
    """A Box app config JSON with a fresh encrypted RSA key; also the key's base64 body lines."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase.encode()),
    ).decode()
    config = {
        "boxAppSettings": {
            "clientID": "hardening-jwt-app",
            "clientSecret": client_secret,
            "appAuth": {"publicKeyID": "kid-1", "privateKey": pem, "passphrase": passphrase},
        },
        "enterpriseID": "900001",
    }
    lines = [line for line in pem.splitlines() if line and not line.startswith("-----")]
    return config, lines[1:4]


@pytest.mark.parametrize("cert_type", ["JSONFILE", "JSONBLOB"])
def test_secrets_inside_a_box_app_config_are_masked_when_read(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, cert_type: str
) -> None:
    from dropbox_box_provider.auth import jwt as box_jwt
    from dropbox_box_provider.hooks.box import BoxHook
    from tests.helpers.box import set_connection as set_box_connection

    suffix = f"{cert_type.lower()}-{os.getpid()}-{time.monotonic_ns()}"
    client_secret, passphrase = f"app-secret-{suffix}", f"key-passphrase-{suffix}"
    app_config, pem_lines = _box_app_config(client_secret, passphrase)
    if cert_type == "JSONFILE":
        path = tmp_path / "box_config.json"
        path.write_text(json.dumps(app_config))
        cert = str(path)
    else:
        cert = json.dumps(app_config)
    conn_id = f"box_cfg_{cert_type.lower()}"
    set_box_connection(
        monkeypatch, conn_id, extra={"auth_scheme": "jwt", "jwt_cert": cert, "jwt_cert_type": cert_type}
    )
    settings = box_jwt.resolve_jwt_settings(BoxHook(conn_id).get_auth_config())
    assert settings.client_secret == client_secret
    for value in (client_secret, passphrase, *pem_lines):
        assert redact(f"<{value}>") == "<***>", value


# ----------------------------------------------------------------------------- 7. sqlite file modes


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_existing_loose_sqlite_store_and_side_files_are_tightened(tmp_path: Path) -> None:
    path = tmp_path / "tokens.db"
    path.touch()
    os.chmod(path, 0o644)
    store = open_store(str(path), Fernet.generate_key().decode())
    store.list_meta()
    assert _mode(path) == 0o600
    store.save_connection("c", {"conn_type": "dropbox", "extra": {}})
    for side in (Path(f"{path}-wal"), Path(f"{path}-shm")):
        assert side.exists() and _mode(side) == 0o600, side


def test_loose_sqlite_store_of_another_user_is_left_alone_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    if os.geteuid() != 0:
        pytest.skip("giving a file to another user needs root")
    caplog.set_level(logging.WARNING)
    path = tmp_path / "shared.db"
    path.touch()
    os.chmod(path, 0o644)
    os.chown(path, 54321, -1)
    open_store(str(path), Fernet.generate_key().decode()).list_meta()
    assert _mode(path) == 0o644
    assert f"{path}" in caplog.text and "0644" in caplog.text and "chmod 600" in caplog.text


# ----------------------------------------------------------------------------- 9. connection test and DNS


def _fail_name_resolution(monkeypatch: pytest.MonkeyPatch, host: str) -> list[str]:
    """Make every request to ``host`` fail as an unresolvable name would, inside httpx's transport."""
    import socket

    calls: list[str] = []
    real = httpx.HTTPTransport.handle_request

    def handle_request(self: httpx.HTTPTransport, request: httpx.Request) -> httpx.Response:
        if request.url.host == host:
            calls.append(request.url.path)
            try:
                raise socket.gaierror(-2, "Name or service not known")
            except socket.gaierror as exc:
                raise httpx.ConnectError("[Errno -2] Name or service not known", request=request) from exc
        return real(self, request)

    monkeypatch.setattr(httpx.HTTPTransport, "handle_request", handle_request)
    return calls


def test_connection_test_reports_a_name_resolution_failure_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _fail_name_resolution(monkeypatch, "dropbox-proxy.invalid")
    set_connection(
        monkeypatch,
        "dbx_dns",
        login="app",
        host="https://dropbox-proxy.invalid",
        extra={"initiate_oauth": "OFF", "access_token": "static-token-for-dns-test"},
    )
    started = time.monotonic()
    ok, message = DropboxHook("dbx_dns").test_connection()
    elapsed = time.monotonic() - started
    assert not ok
    assert "dropbox-proxy.invalid" in message and "could not be resolved" in message, message
    assert len(calls) == 1 and elapsed < 3, (calls, elapsed)


def test_connection_test_does_not_retry_dns_on_the_token_endpoint(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from tests.helpers.dropbox import store_location

    calls = _fail_name_resolution(monkeypatch, "dropbox-proxy.invalid")
    set_connection(
        monkeypatch,
        "dbx_dns_refresh",
        login="app",
        password="app-secret-value",
        host="https://dropbox-proxy.invalid",
        extra={
            "initiate_oauth": "REFRESH",
            "refresh_token": "refresh-token-for-dns-test",
            "oauth_settings_location": store_location(tmp_path),
        },
    )
    started = time.monotonic()
    ok, message = DropboxHook("dbx_dns_refresh").test_connection()
    assert not ok and "could not be resolved" in message, message
    assert len(calls) == 1 and time.monotonic() - started < 3, calls
    assert "refresh-token-for-dns-test" not in message and "app-secret-value" not in message


# ------------------------------------------------------------------- 2. no store URL in trigger kwargs


def test_deferred_token_sensor_serializes_a_store_reference_not_its_url(
    monkeypatch: pytest.MonkeyPatch, postgres_store_url: str
) -> None:
    import asyncio

    from airflow.sdk.exceptions import TaskDeferred

    from dropbox_box_provider.auth.manager import TokenManager
    from dropbox_box_provider.auth.tokens import TokenSet
    from dropbox_box_provider.sensors.token import OAuthTokenSensor
    from dropbox_box_provider.triggers.token import OAuthTokenTrigger

    location = f"{postgres_store_url}&password={PG_PASSWORD}"
    set_connection(
        monkeypatch,
        "dbx_deferred",
        login="app",
        password="app-secret-value",
        extra={"initiate_oauth": "REFRESH", "oauth_settings_location": location},
    )
    hook = DropboxHook("dbx_deferred")
    seed = TokenSet(access_token="a" * 24, refresh_token="r" * 24, expires_at=time.time() + 3601)
    TokenManager(hook.token_store).store_tokens("dbx_deferred", hook.get_auth_config(), seed)

    sensor = OAuthTokenSensor(
        task_id="wait", conn_id="dbx_deferred", window=3600, deferrable=True, poke_interval=5
    )
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})
    _, kwargs = deferred.value.trigger.serialize()
    stored = json.dumps(kwargs)
    for leaked in (PG_PASSWORD, "postgresql", "127.0.0.1", "search_path"):
        assert leaked not in stored, (leaked, stored)

    async def first_event() -> dict[str, Any]:
        async for event in OAuthTokenTrigger(**kwargs).run():
            return dict(event.payload)
        raise AssertionError("no event")

    payload = asyncio.run(asyncio.wait_for(first_event(), 20))
    assert payload["status"] == "success" and payload["conn_id"] == "dbx_deferred", payload
    assert payload["expires_at"] == pytest.approx(seed.expires_at)
