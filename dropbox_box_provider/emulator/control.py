"""Control plane under /_emulator/: register apps, issue codes, configure, inject faults, stats, reset."""

from __future__ import annotations

import json
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dropbox_box_provider.emulator import grants
from dropbox_box_provider.emulator.middleware import FAULT_ERRORS
from dropbox_box_provider.emulator.oauth import default_user
from dropbox_box_provider.emulator.responses import json_response
from dropbox_box_provider.emulator.state import (
    BOX,
    DEFAULT_CONFIG,
    DROPBOX,
    SERVICES,
    Account,
    App,
    EmulatorState,
    Fault,
    empty_stats,
    random_token,
)


class ControlError(Exception):
    """Bad control-plane input; answered as 400 {"error": message}."""


def _state(request: Request) -> EmulatorState:
    state: EmulatorState = request.app.state.emulator
    return state


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise ControlError("the body must be a JSON object")
    return data


def _service(data: dict[str, Any]) -> str:
    service = data.get("service")
    if service not in SERVICES:
        raise ControlError(f"service must be one of {list(SERVICES)}, got {service!r}")
    return str(service)


def _user_specs(users: Any) -> list[dict[str, Any]]:
    specs: list[dict[str, Any]] = []
    for user in users or []:
        specs.append({"id": str(user)} if isinstance(user, (str, int)) else dict(user))
    return specs


def register_app(state: EmulatorState, data: dict[str, Any]) -> App:
    """Create or replace an app; its ``users`` become accounts (Box enterprise users, Dropbox members)."""
    service = _service(data)
    client_id = data.get("client_id")
    if not client_id:
        raise ControlError("client_id is required")
    keys = data.get("public_keys") or {}
    if isinstance(keys, list):
        keys = {str(item["kid"]): str(item["pem"]) for item in keys}
    app = App(
        service=service,
        client_id=str(client_id),
        client_secret=data.get("client_secret"),
        redirect_uris=[str(u) for u in data.get("redirect_uris") or []],
        public_keys={str(k): str(v) for k, v in keys.items()},
        enterprise_id=str(data["enterprise_id"]) if data.get("enterprise_id") else None,
        team=bool(data.get("team", False)),
        scopes=[str(s) for s in data["scopes"]] if data.get("scopes") is not None else None,
        app_folder=bool(data.get("app_folder", False)),
    )
    specs = _user_specs(data.get("users"))
    with state.lock:
        if service == BOX:
            for spec in specs:
                state.add_account(
                    Account(BOX, spec["id"], spec.get("name", f"User {spec['id']}"),
                            spec.get("email", f"user{spec['id']}@example.com"), role=spec.get("role", "user"),
                            enterprise_id=app.enterprise_id)
                )  # fmt: skip
                app.users.append(spec["id"])
            if app.enterprise_id:
                service_account = state.add_account(
                    Account(BOX, state.new_box_id(), f"{app.client_id} service account",
                            f"AutomationUser_{app.client_id}@boxdevedition.com", role="service",
                            enterprise_id=app.enterprise_id)
                )  # fmt: skip
                app.service_account_id = service_account.id
        else:
            _register_dropbox_users(state, app, specs, data.get("team_id"))
        if not specs and default_user(state, app) is None:
            _add_default_account(state, app)
        state.apps[(service, app.client_id)] = app
        state.changed()
    return app


def _add_default_account(state: EmulatorState, app: App) -> None:
    """An app registered without users (and nobody else who could authorize it) gets its own account, so
    ``/_emulator/authorize`` works at once."""
    if app.service == BOX:
        user_id = state.new_box_id()
        state.add_account(
            Account(BOX, user_id, f"{app.client_id} user", f"user{user_id}@example.com",
                    enterprise_id=app.enterprise_id)
        )  # fmt: skip
        app.users.append(user_id)
    else:
        spec = {"id": "dbid:" + random_token(35), "name": f"{app.client_id} user"}
        _register_dropbox_users(state, app, [spec], app.team_id)


