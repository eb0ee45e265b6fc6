"""ASGI middleware around the emulator app: injected faults (status, delay, dropped connection) and stats."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dropbox_box_provider.emulator.responses import (
    box_error,
    box_unauthorized,
    dropbox_auth_error,
    dropbox_error,
    json_response,
)
from dropbox_box_provider.emulator.state import BOX, DROPBOX, EmulatorState, Fault

HOSTS: dict[str, tuple[str, str]] = {
    "www.dropbox.com": (DROPBOX, ""),
    "api.dropboxapi.com": (DROPBOX, ""),
    "content.dropboxapi.com": (DROPBOX, ""),
    "dl.dropboxusercontent.com": (DROPBOX, ""),
    "notify.dropboxapi.com": (DROPBOX, ""),
    "api.box.com": (BOX, ""),
    "upload.box.com": (BOX, "/api"),
    "account.box.com": (BOX, "/api"),
    "dl.boxcloud.com": (BOX, ""),
    "2.realtime.services.box.net": (BOX, ""),
}
CONTROL_PREFIX = "/_emulator/"

# Errors a fault can inject by name: (service, HTTP status).
FAULT_ERRORS: dict[str, tuple[str, int]] = {
    "too_many_write_operations": (DROPBOX, 409),
    "parts_mismatch": (BOX, 400),
}
TOO_MANY_WRITES = "too_many_write_operations"
# Dropbox routes that write into an account's namespace, each one write (``dropbox_write_concurrency``);
# a batch commit is one write too, refused entry by entry by its handler (told through ``WRITE_ADMITTED``).
WRITE_ROUTES = frozenset(
    "/2/files/" + name
    for name in (
        "upload",
        "upload_session/finish",
        "create_folder_v2",
        "delete_v2",
        "delete",
        "move_v2",
        "copy_v2",
    )
)
BATCH_WRITE_ROUTES = frozenset(
    {"/2/files/upload_session/finish_batch_v2", "/2/files/upload_session/finish_batch"}
)
WRITE_ADMITTED = "emulator.write_admitted"  # scope key: False when a batch met another write


def writer_key(scope: Scope) -> str:
    """Whose namespace a Dropbox request writes to: its bearer token and selected team member."""
    headers: dict[bytes, bytes] = dict(scope.get("headers") or [])
    return (headers.get(b"authorization", b"") + b"|" + headers.get(b"dropbox-api-select-user", b"")).decode(
        "latin-1"
    )


def classify(path: str) -> tuple[str, str] | None:
    """(service, route) of a host-prefixed path, e.g. /api.box.com/2.0/users/me -> (box, /2.0/users/me)."""
    host, _, rest = path.lstrip("/").partition("/")
    known = HOSTS.get(host)
    if known is None:
        return None
    service, strip = known
    route = "/" + rest
    if strip and route.startswith(strip + "/"):
        route = route[len(strip) :]
    return service, route


def dropbox_too_many_writes(route: str) -> Response:
    """409 ``too_many_write_operations`` nested where each route's error union carries it (per the stone
    types of dropbox-sdk-python: UploadError.path is UploadWriteFailed{reason: WriteError}, DeleteError's
    path_write, UploadSessionFinishError.path and CreateFolderError.path are WriteError)."""
    leaf = {".tag": TOO_MANY_WRITES}
    if route.endswith("/files/upload"):
        error: dict[str, Any] = {".tag": "path", "reason": leaf, "upload_session_id": ""}
        return dropbox_error(409, f"path/{TOO_MANY_WRITES}", error)
    wrapper = next(
        (
            tag
            for suffix, tag in (
                ("/files/upload_session/finish", "path"),
                ("/files/create_folder_v2", "path"),
                ("/files/delete_v2", "path_write"),
                ("/files/delete", "path_write"),
            )
            if route.endswith(suffix)
        ),
        None,
    )
    if wrapper is None:
        return dropbox_error(409, TOO_MANY_WRITES, leaf)
    return dropbox_error(409, f"{wrapper}/{TOO_MANY_WRITES}", {".tag": wrapper, wrapper: leaf})


def fault_response(service: str, fault: Fault, route: str = "") -> Response:
    """The error answer for an injected status or named error, in the service's shape."""
    if fault.error == TOO_MANY_WRITES and service == DROPBOX:
        return dropbox_too_many_writes(route)
    if fault.error == "parts_mismatch" and service == BOX:
        message = "Not all parts have been processed yet; list the parts and retry the commit"
        return box_error(400, "parts_mismatch", message)
    status = fault.status or 500
    headers: dict[str, str] = {}
    if status == 429:
        retry_after = fault.retry_after if fault.retry_after is not None else 1
        headers["Retry-After"] = str(retry_after)
        if service == DROPBOX:
            error: dict[str, Any] = {"reason": {".tag": "too_many_requests"}, "retry_after": retry_after}
            return dropbox_error(429, "too_many_requests", error, headers)
        message = "Request rate limit exceeded, please try again later"
        return box_error(429, "rate_limit_exceeded", message, None, headers)
    if fault.retry_after is not None:
        headers["Retry-After"] = str(fault.retry_after)
    if status == 401:
        return dropbox_auth_error("expired_access_token") if service == DROPBOX else box_unauthorized()
    if service == BOX:
        codes = {500: "internal_server_error", 502: "bad_gateway", 503: "unavailable", 504: "gateway_timeout"}
        code = codes.get(status, "emulated_fault")
        return box_error(status, code, f"Emulated fault: HTTP {status}", None, headers)
    if status >= 500:
        return Response(
            f"Emulated fault: HTTP {status}", status, headers, media_type="text/plain; charset=utf-8"
        )
    return json_response(
        {"error_summary": f"emulated_fault/{status}/..", "error": {".tag": "other"}}, status, headers
    )


