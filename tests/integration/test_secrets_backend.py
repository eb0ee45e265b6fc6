"""TokenStoreBackend in this process: serving saved connections with live tokens, resolving a hook's store,
and one warning line plus a clear hook error for every kind of bad configuration.

The real-Airflow (subprocess) checks live in ``test_secrets_airflow.py``.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from airflow.sdk import Connection

from dropbox_box_provider.auth.config import AuthConfig
from dropbox_box_provider.auth.manager import TokenManager
from dropbox_box_provider.auth.tokens import TokenSet
from dropbox_box_provider.errors import TokenStoreError
from dropbox_box_provider.secrets import token_store
from dropbox_box_provider.secrets.token_store import (
    BACKEND_PATH,
    TokenStoreBackend,
    find_configured_backend,
    forget_configured_backend,
    resolve_token_store,
)
from dropbox_box_provider.store.factory import forget_open_stores, open_store
from tests.fixtures.databases import new_key
from tests.fixtures.environment import free_port

CONN_ID = "box_saved"
LOGGER = token_store.__name__
DEFINITION = {
    "conn_type": "box_oauth",
    "login": "demo-box-app",
    "password": "demo-box-secret",
    "host": "http://127.0.0.1:9",
    "extra": {"OAuthRefreshToken": "seed-refresh-SECRET", "refresh_margin": 60},
}


def backend_env(monkeypatch: pytest.MonkeyPatch, **kwargs: str) -> None:
    """Configure the backend for this process through environment variables, as a deployment would."""
    monkeypatch.setenv("AIRFLOW__SECRETS__BACKEND", BACKEND_PATH)
    for name, value in kwargs.items():
        monkeypatch.setenv(f"AIRFLOW__SECRETS__BACKEND_KWARG__{name.upper()}", value)


@pytest.fixture(autouse=True)
def isolated_discovery(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No backend configured unless a test says so; discovery and the store cache start empty."""
    from airflow.sdk.configuration import clear_secrets_backends_cache

    for name in list(os.environ):
        if name.startswith(("AIRFLOW__SECRETS__", "AIRFLOW__WORKERS__SECRETS_BACKEND")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("AIRFLOW__CORE__FERNET_KEY", new_key())
    forget_configured_backend()
    clear_secrets_backends_cache()
    yield
    forget_configured_backend()
    clear_secrets_backends_cache()
    forget_open_stores()


def box_config(**extra: object) -> AuthConfig:
    return AuthConfig.from_mapping(
        "box", {"client_id": "demo-box-app", "client_secret": "s", **extra}, conn_id=CONN_ID
    )


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]


# --- serving saved connections ---------------------------------------------------------------------------


def test_serves_saved_connection_with_current_tokens(sqlite_store_url: str, store_key: str) -> None:
    backend = TokenStoreBackend(store=sqlite_store_url, key=store_key)
    backend.save_connection(CONN_ID, DEFINITION)
    served = json.loads(backend.get_conn_value(CONN_ID) or "{}")
    assert served["extra"]["OAuthRefreshToken"] == "seed-refresh-SECRET"  # no tokens stored yet

    config = AuthConfig.from_connection(backend.get_connection(CONN_ID), service="box")
    TokenManager(backend.token_store()).store_tokens(
        CONN_ID, config, TokenSet(access_token="live-access", refresh_token="rotated-refresh", expires_at=9e9)
    )
    served = json.loads(backend.get_conn_value(CONN_ID) or "{}")
    assert served["extra"] == {
        "refresh_margin": 60,
        "access_token": "live-access",
        "refresh_token": "rotated-refresh",
    }
    assert (served["conn_type"], served["login"], served["host"]) == (
        "box_oauth",
        "demo-box-app",
        "http://127.0.0.1:9",
    )
    conn = backend.get_connection(CONN_ID)
    assert isinstance(conn, Connection)
    parsed = AuthConfig.from_connection(conn, service="box")
    assert (parsed.access_token, parsed.refresh_token, parsed.client_secret) == (
        "live-access",
        "rotated-refresh",
        "demo-box-secret",
    )


def test_other_ids_variables_and_config_are_not_served(sqlite_store_url: str, store_key: str) -> None:
    backend = TokenStoreBackend(store=sqlite_store_url, key=store_key)
    # A token record without a saved definition (a connection defined elsewhere) is not a connection.
    TokenManager(backend.token_store()).store_tokens(
        "env_defined", box_config(), TokenSet(access_token="a", refresh_token="r", expires_at=9e9)
    )
    assert backend.get_conn_value("env_defined") is None
    assert backend.get_conn_value("never_seen") is None
    assert backend.get_connection("never_seen") is None
    assert backend.get_variable("anything") is None
    assert backend.get_config("anything") is None