def _register_dropbox_users(
    state: EmulatorState, app: App, specs: list[dict[str, Any]], team_id: str | None
) -> None:
    if app.team:
        if team_id is None and not specs:
            team_id = next((a.team_id for a in state.accounts.values() if a.team_id), None)
        app.team_id = team_id or f"dbtid:{app.client_id}"
    for index, spec in enumerate(specs):
        user_id = spec["id"]
        member_id = user_id if user_id.startswith("dbmid:") else None
        account_id = user_id if user_id.startswith("dbid:") else "dbid:" + random_token(35)
        namespace = str(2000000 + len(state.accounts))
        role = spec.get("role", "admin" if app.team and index == 0 else "user")
        existing = state.account(DROPBOX, user_id)
        if existing is None:
            state.add_account(
                Account(DROPBOX, account_id, spec.get("name", f"User {user_id}"),
                        spec.get("email", f"{user_id.split(':')[-1]}@example.com"), role=role,
                        team_id=app.team_id if app.team else None,
                        member_id=member_id or (f"dbmid:{random_token(20)}" if app.team else None),
                        namespace_id=namespace, uid=namespace)
            )  # fmt: skip
        app.users.append(user_id)


def _app_json(app: App) -> dict[str, Any]:
    return {
        "service": app.service,
        "client_id": app.client_id,
        "client_secret": app.client_secret,
        "redirect_uris": app.redirect_uris,
        "public_key_ids": sorted(app.public_keys),
        "enterprise_id": app.enterprise_id,
        "users": app.users,
        "team": app.team,
        "team_id": app.team_id,
        "service_account_id": app.service_account_id,
    }


async def apps(request: Request) -> Response:
    """POST registers an app; GET lists them."""
    state = _state(request)
    if request.method == "GET":
        with state.lock:
            return json_response({"apps": [_app_json(a) for a in state.apps.values()]})
    return json_response(_app_json(register_app(state, await _body(request))))


async def authorize(request: Request) -> Response:
    """Issue an authorization code as if the user clicked Allow on the consent page."""
    state = _state(request)
    data = await _body(request)
    service = _service(data)
    app = grants.find_app(state, service, data.get("client_id"))
    if app is None:
        raise ControlError(f"no {service} app {data.get('client_id')!r}: register it first")
    redirect_uri = data.get("redirect_uri") or None
    if redirect_uri is not None and redirect_uri not in app.redirect_uris:
        raise ControlError(f"redirect_uri {redirect_uri!r} is not registered for {app.client_id!r}")
    user_id = data.get("user_id") or default_user(state, app)
    if user_id is None or state.account(service, str(user_id)) is None:
        raise ControlError(f"unknown user {user_id!r}")
    account = state.account(service, str(user_id))
    assert account is not None
    code = grants.issue_code(
        state,
        service,
        app.client_id,
        account.id,
        redirect_uri,
        code_challenge=data.get("code_challenge"),
        code_challenge_method=data.get("code_challenge_method"),
        scope=data.get("scope"),
        token_access_type=data.get("token_access_type"),
    )
    return json_response({"code": code, "user_id": account.id})


async def config(request: Request) -> Response:
    """Update token lifetimes, the Box refresh grace switch, code lifetime; answer the whole config."""
    state = _state(request)
    data = await _body(request)
    updates: dict[str, Any] = {}
    for key, value in data.items():
        if value is None:
            continue
        if key == "access_token_ttl":
            updates["dropbox_access_token_ttl"] = updates["box_access_token_ttl"] = float(value)
        elif key == "box_refresh_grace":
            updates[key] = bool(value)
        elif key in ("box_commit_pending", "dropbox_write_concurrency"):
            updates[key] = int(value)
        elif key in DEFAULT_CONFIG:
            updates[key] = float(value)
        else:
            known = sorted([*DEFAULT_CONFIG, "access_token_ttl"])
            raise ControlError(f"unknown config key {key!r}; known keys: {known}")
    with state.lock:
        state.config.update(updates)
        return json_response(dict(state.config))


