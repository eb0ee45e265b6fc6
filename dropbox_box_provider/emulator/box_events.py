"""Box events: ``GET /2.0/events`` (``stream_position`` incl. ``now``, ``stream_type`` all/changes/sync,
``next_stream_position``), ``OPTIONS /2.0/events`` (the real-time server) and the real-time server's
long-poll (``new_change`` / ``reconnect``).

Each user's journal is derived from the file tree: after every Box request that may change files (and on
each events call), the tree is compared with the journal's last view and one event is appended per changed
item (ITEM_CREATE, ITEM_UPLOAD, ITEM_MOVE, ITEM_RENAME, ITEM_TRASH, ITEM_UNDELETE_VIA_TRASH). Journals
start on a user's first events call. Box may deliver an event twice; clients de-duplicate by ``event_id``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
import weakref
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from dropbox_box_provider.emulator.access import Caller, box_caller, emulator_state
from dropbox_box_provider.emulator.files import Node, Tree
from dropbox_box_provider.emulator.responses import box_error, json_response
from dropbox_box_provider.emulator.state import EmulatorState, random_token

API = "/api.box.com/2.0"
REALTIME_HOST = "2.realtime.services.box.net"
REALTIME = f"/{REALTIME_HOST}/subscribe"
STREAM_TYPES = ("all", "changes", "sync")
FIRST_POSITION = 1_152_922_976_252_290_886  # Box positions are large integers (as strings)
DEFAULT_LIMIT, MAX_LIMIT = 100, 500
TICK = 0.05

# id -> (parent id, name, version, folder)
View = dict[str, tuple[str, str, int, bool]]


@dataclass
class Journal:
    """One user's event log and the view of the tree it was last compared with."""

    caller: Caller
    view: View
    seen: int
    events: list[dict[str, Any]] = field(default_factory=list)
    trashed_ids: set[str] = field(default_factory=set)

    @property
    def end(self) -> int:
        return FIRST_POSITION + len(self.events)


@dataclass
class _Registry:
    journals: dict[str, Journal] = field(default_factory=dict)  # tree id -> journal
    channels: dict[str, str] = field(default_factory=dict)  # real-time channel -> tree id


_REGISTRIES: weakref.WeakKeyDictionary[EmulatorState, _Registry] = weakref.WeakKeyDictionary()


def _registry(state: EmulatorState) -> _Registry:
    registry = _REGISTRIES.get(state)
    if registry is None:
        registry = _REGISTRIES[state] = _Registry()
    return registry


def _view(tree: Tree) -> View:
    return {
        node.id: (node.parent.id if node.parent else "", node.name, node.version, node.folder)
        for node in tree.root.walk()
    }


def journal_for(state: EmulatorState, caller: Caller) -> Journal:
    """The caller's journal, brought up to date (started now on the first call); hold ``state.lock``."""
    registry = _registry(state)
    journal = registry.journals.get(caller.tree_id)
    if journal is None or journal.caller.tree is not caller.tree:  # a reset replaced the tree
        journal = registry.journals[caller.tree_id] = Journal(caller, _view(caller.tree), state.changes)
    _sync(state, journal)
    return journal


def _sync(state: EmulatorState, journal: Journal) -> None:
    if journal.seen == state.changes:
        return
    from dropbox_box_provider.emulator.box_api import full

    tree, caller = journal.caller.tree, journal.caller
    old, new = journal.view, _view(tree)
    now = time.time()

    def add(event_type: str, node: Node, trashed: bool = False) -> None:
        source = full(node, caller, trashed_at=now) if trashed else full(node, caller)
        journal.events.append(
            {
                "type": "event",
                "event_id": str(uuid.uuid4()),
                "event_type": event_type,
                "created_at": _iso(now),
                "recorded_at": _iso(now),
                "created_by": {"type": "user", "id": caller.account.id, "name": caller.account.name},
                "session_id": None,
                "additional_details": None,
                "source": source,
            }
        )

    for item_id in sorted(old.keys() - new.keys(), key=lambda i: old[i][1]):
        if old[item_id][0] in old and old[item_id][0] not in new:
            continue  # inside a folder that went: the folder's event covers it
        node = tree.trashed.get(item_id)
        if node is not None and item_id in tree.trash:
            journal.trashed_ids.add(item_id)
            add("ITEM_TRASH", node, trashed=True)
    for item_id, (parent, name, version, folder) in sorted(
        new.items(), key=lambda kv: tree.index[kv[0]].path_display().lower()
    ):
        node = tree.index[item_id]
        before = old.get(item_id)
        if before is None:
            if item_id in journal.trashed_ids:
                journal.trashed_ids.discard(item_id)
                add("ITEM_UNDELETE_VIA_TRASH", node)
            else:
                add("ITEM_CREATE" if folder else "ITEM_UPLOAD", node)
            continue
        if before[0] != parent:
            add("ITEM_MOVE", node)
        elif before[1] != name:
            add("ITEM_RENAME", node)
        elif not folder and before[2] != version:
            add("ITEM_UPLOAD", node)
    journal.view, journal.seen = new, state.changes