async def drop_connection(send: Send) -> None:
    """Close the client's connection without answering (uvicorn's transport is reachable from ``send``)."""
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is None:
        raise ConnectionAbortedError("emulated dropped connection")
    transport.abort()
    await asyncio.sleep(0)  # lets uvicorn see connection_lost, so it does not try to answer 500


async def _discard(message: Message) -> None:
    """An ASGI ``send`` that throws the answer away (``drop_after``)."""


class FaultsAndStats:
    """Applies armed faults before the app sees a request and counts every answer per service and route."""

    def __init__(self, app: ASGIApp, state: EmulatorState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(CONTROL_PREFIX):
            await self.app(scope, receive, send)
            return
        classified = classify(scope["path"])
        if classified is None:
            await self.app(scope, receive, send)
            return
        service, route = classified
        self.state.enter(service)
        batch = service == DROPBOX and route in BATCH_WRITE_ROUTES
        writes = service == DROPBOX and (route in WRITE_ROUTES or batch)
        writer = writer_key(scope) if writes else None
        admitted = writer is not None and self.state.start_write(writer)
        if batch:
            scope[WRITE_ADMITTED] = admitted
        try:
            latency = float(self.state.config.get("latency_ms") or 0.0)
            if latency > 0:
                await asyncio.sleep(latency / 1000.0)
            if writer is not None and not admitted and not batch:
                response = dropbox_too_many_writes(route)
                self.state.count_route(service, route, response.status_code)
                await response(scope, receive, send)
                return
            await self._handle(scope, receive, send, service, route)
        finally:
            if admitted and writer is not None:
                self.state.end_write(writer)
            self.state.leave(service)

    async def _handle(self, scope: Scope, receive: Receive, send: Send, service: str, route: str) -> None:
        fault = self.state.take_fault(scope["path"])
        if fault is not None:
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.drop and fault.drop_after:
                await self.app(scope, receive, _discard)  # the service acts; its answer is lost
                self.state.count_route(service, route, 0)
                await drop_connection(send)
                return
            if fault.drop:
                self.state.count_route(service, route, 0)
                await drop_connection(send)
                return
            if fault.status is not None or fault.error is not None:
                response = fault_response(service, fault, route)
                self.state.count_route(service, route, response.status_code)
                await response(scope, receive, send)
                return
        status_seen: list[int] = []

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_seen.append(int(message["status"]))
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            self.state.count_route(service, route, status_seen[0] if status_seen else 500)
