"""Box hook test helpers: Airflow connections as AIRFLOW_CONN_<ID> JSON env vars, seeded from the emulator.

Every connection points its Host at the emulator and keeps its tokens in a sqlite store file of its own.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from dropbox_box_provider.auth.tokens import TokenSet
from dropbox_box_provider.emulator import seed
from dropbox_box_provider.testing import user_grant
from tests.fixtures.emulator import Emulator

CALLBACK = seed.DEMO_REDIRECT_URIS[1]


def set_connection(
    monkeypatch: pytest.MonkeyPatch,
    conn_id: str,
    *,
    conn_type: str = "box_oauth",
    host: str | None = None,
    login: str | None = None,
    password: str | None = None,
    extra: dict[str, Any] | None = None,
) -> str:
    """Define Airflow connection ``conn_id`` through its ``AIRFLOW_CONN_<ID>`` JSON environment variable."""
    body: dict[str, Any] = {"conn_type": conn_type}
    for key, value in (("host", host), ("login", login), ("password", password)):
        if value is not None:
            body[key] = value
    if extra:
        body["extra"] = extra
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(body))
    return conn_id


def store_location(tmp_path: Path) -> str:
    """A fresh sqlite token-store URL in the test's tmp dir."""
    return f"sqlite:///{tmp_path / f'tokens-{uuid.uuid4().hex[:8]}.db'}"


def box_oauth_tokens(
    emulator: Emulator, user_id: str = seed.DEMO_BOX_USER_ID, client_id: str = seed.DEMO_BOX_CLIENT_ID
) -> TokenSet:
    """Tokens of a Box user-OAuth grant: the emulator's consent, then the real code exchange (flows)."""
    secret = seed.DEMO_BOX_CLIENT_SECRET if client_id == seed.DEMO_BOX_CLIENT_ID else None
    return user_grant(emulator.client, "box", client_id, secret, redirect_uri=CALLBACK, user_id=user_id)


def box_oauth_connection(
    monkeypatch: pytest.MonkeyPatch,
    emulator: Emulator,
    tmp_path: Path,
    conn_id: str = "box_oauth_test",
    *,
    user_id: str = seed.DEMO_BOX_USER_ID,
    **extra: Any,
) -> TokenSet:
    """A Box OAuth connection (InitiateOAuth REFRESH) seeded with a new refresh token; returns the tokens."""
    tokens = box_oauth_tokens(emulator, user_id)
    set_connection(
        monkeypatch,
        conn_id,
        host=emulator.url,
        login=seed.DEMO_BOX_CLIENT_ID,
        password=seed.DEMO_BOX_CLIENT_SECRET,
        extra={
            "auth_scheme": "oauth",
            "initiate_oauth": "REFRESH",
            "refresh_token": tokens.refresh_token,
            "oauth_settings_location": store_location(tmp_path),
            **extra,
        },
    )
    return tokens


def box_jwt_connection(
    monkeypatch: pytest.MonkeyPatch,
    emulator: Emulator,
    tmp_path: Path,
    conn_id: str = "box_jwt_test",
    **extra: Any,
) -> str:
    """A Box JWT connection using the demo app's config JSON file (jwt_cert_type JSONFILE)."""
    return set_connection(
        monkeypatch,
        conn_id,
        host=emulator.url,
        extra={
            "auth_scheme": "jwt",
            "jwt_cert": str(emulator.box_jwt_config),
            "jwt_cert_type": "JSONFILE",
            "oauth_settings_location": store_location(tmp_path),
            **extra,
        },
    )


def box_ccg_connection(
    monkeypatch: pytest.MonkeyPatch,
    emulator: Emulator,
    tmp_path: Path,
    conn_id: str = "box_ccg_test",
    *,
    legacy_extras: bool = False,
    **extra: Any,
) -> str:
    """A Box CCG connection: Login/Password + subject, or the existing Box provider's extras shape
    (``client_id``/``client_secret``/``enterprise_id`` in Extra, no auth_scheme)."""
    location = store_location(tmp_path)
    if legacy_extras:
        return set_connection(
            monkeypatch,
            conn_id,
            host=emulator.url,
            extra={
                "client_id": seed.DEMO_BOX_CCG_CLIENT_ID,
                "client_secret": seed.DEMO_BOX_CCG_CLIENT_SECRET,
                "enterprise_id": seed.DEMO_BOX_ENTERPRISE_ID,
                "oauth_settings_location": location,
                **extra,
            },
        )
    return set_connection(
        monkeypatch,
        conn_id,
        host=emulator.url,
        login=seed.DEMO_BOX_CCG_CLIENT_ID,
        password=seed.DEMO_BOX_CCG_CLIENT_SECRET,
        extra={
            "auth_scheme": "ccg",
            "subject_type": "enterprise",
            "subject_id": seed.DEMO_BOX_ENTERPRISE_ID,
            "oauth_settings_location": location,
            **extra,
        },
    )