def _iso(timestamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(timestamp))


def _position(value: str | None) -> int | None:
    """A stream position as an int; None for ``now``."""
    if value is None or value == "":
        return 0
    if value == "now":
        return None
    try:
        return int(value)
    except ValueError:
        return -1


async def get_events(request: Request) -> Response:
    """GET /2.0/events: the events after ``stream_position`` (``now``: none, just the current position)."""
    caller = box_caller(request)
    params = request.query_params
    stream_type = params.get("stream_type", "all")
    if stream_type not in STREAM_TYPES:
        return box_error(400, "bad_request", f"Invalid value '{stream_type}' for query parameter stream_type")
    position = _position(params.get("stream_position"))
    if position is not None and position < 0:
        return box_error(400, "bad_request", "Invalid value for query parameter stream_position")
    try:
        limit = int(params.get("limit", DEFAULT_LIMIT))
    except ValueError:
        return box_error(400, "bad_request", "Invalid value for query parameter limit")
    limit = max(1, min(limit, MAX_LIMIT))
    state = emulator_state(request)
    with state.lock:
        journal = journal_for(state, caller)
        if position is None:
            return json_response({"chunk_size": 0, "next_stream_position": str(journal.end), "entries": []})
        start = max(0, position - FIRST_POSITION)
        chunk = journal.events[start : start + limit]
        next_position = FIRST_POSITION + min(len(journal.events), start + len(chunk))
    return json_response(
        {"chunk_size": len(chunk), "next_stream_position": str(next_position), "entries": chunk}
    )


async def realtime_servers(request: Request) -> Response:
    """OPTIONS /2.0/events: the long-poll URL for this user (``retry_timeout``, ``max_retries``, ``ttl``)."""
    caller = box_caller(request)
    state = emulator_state(request)
    with state.lock:
        journal_for(state, caller)
        channel = random_token(20).lower()
        _registry(state).channels[channel] = caller.tree_id
        retry_timeout = int(state.config.get("box_realtime_retry_timeout", 610))
    base = str(request.base_url).rstrip("/")
    server = {
        "type": "realtime_server",
        "url": f"{base}{REALTIME}?channel={channel}&stream_type=all",
        "ttl": "10",
        "max_retries": "10",
        "retry_timeout": retry_timeout,
    }
    return json_response({"chunk_size": 1, "entries": [server]})


async def realtime_poll(request: Request) -> Response:
    """GET on the real-time URL: ``new_change`` once an event exists after ``stream_position``, else
    ``reconnect`` after ``retry_timeout`` (scaled by ``longpoll_time_scale``)."""
    state = emulator_state(request)
    params = request.query_params
    with state.lock:
        registry = _registry(state)
        tree_id = registry.channels.get(params.get("channel", ""))
        journal = registry.journals.get(tree_id or "")
        if journal is None:
            return json_response({"message": "reconnect"})
        _sync(state, journal)
        position = _position(params.get("stream_position"))
        if position is None or position < 0:
            position = journal.end
        scale = float(state.config.get("longpoll_time_scale", 1.0))
        deadline = time.monotonic() + float(state.config.get("box_realtime_retry_timeout", 610)) * scale
    while True:
        with state.lock:
            _sync(state, journal)
            if journal.end > max(position, FIRST_POSITION):
                return json_response({"message": "new_change"})
        if time.monotonic() >= deadline or await request.is_disconnected():
            return json_response({"message": "reconnect"})  # nobody reads it once the client left
        await asyncio.sleep(min(TICK, max(0.0, deadline - time.monotonic())))


class JournalSync:
    """ASGI middleware: after each Box request that may change files, bring started journals up to date,
    so every request's changes become events of their own (nothing collapses between two looks)."""

    def __init__(self, app: ASGIApp, state: EmulatorState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            return
        registry = _REGISTRIES.get(self.state)
        if registry is None or not registry.journals or not _is_box(scope["path"]):
            return
        with self.state.lock:
            for journal in registry.journals.values():
                _sync(self.state, journal)


def _is_box(path: str) -> bool:
    return path.startswith(("/api.box.com/", "/upload.box.com/"))


def routes() -> list[Route]:
    """The events routes on api.box.com and the real-time server's long-poll route."""
    return [
        Route(f"{API}/events", get_events, methods=["GET"]),
        Route(f"{API}/events", realtime_servers, methods=["OPTIONS"]),
        Route(REALTIME, realtime_poll, methods=["GET"]),
    ]
