"""Box's event stream on the hook: ``events`` (``GET /events`` from a ``stream_position``, ``now`` included)
and ``wait_for_events`` (``OPTIONS /events`` names a real-time server; a GET there long-polls and answers
``new_change`` or ``reconnect``), sync and async.

Events become typed changes: ``ITEM_UPLOAD`` is ``added`` for a new file and ``modified`` for a new version,
``ITEM_CREATE``/``ITEM_COPY``/``ITEM_UNDELETE_VIA_TRASH`` ``added``, ``ITEM_MOVE``/``ITEM_RENAME`` ``moved``,
``ITEM_TRASH`` ``deleted``; other event types are skipped. The identity is Box's ``event_id`` (Box may
deliver an event more than once).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import httpx

from dropbox_box_provider.errors import InvalidArgument, ServiceError, TransportError
from dropbox_box_provider.hooks.box.paths import entry_of, path_of
from dropbox_box_provider.lazy import lazy_module

# Loaded with the first call, not while a DAG file is parsed (dropbox_box_provider/lazy.py).
if TYPE_CHECKING:
    from collections.abc import Collection

    from dropbox_box_provider.auth import transport
    from dropbox_box_provider.errors import DropboxBoxError
    from dropbox_box_provider.hooks import changes
    from dropbox_box_provider.hooks.changes import Change, ChangeKind, ChangePage
else:
    transport = lazy_module("dropbox_box_provider.auth.transport", globals())
    changes = lazy_module("dropbox_box_provider.hooks.changes", globals())

EVENTS_URL = "https://api.box.com/2.0/events"
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
    return changes.Change(
        kind=kind,
        path=entry.path,
        identity=identity,
        entry=None if kind == "deleted" else entry,
        raw={k: v for k, v in event.items() if k != "source"} | {"source": source},
    )


def page_of(body: dict[str, Any]) -> ChangePage:
    """A ``GET /events`` answer as a ChangePage (``has_more`` when the chunk was full)."""
    entries = body.get("entries") or []
    found = [c for c in (change_of(e) for e in entries) if c is not None]
    return changes.ChangePage(found, str(body["next_stream_position"]), has_more=bool(entries))


def _params(stream_position: str | int, stream_type: str, limit: int) -> dict[str, str]:
    if stream_type not in STREAM_TYPES:
        raise InvalidArgument(f"Box stream_type {stream_type!r} is not supported: use one of {STREAM_TYPES}")
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidArgument(f"limit {limit} is out of range: Box event chunks hold 1 to {MAX_LIMIT}")
    return {"stream_position": str(stream_position), "stream_type": stream_type, "limit": str(limit)}


def _server_of(body: dict[str, Any], hook: BoxEvents) -> RealtimeServer:
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


def _poll_url(hook: BoxEvents, server: RealtimeServer, stream_position: str) -> str:
    separator = "&" if "?" in server.url else "?"
    url = f"{server.url}{separator}stream_position={stream_position}"
    # The real-time host is Box's, so the connection's Host override applies to it too.
    return hook.api_url(url) if url.startswith("https://") else url


def _message(response: httpx.Response, hook: BoxEvents) -> bool:
    if response.status_code != 200:
        raise hook.error_for(response)
    message = str(response.json().get("message", ""))
    return message == "new_change"


class BoxEvents:
    """The event-stream calls of ``BoxHook`` (mixed in; ``self`` is the hook)."""

    if TYPE_CHECKING:  # what the hook provides

        def request(
            self, method: str, real_url: str, *, expected: Collection[int] = (200,), **httpx_kwargs: Any
        ) -> httpx.Response: ...
        async def arequest(
            self, method: str, real_url: str, *, expected: Collection[int] = (200,), **httpx_kwargs: Any
        ) -> httpx.Response: ...
        def api_url(self, real_url: str) -> str: ...
        def as_real_url(self, url: str) -> str: ...
        def error_for(self, response: httpx.Response) -> DropboxBoxError: ...

    def events(
        self,
        stream_position: str | int = "now",
        stream_type: StreamType = "changes",
        limit: int = 500,
    ) -> ChangePage:
        """Events after ``stream_position`` (``now``: none, just the current position; ``0``: everything
        Box still keeps) as typed changes and the position to continue from."""
        params = _params(stream_position, stream_type, limit)
        return page_of(self.request("GET", EVENTS_URL, params=params).json())

    async def aevents(
        self,
        stream_position: str | int = "now",
        stream_type: StreamType = "changes",
        limit: int = 500,
    ) -> ChangePage:
        """Async ``events``."""
        params = _params(stream_position, stream_type, limit)
        return page_of((await self.arequest("GET", EVENTS_URL, params=params)).json())

    def realtime_server(self) -> RealtimeServer:
        """``OPTIONS /events``: the long-poll server to use for this user."""
        return _server_of(self.request("OPTIONS", EVENTS_URL).json(), self)

    async def arealtime_server(self) -> RealtimeServer:
        """Async ``realtime_server``."""
        return _server_of((await self.arequest("OPTIONS", EVENTS_URL)).json(), self)

    def wait_for_events(
        self,
        stream_position: str,
        timeout: float | None = None,
        server: RealtimeServer | None = None,
    ) -> bool:
        """Long-poll until an event exists after ``stream_position`` (True) or the server says reconnect
        (False). ``server`` reuses an earlier ``realtime_server()`` answer; ``timeout`` caps the wait (an
        unanswered poll at the cap is a False)."""
        server = server or self.realtime_server()
        limits = _limits(server, timeout)
        with transport.new_client(timeout=limits) as client:
            request = client.build_request("GET", _poll_url(self, server, stream_position))
            try:
                response = transport.send(client, request, policy=transport.NO_RETRY)
            except TransportError as exc:
                if timeout and isinstance(exc.__cause__, httpx.ReadTimeout):
                    return False
                raise
            return _message(response, self)

    async def await_for_events(
        self,
        stream_position: str,
        timeout: float | None = None,
        server: RealtimeServer | None = None,
    ) -> bool:
        """Async ``wait_for_events``."""
        server = server or await self.arealtime_server()
        limits = _limits(server, timeout)
        async with transport.new_async_client(timeout=limits) as client:
            request = client.build_request("GET", _poll_url(self, server, stream_position))
            try:
                response = await transport.asend(client, request, policy=transport.NO_RETRY)
            except TransportError as exc:
                if timeout and isinstance(exc.__cause__, httpx.ReadTimeout):
                    return False
                raise
            return _message(response, self)


def _limits(server: RealtimeServer, timeout: float | None) -> httpx.Timeout:
    if timeout and timeout < server.retry_timeout:
        return httpx.Timeout(timeout, connect=min(10.0, timeout))
    return httpx.Timeout(server.retry_timeout + REALTIME_SLACK, connect=10.0)
