"""Connections the benchmarks use: an isolated Airflow environment, AIRFLOW_CONN_* JSON, grants from the
emulator's consent, and PostgreSQL schemas of their own."""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from dropbox_box_provider.emulator import seed

if TYPE_CHECKING:
    from dropbox_box_provider.auth.config import AuthConfig

BOX_CALLBACK = seed.DEMO_REDIRECT_URIS[1]
POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
_POSTGRES_DRIVER_URL = "postgresql://postgres@127.0.0.1:5432/test"


def isolate_airflow() -> str:
    """Give this process (and its children) a temporary AIRFLOW_HOME and Fernet key, before Airflow loads."""
    from cryptography.fernet import Fernet

    home = tempfile.mkdtemp(prefix="bench-airflow-home-")
    for name in [k for k in os.environ if k.startswith("AIRFLOW")]:
        del os.environ[name]
    os.environ.update(
        {
            "AIRFLOW_HOME": home,
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{os.path.join(home, 'airflow.db')}",
        }
    )
    return home


def fernet_key() -> str:
    """The key the hooks use for their token store ([core] fernet_key from the environment)."""
    return os.environ["AIRFLOW__CORE__FERNET_KEY"]


def connection_json(service: str, emulator_url: str, store_url: str, **extra: Any) -> str:
    """The AIRFLOW_CONN_* JSON of a demo-app OAuth connection (REFRESH; tokens live in ``store_url``)."""
    if service == "box":
        body: dict[str, Any] = {
            "conn_type": "box_oauth",
            "login": seed.DEMO_BOX_CLIENT_ID,
            "password": seed.DEMO_BOX_CLIENT_SECRET,
        }
        extra.setdefault("callback_url", BOX_CALLBACK)
    else:
        body = {
            "conn_type": "dropbox",
            "login": seed.DEMO_DROPBOX_CLIENT_ID,
            "password": seed.DEMO_DROPBOX_CLIENT_SECRET,
        }
    body["host"] = emulator_url
    body["extra"] = {"initiate_oauth": "REFRESH", "oauth_settings_location": store_url, **extra}
    return json.dumps(body)


def set_connection(conn_id: str, conn_json: str) -> None:
    """Define Airflow connection ``conn_id`` in this process's environment."""
    os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = conn_json


def raw_grant(service: str, emulator: Any) -> dict[str, Any]:
    """A new offline grant (access + refresh token) for the demo app, as the token endpoint returns it."""
    import httpx

    client = emulator.client
    if service == "box":
        code = client.authorize("box", seed.DEMO_BOX_CLIENT_ID, redirect_uri=BOX_CALLBACK)
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "client_id": seed.DEMO_BOX_CLIENT_ID,
            "client_secret": seed.DEMO_BOX_CLIENT_SECRET,
            "redirect_uri": BOX_CALLBACK,
        }
        response = httpx.post(f"{emulator.url}/api.box.com/oauth2/token", data=data, timeout=30)
    else:
        code = client.authorize("dropbox", seed.DEMO_DROPBOX_CLIENT_ID, token_access_type="offline")
        response = httpx.post(
            f"{emulator.url}/api.dropboxapi.com/oauth2/token",
            data={"grant_type": "authorization_code", "code": code},
            auth=(seed.DEMO_DROPBOX_CLIENT_ID, seed.DEMO_DROPBOX_CLIENT_SECRET),
            timeout=30,
        )
    response.raise_for_status()
    grant: dict[str, Any] = response.json()
    return grant


def auth_config(service: str, conn_id: str, conn_json: str) -> AuthConfig:
    """The AuthConfig the hooks would build from a ``connection_json`` (without loading Airflow)."""
    from dropbox_box_provider.auth.config import AuthConfig

    body = json.loads(conn_json)
    fields = {
        "client_id": body["login"],
        "client_secret": body["password"],
        "endpoint": body["host"],
        **body["extra"],
    }
    return AuthConfig.from_mapping(service, fields, conn_id=conn_id)


def store_grant(service: str, conn_id: str, conn_json: str, grant: dict[str, Any]) -> None:
    """Save a grant into the connection's token store, as ``dropbox-box-auth authorize`` would."""
    import time

    from dropbox_box_provider.auth.manager import TokenManager
    from dropbox_box_provider.auth.tokens import TokenSet
    from dropbox_box_provider.store import open_store

    config = auth_config(service, conn_id, conn_json)
    tokens = TokenSet(
        access_token=grant["access_token"],
        refresh_token=grant.get("refresh_token"),
        expires_at=time.time() + float(grant["expires_in"]),
    )
    store = open_store(config.oauth_settings_location, fernet_key())
    TokenManager(store).store_tokens(conn_id, config, tokens)


def _admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(_POSTGRES_DRIVER_URL, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql)


def postgres_available() -> str | None:
    """None when the benchmark PostgreSQL answers, else the reason it cannot be used."""
    try:
        _admin("SELECT 1")
    except Exception as exc:
        return f"PostgreSQL at 127.0.0.1:5432 unavailable ({type(exc).__name__})"
    return None


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A token-store URL in a schema of its own, dropped afterwards."""
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    _admin(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{POSTGRES_URL}?options={quote(f'-csearch_path={schema}', safe='')}"
    finally:
        _admin(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
