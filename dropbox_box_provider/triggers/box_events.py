"""BoxEventTrigger: schedules DAGs from Box's event stream (an ``AssetWatcher`` trigger, Airflow 3.3+).

One stream position per connection (Box events are per user), long-polled on the real-time server Box
names in ``OPTIONS /events`` (its ``retry_timeout``; a new server after ``reconnect`` or ``max_retries``);
every watcher of the connection shares it and keeps its own folder, glob and change kinds. The position
lives in the watched assets' state store and moves only once the events derived from it are persisted.
Delivery is at least once; repeats are dropped by Box's ``event_id``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from dropbox_box_provider.triggers._feed import ChangeTrigger

if TYPE_CHECKING:
    from dropbox_box_provider.triggers.feeds.box import BoxFeed

STREAM_TYPES = ("all", "changes")


class BoxEventTrigger(ChangeTrigger):
    """Fires once per added, modified, moved or deleted Box file below ``folder`` (glob ``pattern``).

    ``stream_type`` is Box's (``changes`` or ``all``).
    """

    service: ClassVar[str] = "box"
    feed_option_names = ("stream_type",)

    def __init__(self, *, conn_id: str = "box_default", **kwargs: Any) -> None:
        super().__init__(conn_id=conn_id, **kwargs)

    @classmethod
    def producer_class(cls) -> type[BoxFeed]:
        from dropbox_box_provider.triggers.feeds.box import BoxFeed

        return BoxFeed

    @classmethod
    def feed_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        from dropbox_box_provider.errors import InvalidArgument

        stream_type = str(options.pop("stream_type", "changes"))
        if options:
            raise InvalidArgument(f"BoxEventTrigger got unknown argument(s) {sorted(options)}")
        if stream_type not in STREAM_TYPES:
            raise InvalidArgument(f"stream_type {stream_type!r} is not supported: use one of {STREAM_TYPES}")
        return {"stream_type": stream_type}
