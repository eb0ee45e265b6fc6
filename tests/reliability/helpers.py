"""Shared pieces of the reliability trials: Box connection fields, authorization, token checks, processes."""

from __future__ import annotations

import multiprocessing
from typing import Any

import httpx

from dropbox_box_provider.auth import flows
from dropbox_box_provider.auth.config import AuthConfig
from dropbox_box_provider.auth.manager import TokenManager
from dropbox_box_provider.emulator.seed import DEMO_BOX_CLIENT_ID, DEMO_BOX_CLIENT_SECRET
from dropbox_box_provider.store import open_store
from tests.fixtures.emulator import RunningEmulator

REDIRECT_URI = "http://127.0.0.1:33333"
# Everything a child would otherwise import (and, without bytecode caches, compile) on its first request.
PRELOAD = [
    "tests.reliability.crash_child",
    "tests.reliability.storm_child",
    "dropbox_box_provider.hooks.box",
    "dropbox_box_provider.store.sql",
    "sqlalchemy.dialects.sqlite.pysqlite",
    "sqlalchemy.dialects.postgresql.psycopg",
    "psycopg",
    "httpcore",
    "h11",
    "certifi",
]


def box_fields(emulator_url: str, **extra: Any) -> dict[str, Any]:
    """A Box OAuth connection (REFRESH, margin 0) on the emulator's demo app, without seed tokens."""
    return {
        "client_id": DEMO_BOX_CLIENT_ID,
        "client_secret": DEMO_BOX_CLIENT_SECRET,
        "endpoint": emulator_url,
        "callback_url": REDIRECT_URI,
        "initiate_oauth": "REFRESH",
        "refresh_margin": 0,
        **extra,
    }


def authorize_into_store(
    emulator: RunningEmulator, store_url: str, key: str, conn_id: str, fields: dict[str, Any]
) -> None:
    """What a person does with the CLI: a fresh authorization code, exchanged and saved into the store."""
    config = AuthConfig.from_mapping("box", fields, conn_id=conn_id)
    code = emulator.client.authorize("box", DEMO_BOX_CLIENT_ID, redirect_uri=REDIRECT_URI)
    tokens = flows.exchange_code(config, code, callback_url=REDIRECT_URI)
    TokenManager(open_store(store_url, key)).store_tokens(conn_id, config, tokens)


def token_works(emulator_url: str, access_token: str) -> bool:
    """True when Box (the emulator) accepts ``access_token`` on /2.0/users/me."""
    response = httpx.get(
        f"{emulator_url}/api.box.com/2.0/users/me",
        headers={"Authorization": f"Bearer {access_token}"},
        timeout=30,
    )
    return response.status_code == 200


def refresh_counts(emulator: RunningEmulator) -> dict[str, int]:
    """The emulator's Box refresh-grant outcomes so far (``ok``, ``invalid_grant``, ...)."""
    counts = emulator.client.stats()["box"]["token"].get("refresh_token", {})
    return {outcome: int(n) for outcome, n in counts.items()}


def forkserver() -> Any:
    """A forkserver context whose server pre-imports the provider, SQLAlchemy and psycopg (fast children)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context