async def faults(request: Request) -> Response:
    """POST arms a fault; GET lists armed faults; DELETE disarms all."""
    state = _state(request)
    if request.method == "DELETE":
        with state.lock:
            state.faults = []
        return json_response({"faults": []})
    if request.method == "POST":
        data = await _body(request)
        if not data.get("route"):
            raise ControlError("route (a glob over the request path, e.g. '*/oauth2/token') is required")
        fault = Fault(
            route=str(data["route"]),
            status=int(data["status"]) if data.get("status") is not None else None,
            retry_after=int(data["retry_after"]) if data.get("retry_after") is not None else None,
            delay=float(data["delay"]) if data.get("delay") is not None else None,
            drop=bool(data.get("drop", False)) or bool(data.get("drop_after", False)),
            drop_after=bool(data.get("drop_after", False)),
            count=int(data.get("count", 1)),
            error=str(data["error"]) if data.get("error") else None,
        )
        if fault.error is not None:
            if fault.error not in FAULT_ERRORS:
                raise ControlError(f"unknown fault error {fault.error!r}; known: {sorted(FAULT_ERRORS)}")
            fault.status = FAULT_ERRORS[fault.error][1]
        if fault.status is None and not fault.drop and not fault.delay:
            raise ControlError("a fault needs status, error, delay or drop")
        with state.lock:
            state.faults.append(fault)
    with state.lock:
        listed = [vars(f).copy() for f in state.faults]
    return json_response({"faults": listed})


async def stats(request: Request) -> Response:
    """Request counts per service and route, token answers per grant and outcome, the most requests
    handled at once (``max_in_flight``); DELETE zeroes them (files and tokens stay)."""
    state = _state(request)
    if request.method == "DELETE":
        with state.lock:
            state.stats = empty_stats()
    return json_response(state.snapshot_stats())


async def reset(request: Request) -> Response:
    """Everything back to the seeded state; stats zeroed."""
    _state(request).reset()
    return json_response({"ok": True})


async def expire(request: Request) -> Response:
    """Make matching access tokens expire now (avoids sleeping in tests)."""
    state = _state(request)
    data = await _body(request)
    count = 0
    with state.lock:
        for token in state.access_tokens.values():
            if data.get("service") not in (None, token.service):
                continue
            if data.get("client_id") not in (None, token.client_id):
                continue
            if data.get("token") not in (None, token.token):
                continue
            token.expires_at = min(token.expires_at, time.time() - 1)
            count += 1
        state.changed()
    return json_response({"expired": count})


async def health(request: Request) -> Response:
    """Liveness probe."""
    return json_response({"ok": True})


def _guard(endpoint: Any) -> Any:
    async def guarded(request: Request) -> Response:
        try:
            response: Response = await endpoint(request)
        except (ControlError, ValueError, KeyError, TypeError) as exc:
            return json_response({"error": str(exc)}, 400)
        return response

    guarded.__doc__ = endpoint.__doc__
    return guarded


def routes() -> list[Route]:
    """The /_emulator/ routes."""
    return [
        Route("/_emulator/apps", _guard(apps), methods=["GET", "POST"]),
        Route("/_emulator/authorize", _guard(authorize), methods=["POST"]),
        Route("/_emulator/config", _guard(config), methods=["GET", "POST"]),
        Route("/_emulator/faults", _guard(faults), methods=["GET", "POST", "DELETE"]),
        Route("/_emulator/stats", _guard(stats), methods=["GET", "DELETE"]),
        Route("/_emulator/reset", _guard(reset), methods=["POST"]),
        Route("/_emulator/expire", _guard(expire), methods=["POST"]),
        Route("/_emulator/health", health, methods=["GET"]),
    ]
