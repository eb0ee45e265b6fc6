"""Box's event stream without I/O: request parameters, events as typed changes, the real-time server a
long-poll goes to, and its URL and time limits. ``BoxEvents`` (``events.py``) makes the calls.

Events become typed changes: ``ITEM_UPLOAD`` is ``added`` for a new file and ``modified`` for a new version,
``ITEM_CREATE``/``ITEM_COPY``/``ITEM_UNDELETE_VIA_TRASH`` ``added``, ``ITEM_MOVE``/``ITEM_RENAME`` ``moved``,
``ITEM_TRASH`` ``deleted``; other event types are skipped. The identity is Box's ``event_id`` (Box may
deliver an event more than once).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import httpx

from dropbox_box_provider.errors import InvalidArgument, ServiceError
from dropbox_box_provider.hooks.box.paths import entry_of, path_of
from dropbox_box_provider.hooks.changes import Change, ChangeKind, ChangePage

if TYPE_CHECKING:
    from dropbox_box_provider.hooks.box.events import BoxEvents

StreamType = Literal["all", "changes", "sync"]
STREAM_TYPES = ("all", "changes", "sync")
MAX_LIMIT = 500
# The real-time server holds a poll up to its retry_timeout (610 s at Box); reads wait that plus slack.
REALTIME_SLACK = 30.0

_KINDS: dict[str, ChangeKind] = {
    "ITEM_CREATE": "added",
    "ITEM_COPY": "added",
    "ITEM_UNDELETE_VIA_TRASH": "added",
    "ITEM_MOVE": "moved",
    "ITEM_RENAME": "moved",
    "ITEM_TRASH": "deleted",
}


@dataclass(frozen=True)
class RealtimeServer:
    """Where to long-poll (``url``, real form), how long a poll may last and how many polls it serves."""

    url: str
    retry_timeout: float
    max_retries: int


def change_of(event: dict[str, Any]) -> Change | None:
    """A Box event as a Change, or None for event types that do not change files."""
    event_type = str(event.get("event_type", ""))
    source = event.get("source") or {}
    if source.get("type") not in ("file", "folder"):
        return None
    kind: ChangeKind | None
    if event_type == "ITEM_UPLOAD":
        new = source.get("type") == "file" and source.get("created_at") == source.get("modified_at")
        kind = "added" if new else "modified"
    else:
        kind = _KINDS.get(event_type)
    if kind is None:
        return None
    entry = entry_of(source, path_of(source))
    identity = str(event.get("event_id") or f"{event_type}:{entry.id}:{source.get('sequence_id')}")
    return Change(
        kind=kind,
        path=entry.path,
        identity=identity,
        entry=None if kind == "deleted" else entry,
        raw={k: v for k, v in event.items() if k != "source"} | {"source": source},
    )


def page_of(body: dict[str, Any]) -> ChangePage:
    """A ``GET /events`` answer as a ChangePage. ``has_more`` whenever the chunk held events: Box's answer
    has no "more" flag (just ``chunk_size`` and ``next_stream_position``): only an empty chunk ends a read."""
    entries = body.get("entries") or []
    changes = [c for c in (change_of(e) for e in entries) if c is not None]
    return ChangePage(changes, str(body["next_stream_position"]), has_more=bool(entries))


def params_of(stream_position: str | int, stream_type: str, limit: int) -> dict[str, str]:
    """The query of ``GET /events``, checked."""
    if stream_type not in STREAM_TYPES:
        raise InvalidArgument(f"Box stream_type {stream_type!r} is not supported: use one of {STREAM_TYPES}")
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidArgument(f"limit {limit} is out of range: Box event chunks hold 1 to {MAX_LIMIT}")
    return {"stream_position": str(stream_position), "stream_type": stream_type, "limit": str(limit)}


def server_of(body: dict[str, Any], hook: BoxEvents) -> RealtimeServer:
    """The real-time server an ``OPTIONS /events`` answer names (its URL in real form)."""
    entries = body.get("entries") or []
    if not entries or not entries[0].get("url"):
        raise ServiceError(
            "Box named no real-time server for long-polling; check that the connection's Host points at Box "
            "or its emulator",
            200,
            "no_realtime_server",
        )
    entry = entries[0]
    return RealtimeServer(
        url=hook.as_real_url(str(entry["url"])),
        retry_timeout=float(entry.get("retry_timeout") or 610),
        max_retries=int(entry.get("max_retries") or 10),
    )


def poll_url(hook: BoxEvents, server: RealtimeServer, stream_position: str) -> str:
    """Where to long-poll for events after ``stream_position``."""
    separator = "&" if "?" in server.url else "?"
    url = f"{server.url}{separator}stream_position={stream_position}"
    # The real-time host is Box's, so the connection's Host override applies to it too.
    return hook.api_url(url) if url.startswith("https://") else url


def is_new_change(response: httpx.Response, hook: BoxEvents) -> bool:
    """True for a long-poll's ``new_change``, False for ``reconnect``; an error answer raises."""
    if response.status_code != 200:
        raise hook.error_for(response)
    message = str(response.json().get("message", ""))
    return message == "new_change"


def poll_limits(server: RealtimeServer, timeout: float | None) -> httpx.Timeout:
    """A long-poll's time limits: the caller's ``timeout`` when shorter than the server's own."""
    if timeout and timeout < server.retry_timeout:
        return httpx.Timeout(timeout, connect=min(10.0, timeout))
    return httpx.Timeout(server.retry_timeout + REALTIME_SLACK, connect=10.0)
