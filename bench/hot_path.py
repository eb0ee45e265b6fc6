"""Scenario 2: cost per call of an authorized request when the token is valid.

Two levels, each against the official SDKs: handing out a valid token (``hook.get_access_token()`` vs what
each SDK does before every request), and an authorized ``users/me`` end to end (vs a raw ``httpx.Client``
with a fixed Authorization header — the floor).
"""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from bench import connections, sdks
from bench.report import summarize
from bench.settings import Settings

BOX_ME = "https://api.box.com/2.0/users/me"
DROPBOX_ME = "https://api.dropboxapi.com/2/users/get_current_account"


def per_call_us(call: Callable[[], Any], calls: int) -> float:
    """Mean µs of ``calls`` back-to-back calls."""
    started = time.perf_counter()
    for _ in range(calls):
        call()
    return (time.perf_counter() - started) / calls * 1e6


def _raw_get(client: httpx.Client, url: str) -> Any:
    return client.get(url).json()


def _raw_post(client: httpx.Client, url: str) -> Any:
    return client.post(url, content=b"null", headers={"Content-Type": "application/json"}).json()


def _cases(emulator: Any, workdir: Path) -> tuple[list[tuple[str, str, str, Callable[[], Any]]], list[Any]]:
    """(service, what, client, call) for every measured call, plus objects to close afterwards."""
    from dropbox_box_provider.hooks.box import BoxHook
    from dropbox_box_provider.hooks.dropbox import DropboxHook

    url = emulator.url
    closers: list[Any] = []
    cases: list[tuple[str, str, str, Callable[[], Any]]] = []
    for service, hook_class, me_url in (("box", BoxHook, BOX_ME), ("dropbox", DropboxHook, DROPBOX_ME)):
        conn_id = f"bench_hot_{service}_{uuid.uuid4().hex[:6]}"
        store_url = f"sqlite:///{workdir / f'{conn_id}.db'}"
        conn_json = connections.connection_json(service, url, store_url)
        connections.set_connection(conn_id, conn_json)
        connections.store_grant(service, conn_id, conn_json, connections.raw_grant(service, emulator))
        hook: Any = hook_class(conn_id)
        closers.append(hook)
        access = hook.get_access_token()
        sdk_grant = connections.raw_grant(service, emulator)
        raw = httpx.Client(headers={"Authorization": f"Bearer {access}"}, timeout=30)
        closers.append(raw)
        raw_url = f"{url}/{me_url[len('https://') :]}"
        if service == "box":
            sdk = sdks.box_client(url, sdk_grant)
            cases += [
                ("box", "valid token", "provider hook.get_access_token()", hook.get_access_token),
                (
                    "box",
                    "valid token",
                    "box-sdk-gen auth.retrieve_authorization_header()",
                    sdk.auth.retrieve_authorization_header,
                ),
                ("box", "GET users/me", "provider hook.get_current_user()", hook.get_current_user),
                ("box", "GET users/me", "box-sdk-gen client.users.get_user_me()", sdk.users.get_user_me),
                ("box", "GET users/me", "raw httpx, fixed header", functools.partial(_raw_get, raw, raw_url)),
            ]
        else:
            sdk = sdks.dropbox_client(url, sdk_grant)
            closers.append(sdk)
            cases += [
                ("dropbox", "valid token", "provider hook.get_access_token()", hook.get_access_token),
                (
                    "dropbox",
                    "valid token",
                    "dropbox sdk check_and_refresh_access_token()",
                    sdk.check_and_refresh_access_token,
                ),
                (
                    "dropbox",
                    "POST users/get_current_account",
                    "provider hook.get_current_account()",
                    hook.get_current_account,
                ),
                (
                    "dropbox",
                    "POST users/get_current_account",
                    "dropbox sdk users_get_current_account()",
                    sdk.users_get_current_account,
                ),
                (
                    "dropbox",
                    "POST users/get_current_account",
                    "raw httpx, fixed header",
                    functools.partial(_raw_post, raw, raw_url),
                ),
            ]
    return cases, closers


def run(settings: Settings, *, emulator: Any, workdir: Path, **_: Any) -> dict[str, Any]:
    """µs per call of every case over the repetitions (cases interleaved within each repetition)."""
    emulator.client.reset()
    cases, closers = _cases(emulator, workdir)
    try:
        for _service, what, _client, call in cases:  # warm-up: connections open, caches filled
            per_call_us(call, 20 if what == "valid token" else 5)
        values: dict[int, list[float]] = {i: [] for i in range(len(cases))}
        for _rep in range(settings.repetitions):
            for index, (_service, what, _client, call) in enumerate(cases):
                calls = settings.hot_token_calls if what == "valid token" else settings.hot_calls
                values[index].append(per_call_us(call, calls))
    finally:
        for item in closers:
            item.close()
    rows: list[dict[str, Any]] = []
    for index, (service, what, client, _call) in enumerate(cases):
        rows.append(
            {
                "service": service,
                "what": what,
                "client": client,
                "us_per_call": summarize(values[index], "µs"),
            }
        )
    for row in rows:
        raw = next(
            (
                r
                for r in rows
                if r["service"] == row["service"] and r["what"] == row["what"] and "raw" in r["client"]
            ),
            None,
        )
        row["ratio_to_raw"] = (
            row["us_per_call"]["median"] / raw["us_per_call"]["median"] if raw is not None else None
        )
    return {"rows": rows}