def test_save_connection_accepts_an_airflow_connection(sqlite_store_url: str, store_key: str) -> None:
    backend = TokenStoreBackend(store=sqlite_store_url, key=store_key)
    conn = Connection(
        conn_id=CONN_ID, conn_type="dropbox", login="app", password="pw", extra=json.dumps({"scopes": "a b"})
    )
    backend.save_connection(CONN_ID, conn)
    assert json.loads(backend.get_conn_value(CONN_ID) or "{}") == {
        "conn_type": "dropbox",
        "login": "app",
        "password": "pw",
        "extra": {"scopes": "a b"},
    }


@pytest.mark.parametrize(
    ("definition", "complaint"),
    [
        ({"login": "x"}, "no conn_type"),
        ({"conn_type": "dropbox", "extra": "[1]"}, "JSON object"),
        ({"conn_type": "dropbox", "extra": "{nope"}, "not valid JSON"),
        ({"conn_type": "dropbox", "passwrod": "x"}, "unknown key"),
    ],
)
def test_save_connection_rejects_bad_definitions(
    sqlite_store_url: str, store_key: str, definition: dict[str, object], complaint: str
) -> None:
    backend = TokenStoreBackend(store=sqlite_store_url, key=store_key)
    with pytest.raises(TokenStoreError, match=complaint):
        backend.save_connection(CONN_ID, definition)


def test_repr_and_failures_hide_secrets(store_key: str, caplog: pytest.LogCaptureFixture) -> None:
    url = f"postgresql+psycopg://postgres:PG-PASSWORD@127.0.0.1:{free_port()}/test"
    backend = TokenStoreBackend(store=url, key=store_key)
    assert store_key not in repr(backend) and "PG-PASSWORD" not in repr(backend)
    with caplog.at_level(logging.DEBUG):
        assert backend.get_conn_value(CONN_ID) is None
    text = caplog.text + (backend.last_failure or "")
    assert "PG-PASSWORD" not in text and store_key not in text
    assert "127.0.0.1" in text


# --- which store a hook uses ------------------------------------------------------------------------------


def test_without_backend_hooks_use_default_sqlite_with_fernet_key(tmp_path: Path) -> None:
    assert find_configured_backend() is None
    store = resolve_token_store(box_config())
    assert store.url == f"sqlite:///{tmp_path / 'home' / 'oauth_tokens.db'}"


def test_without_any_key_the_hook_is_told_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW__CORE__FERNET_KEY")
    monkeypatch.setenv("AIRFLOW__CORE__FERNET_KEY", "")
    with pytest.raises(TokenStoreError, match=r"fernet_key.*Fernet\.generate_key"):
        resolve_token_store(box_config())


def test_configured_backend_store_is_used_whatever_the_connection_source(
    monkeypatch: pytest.MonkeyPatch, sqlite_store_url: str, store_key: str
) -> None:
    backend_env(monkeypatch, store=sqlite_store_url, key=store_key)
    backend = find_configured_backend()
    assert isinstance(backend, TokenStoreBackend)
    assert find_configured_backend() is backend  # cached per process
    store = resolve_token_store(box_config())
    assert store is open_store(sqlite_store_url, store_key)


def test_connection_location_wins_and_uses_the_backend_key(
    monkeypatch: pytest.MonkeyPatch, sqlite_store_url: str, store_key: str, tmp_path: Path
) -> None:
    backend_env(monkeypatch, store=sqlite_store_url, key=store_key)
    own = tmp_path / "own.db"
    store = resolve_token_store(box_config(oauth_settings_location=str(own)))
    assert store is open_store(str(own), store_key)


def test_workers_section_takes_precedence_in_task_processes(
    monkeypatch: pytest.MonkeyPatch, sqlite_store_url: str, store_key: str, tmp_path: Path
) -> None:
    backend_env(monkeypatch, store=str(tmp_path / "server.db"), key=store_key)
    monkeypatch.setenv("AIRFLOW__WORKERS__SECRETS_BACKEND", BACKEND_PATH)
    monkeypatch.setenv(
        "AIRFLOW__WORKERS__SECRETS_BACKEND_KWARGS", json.dumps({"store": sqlite_store_url, "key": store_key})
    )
    assert resolve_token_store(box_config()) is open_store(sqlite_store_url, store_key)


def test_connections_only_from_store(
    monkeypatch: pytest.MonkeyPatch, sqlite_store_url: str, store_key: str
) -> None:
    backend_env(monkeypatch, store=sqlite_store_url, key=store_key, connections_only_from_store="true")
    with pytest.raises(TokenStoreError, match=r"not saved in the token store.*connections_only_from_store"):
        resolve_token_store(box_config())
    backend = find_configured_backend()
    assert backend is not None
    backend.save_connection(CONN_ID, DEFINITION)
    assert resolve_token_store(box_config()) is open_store(sqlite_store_url, store_key)


# --- bad configuration: one warning line, then the hook's clear error -------------------------------------


