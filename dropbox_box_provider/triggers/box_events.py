"""BoxEventTrigger: schedules DAGs from Box's event stream (an ``AssetWatcher`` trigger, Airflow 3.3+).

One stream position per connection (Box events are per user), long-polled on the real-time server Box
names in ``OPTIONS /events`` (its ``retry_timeout``; a new server after ``reconnect`` or ``max_retries``);
every watcher of the connection shares it and keeps its own folder, glob and change kinds. The position
lives in the watched assets' state store and moves only once the events derived from it are persisted.
Delivery is at least once; repeats are dropped by Box's ``event_id``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from dropbox_box_provider.triggers._feed import ChangeTrigger, FeedProducer

if TYPE_CHECKING:
    from dropbox_box_provider.hooks.box import BoxHook
    from dropbox_box_provider.hooks.box.events import RealtimeServer

STREAM_TYPES = ("all", "changes")


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


class BoxEventTrigger(ChangeTrigger):
    """Fires once per added, modified, moved or deleted Box file below ``folder`` (glob ``pattern``).

    ``stream_type`` is Box's (``changes`` or ``all``).
    """

    service: ClassVar[str] = "box"
    producer_class = BoxFeed
    feed_option_names = ("stream_type",)

    def __init__(self, *, conn_id: str = "box_default", **kwargs: Any) -> None:
        super().__init__(conn_id=conn_id, **kwargs)

    @classmethod
    def feed_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        from dropbox_box_provider.errors import InvalidArgument

        stream_type = str(options.pop("stream_type", "changes"))
        if options:
            raise InvalidArgument(f"BoxEventTrigger got unknown argument(s) {sorted(options)}")
        if stream_type not in STREAM_TYPES:
            raise InvalidArgument(f"stream_type {stream_type!r} is not supported: use one of {STREAM_TYPES}")
        return {"stream_type": stream_type}
