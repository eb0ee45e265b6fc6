"""Fixtures of the operator, sensor and trigger tests: Dropbox/Box connections seeded from the emulator."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from dropbox_box_provider.auth import flows
from dropbox_box_provider.auth.config import AuthConfig
from dropbox_box_provider.auth.tokens import TokenSet
from dropbox_box_provider.emulator import seed
from dropbox_box_provider.store import open_store
from dropbox_box_provider.store.base import RecordMeta, TokenStore
from tests.fixtures.emulator import RunningEmulator

CALLBACK = seed.DEMO_REDIRECT_URIS[1]


def dropbox_tokens(emulator: RunningEmulator) -> TokenSet:
    """A Dropbox offline grant: the emulator's consent, then the real code exchange."""
    config = AuthConfig(
        service="dropbox",
        client_id=seed.DEMO_DROPBOX_CLIENT_ID,
        client_secret=seed.DEMO_DROPBOX_CLIENT_SECRET,
        endpoint=emulator.url,
        callback_url=CALLBACK,
    )
    code = emulator.client.authorize(
        "dropbox", seed.DEMO_DROPBOX_CLIENT_ID, redirect_uri=CALLBACK, token_access_type="offline"
    )
    return flows.exchange_code(config, code, callback_url=CALLBACK)


def box_tokens(emulator: RunningEmulator, user_id: str = seed.DEMO_BOX_USER_ID) -> TokenSet:
    """A Box user grant: the emulator's consent, then the real code exchange."""
    config = AuthConfig(
        service="box",
        client_id=seed.DEMO_BOX_CLIENT_ID,
        client_secret=seed.DEMO_BOX_CLIENT_SECRET,
        endpoint=emulator.url,
        callback_url=CALLBACK,
    )
    code = emulator.client.authorize("box", seed.DEMO_BOX_CLIENT_ID, redirect_uri=CALLBACK, user_id=user_id)
    return flows.exchange_code(config, code, callback_url=CALLBACK)


def dropbox_connection(emulator: RunningEmulator, refresh_token: str | None, **extra: Any) -> dict[str, Any]:
    """An Airflow connection (JSON form) of the demo Dropbox app pointed at the emulator."""
    fields = {"initiate_oauth": "REFRESH", **extra}
    if refresh_token:
        fields["refresh_token"] = refresh_token
    return {
        "conn_type": "dropbox",
        "host": emulator.url,
        "login": seed.DEMO_DROPBOX_CLIENT_ID,
        "password": seed.DEMO_DROPBOX_CLIENT_SECRET,
        "extra": fields,
    }


def box_connection(emulator: RunningEmulator, refresh_token: str | None, **extra: Any) -> dict[str, Any]:
    """An Airflow connection (JSON form) of the demo Box OAuth app pointed at the emulator."""
    fields = {"initiate_oauth": "REFRESH", "callback_url": CALLBACK, **extra}
    if refresh_token:
        fields["refresh_token"] = refresh_token
    return {
        "conn_type": "box_oauth",
        "host": emulator.url,
        "login": seed.DEMO_BOX_CLIENT_ID,
        "password": seed.DEMO_BOX_CLIENT_SECRET,
        "extra": fields,
    }


def box_jwt_connection(emulator: RunningEmulator, **extra: Any) -> dict[str, Any]:
    """A Box JWT service-account connection using the demo app's config JSON file."""
    return {
        "conn_type": "box_oauth",
        "host": emulator.url,
        "extra": {"auth_scheme": "jwt", "jwt_cert": str(emulator.box_jwt_config), "jwt_cert_type": "JSONFILE"}
        | extra,
    }


def grants(emulator: RunningEmulator, service: str, grant: str = "refresh_token") -> dict[str, int]:
    """The emulator's token-endpoint outcomes of one grant type (zero counts left out)."""
    counts = emulator.client.stats()[service]["token"].get(grant, {})
    return {outcome: n for outcome, n in counts.items() if n}


def meta_of(store: TokenStore, conn_id: str) -> RecordMeta | None:
    return next((m for m in store.list_meta() if m.conn_id == conn_id), None)


@dataclass
class Connections:
    """Defines connections as AIRFLOW_CONN_* variables whose tokens live in one sqlite store file."""

    monkeypatch: pytest.MonkeyPatch
    store_url: str
    key: str

    def add(self, conn_id: str, connection: dict[str, Any]) -> str:
        extra = dict(connection.get("extra") or {})
        extra.setdefault("oauth_settings_location", self.store_url)
        body = {**connection, "extra": extra}
        self.monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(body))
        return conn_id

    def seed(self, conn_id: str, tokens: TokenSet) -> None:
        """Save ``tokens`` as the connection's grant, as the CLI does after a person authorized it, a minute
        ago (a forced refresh reuses tokens obtained in the last seconds)."""
        from dropbox_box_provider.auth.manager import TokenManager
        from dropbox_box_provider.operators.refresh import oauth_hook_for

        hook = oauth_hook_for(conn_id)
        earlier = TokenManager(hook.token_store, clock=lambda: time.time() - 60)
        earlier.store_tokens(conn_id, hook.get_auth_config(), tokens)

    @property
    def store(self) -> TokenStore:
        return open_store(self.store_url, self.key)


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Connections]:
    """Connections in env vars, tokens in a sqlite file encrypted with ``[core] fernet_key``."""
    from dropbox_box_provider.secrets.token_store import forget_configured_backend
    from dropbox_box_provider.store.factory import forget_open_stores

    key = Fernet.generate_key().decode()
    monkeypatch.setenv("AIRFLOW__CORE__FERNET_KEY", key)
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow_home"))
    forget_configured_backend()
    yield Connections(monkeypatch, f"sqlite:///{tmp_path / 'tokens.db'}", key)
    forget_open_stores()
    forget_configured_backend()