def _unreachable_postgres() -> dict[str, str]:
    return {"store": f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test?connect_timeout=2"}


def _not_a_directory(tmp_path: Path) -> dict[str, str]:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    return {"store": str(blocker / "tokens.db")}


BAD_CONFIGURATIONS = {
    "unknown kwarg": (
        lambda tmp: {"stor": str(tmp / "x.db")},
        r"unknown backend kwarg 'stor' \(did you mean 'store'\?\)",
    ),
    "bad flag": (lambda tmp: {"connections_only_from_store": "maybe"}, "must be true or false"),
    "malformed URL": (
        lambda tmp: {"store": "postgresql+psycopg://u@host:notaport/db"},
        "malformed token store URL",
    ),
    "unknown scheme": (lambda tmp: {"store": "mysql://u@h/db"}, "unsupported token store URL scheme 'mysql'"),
    "invalid key": (lambda tmp: {"key": "not-a-fernet-key"}, "not a valid Fernet key"),
    "unreachable PostgreSQL": (lambda tmp: _unreachable_postgres(), "PostgreSQL is running and reachable"),
    "missing store directory": (_not_a_directory, "could not create|cannot be created"),
}


@pytest.mark.parametrize("case", list(BAD_CONFIGURATIONS))
def test_bad_configuration_warns_once_and_hook_raises(
    case: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    make_kwargs, reason = BAD_CONFIGURATIONS[case]
    kwargs = {"store": str(tmp_path / "tokens.db"), "key": new_key(), **make_kwargs(tmp_path)}
    backend_env(monkeypatch, **kwargs)
    backend = find_configured_backend()
    assert isinstance(backend, TokenStoreBackend)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert backend.get_conn_value(CONN_ID) is None
        assert backend.get_conn_value(CONN_ID) is None
        with pytest.raises(TokenStoreError, match=reason) as raised:
            resolve_token_store(box_config())
    lines = warnings_of(caplog)
    assert len(lines) == 1, lines
    assert "TokenStoreBackend" in lines[0] and "falls through" in lines[0]
    assert re.search(reason, lines[0]), lines[0]
    assert "token store secrets backend" in str(raised.value)
    assert kwargs["key"] not in lines[0] + str(raised.value)


def test_wrong_key_warns_and_hook_names_the_reason(
    monkeypatch: pytest.MonkeyPatch, sqlite_store_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    TokenStoreBackend(store=sqlite_store_url, key=new_key()).save_connection(CONN_ID, DEFINITION)
    forget_open_stores()
    backend_env(monkeypatch, store=sqlite_store_url, key=new_key())
    backend = find_configured_backend()
    assert backend is not None
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert backend.get_conn_value(CONN_ID) is None
        with pytest.raises(TokenStoreError, match="cannot be decrypted with the configured key") as raised:
            resolve_token_store(box_config())
    assert len(warnings_of(caplog)) == 1
    assert "NEW,OLD" in str(raised.value)


def test_recovered_store_is_used_again(
    monkeypatch: pytest.MonkeyPatch, sqlite_store_url: str, store_key: str
) -> None:
    backend_env(monkeypatch, store=sqlite_store_url, key=store_key)
    backend = find_configured_backend()
    assert backend is not None
    backend._fail("a passing outage")  # as after a failed lookup
    assert backend.last_failure == "a passing outage"
    assert resolve_token_store(box_config()) is open_store(sqlite_store_url, store_key)
    assert backend.last_failure is None


def test_server_processes_use_the_secrets_section(
    monkeypatch: pytest.MonkeyPatch, sqlite_store_url: str, store_key: str, tmp_path: Path
) -> None:
    """The api-server marks itself as server context: Airflow builds [secrets] backend there, so do we."""
    backend_env(monkeypatch, store=sqlite_store_url, key=store_key)
    monkeypatch.setenv("AIRFLOW__WORKERS__SECRETS_BACKEND", BACKEND_PATH)
    monkeypatch.setenv(
        "AIRFLOW__WORKERS__SECRETS_BACKEND_KWARGS", json.dumps({"store": str(tmp_path / "w.db")})
    )
    monkeypatch.setenv("_AIRFLOW_PROCESS_CONTEXT", "server")
    assert resolve_token_store(box_config()) is open_store(sqlite_store_url, store_key)


def test_discovery_reuses_the_instance_airflow_built(
    monkeypatch: pytest.MonkeyPatch, sqlite_store_url: str, store_key: str
) -> None:
    from airflow.sdk.execution_time.supervisor import ensure_secrets_backend_loaded

    backend_env(monkeypatch, store=sqlite_store_url, key=store_key)
    airflows = [b for b in ensure_secrets_backend_loaded() if isinstance(b, TokenStoreBackend)]
    assert len(airflows) == 1
    assert find_configured_backend() is airflows[0]


def test_another_configured_backend_is_not_ours(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__SECRETS__BACKEND", "airflow.secrets.local_filesystem.LocalFilesystemBackend")
    assert find_configured_backend() is None
    assert TokenStoreBackend.from_config() is None
