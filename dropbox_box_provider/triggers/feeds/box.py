"""BoxFeed: the shared reader of one connection's Box event stream, long-polled on the real-time server."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from dropbox_box_provider.triggers.feeds.base import FeedProducer

if TYPE_CHECKING:
    from dropbox_box_provider.hooks.box import BoxHook
    from dropbox_box_provider.hooks.box.event_feed import RealtimeServer


class BoxFeed(FeedProducer):
    """The shared reader of one connection's Box event stream."""

    service: ClassVar[str] = "box"

    def __init__(self, kwargs: dict[str, Any], key: Any) -> None:
        self.stream_type = str(kwargs.get("stream_type", "changes"))
        super().__init__(kwargs, key)
        self.server: RealtimeServer | None = None
        self.polls = 0

    def state_key(self) -> str:
        return f"dropbox_box_provider.box.stream_position.{self.conn_id}.{self.stream_type}"

    async def start_position(self, hook: BoxHook) -> tuple[str, list[dict[str, Any]]]:  # type: ignore[override]
        if self.replay:
            return "0", []
        return (await hook.aevents("now", self.stream_type)).position, []  # type: ignore[arg-type]

    async def read(self, hook: BoxHook, position: str) -> tuple[list[dict[str, Any]], str, bool]:  # type: ignore[override]
        page = await hook.aevents(position, self.stream_type)  # type: ignore[arg-type]
        return [c.to_dict() for c in page.changes], page.position, page.has_more

    async def wait(self, hook: BoxHook, position: str) -> bool:  # type: ignore[override]
        if self.server is None or self.polls >= self.server.max_retries:
            self.server, self.polls = await hook.arealtime_server(), 0
        self.polls += 1
        news = await hook.await_for_events(position, server=self.server)
        if not news:
            self.server = None  # "reconnect": ask for a server again
        return news

    async def restart_position(self, hook: BoxHook) -> str:  # type: ignore[override]
        return (await hook.aevents("now", self.stream_type)).position  # type: ignore[arg-type]
