"""Fixtures of the operator, sensor and trigger tests: Dropbox/Box connections seeded from the emulator.

The emulator, its token store and the secrets backend configuration come from the public testing kit
(``emulated_services``, reset per test); these helpers add the tests' own connections to it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from dropbox_box_provider.auth.tokens import TokenSet
from dropbox_box_provider.emulator import seed
from dropbox_box_provider.store.base import RecordMeta, TokenStore
from dropbox_box_provider.testing import EmulatedServices

CALLBACK = seed.DEMO_REDIRECT_URIS[1]


def dropbox_tokens(emulator: EmulatedServices) -> TokenSet:
    """A Dropbox offline grant: the emulator's consent, then the real code exchange."""
    return emulator.oauth_tokens("dropbox")


def box_tokens(emulator: EmulatedServices, user_id: str = seed.DEMO_BOX_USER_ID) -> TokenSet:
    """A Box user grant: the emulator's consent, then the real code exchange."""
    return emulator.oauth_tokens("box", user_id=user_id)


def dropbox_connection(emulator: EmulatedServices, refresh_token: str | None, **extra: Any) -> dict[str, Any]:
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


def box_connection(emulator: EmulatedServices, refresh_token: str | None, **extra: Any) -> dict[str, Any]:
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


def box_jwt_connection(emulator: EmulatedServices, **extra: Any) -> dict[str, Any]:
    """A Box JWT service-account connection using the demo app's config JSON file."""
    return {
        "conn_type": "box_oauth",
        "host": emulator.url,
        "extra": {"auth_scheme": "jwt", "jwt_cert": str(emulator.box_jwt_config), "jwt_cert_type": "JSONFILE"}
        | extra,
    }


def grants(emulator: EmulatedServices, service: str, grant: str = "refresh_token") -> dict[str, int]:
    """The emulator's token-endpoint outcomes of one grant type (zero counts left out)."""
    counts = emulator.client.stats()[service]["token"].get(grant, {})
    return {outcome: n for outcome, n in counts.items() if n}


def meta_of(store: TokenStore, conn_id: str) -> RecordMeta | None:
    return next((m for m in store.list_meta() if m.conn_id == conn_id), None)


@dataclass
class Connections:
    """Defines connections as AIRFLOW_CONN_* variables whose tokens live in the kit's sqlite token store."""

    monkeypatch: pytest.MonkeyPatch
    services: EmulatedServices

    @property
    def store_url(self) -> str:
        return self.services.store_url

    def add(self, conn_id: str, connection: dict[str, Any]) -> str:
        self.monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(connection))
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
        return self.services.token_store


@pytest.fixture
def connections(
    monkeypatch: pytest.MonkeyPatch, emulated_services: EmulatedServices
) -> Iterator[Connections]:
    """Connections in env vars, tokens in the kit's store (its secrets backend is configured for the test)."""
    yield Connections(monkeypatch, emulated_services)
