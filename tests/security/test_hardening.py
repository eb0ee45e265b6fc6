"""Issue 21's hardening, each item against real parts: plain-HTTP endpoints, passwords in URL queries,
static tokens without a store, Box app-config secrets, sqlite file modes, an Extra that is not JSON, and a
connection test that answers a name-resolution failure quickly."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from airflow.sdk._shared.secrets_masker import redact
from cryptography.fernet import Fernet

from dropbox_box_provider.auth.config import AuthConfig, redact_url_password
from dropbox_box_provider.errors import AuthConfigError, TokenStoreError
from dropbox_box_provider.hooks.dropbox import DropboxHook
from dropbox_box_provider.secrets.token_store import TokenStoreBackend, forget_configured_backend
from dropbox_box_provider.store.factory import forget_open_stores, open_store
from dropbox_box_provider.store.sql import mask_url
from tests.helpers.dropbox import set_connection

PG_PASSWORD = "Hunter2Secret"
PG_SSL_PASSWORD = "Ssl2Secret"
PG_URL = f"postgresql+psycopg://airflow@db:5432/tokens?password={PG_PASSWORD}"


@pytest.fixture(autouse=True)
def airflow_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
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
    backend = TokenStoreBackend(store=url, key=key)
    assert backend.get_conn_value("anything") is None
    assert PG_PASSWORD not in caplog.text and "serves no connections" in caplog.text


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
