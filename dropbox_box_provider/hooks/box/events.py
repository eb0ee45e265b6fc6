"""Box's event stream on the hook: ``events`` (``GET /events`` from a ``stream_position``, ``now`` included)
and ``wait_for_events`` (``OPTIONS /events`` names a real-time server; a GET there long-polls and answers
``new_change`` or ``reconnect``), sync and async. What the answers mean is in ``event_feed.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx

from dropbox_box_provider.errors import TransportError
from dropbox_box_provider.lazy import lazy_module

# Loaded with the first call, not while a DAG file is parsed (dropbox_box_provider/lazy.py).
if TYPE_CHECKING:
    from collections.abc import Collection

    from dropbox_box_provider.auth import transport
    from dropbox_box_provider.errors import DropboxBoxError
    from dropbox_box_provider.hooks.box import event_feed
    from dropbox_box_provider.hooks.box.event_feed import RealtimeServer, StreamType
    from dropbox_box_provider.hooks.changes import ChangePage
else:
    transport = lazy_module("dropbox_box_provider.auth.transport", globals())
    event_feed = lazy_module("dropbox_box_provider.hooks.box.event_feed", globals())

EVENTS_URL = "https://api.box.com/2.0/events"


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
        params = event_feed.params_of(stream_position, stream_type, limit)
        return event_feed.page_of(self.request("GET", EVENTS_URL, params=params).json())

    async def aevents(
        self,
        stream_position: str | int = "now",
        stream_type: StreamType = "changes",
        limit: int = 500,
    ) -> ChangePage:
        """Async ``events``."""
        params = event_feed.params_of(stream_position, stream_type, limit)
        return event_feed.page_of((await self.arequest("GET", EVENTS_URL, params=params)).json())

    def realtime_server(self) -> RealtimeServer:
        """``OPTIONS /events``: the long-poll server to use for this user."""
        return event_feed.server_of(self.request("OPTIONS", EVENTS_URL).json(), self)

    async def arealtime_server(self) -> RealtimeServer:
        """Async ``realtime_server``."""
        return event_feed.server_of((await self.arequest("OPTIONS", EVENTS_URL)).json(), self)

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
        limits = event_feed.poll_limits(server, timeout)
        with transport.new_client(timeout=limits) as client:
            request = client.build_request("GET", event_feed.poll_url(self, server, stream_position))
            try:
                response = transport.send(client, request, policy=transport.NO_RETRY)
            except TransportError as exc:
                if timeout and isinstance(exc.__cause__, httpx.ReadTimeout):
                    return False
                raise
            return event_feed.is_new_change(response, self)

    async def await_for_events(
        self,
        stream_position: str,
        timeout: float | None = None,
        server: RealtimeServer | None = None,
    ) -> bool:
        """Async ``wait_for_events``."""
        server = server or await self.arealtime_server()
        limits = event_feed.poll_limits(server, timeout)
        async with transport.new_async_client(timeout=limits) as client:
            request = client.build_request("GET", event_feed.poll_url(self, server, stream_position))
            try:
                response = await transport.asend(client, request, policy=transport.NO_RETRY)
            except TransportError as exc:
                if timeout and isinstance(exc.__cause__, httpx.ReadTimeout):
                    return False
                raise
            return event_feed.is_new_change(response, self)
