"""DropboxChangeTrigger: schedules DAGs from Dropbox's change feed (an ``AssetWatcher`` trigger; Airflow
3.3+).

One cursor per connection on the whole Dropbox (recursive), long-polled on the notify host with Dropbox's
own timeout and ``backoff``; every watcher of the connection shares it and keeps its own folder, glob and
change kinds. The cursor lives in the watched assets' state store and moves only once the events derived
from it are persisted. Delivery is at least once; repeats are dropped by path + ``rev``.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, ClassVar

from dropbox_box_provider.triggers._feed import ChangeTrigger, FeedProducer

if TYPE_CHECKING:
    from dropbox_box_provider.hooks.dropbox import DropboxHook

DEFAULT_LONGPOLL_TIMEOUT = 480


class DropboxFeed(FeedProducer):
    """The shared reader of one connection's Dropbox change feed."""

    service: ClassVar[str] = "dropbox"

    def __init__(self, kwargs: dict[str, Any], key: Any) -> None:
        super().__init__(kwargs, key)
        self.timeout = int(kwargs.get("longpoll_timeout", DEFAULT_LONGPOLL_TIMEOUT))
        self.not_before = 0.0

    def state_key(self) -> str:
        return f"dropbox_box_provider.dropbox.cursor.{self.conn_id}"

    async def start_position(self, hook: DropboxHook) -> tuple[str, list[dict[str, Any]]]:  # type: ignore[override]
        if self.replay:
            page = await hook.alisting_cursor("", recursive=True)
            return page.position, [c.to_dict() for c in page.changes]
        return await hook.alatest_cursor("", recursive=True), []

    async def read(self, hook: DropboxHook, position: str) -> tuple[list[dict[str, Any]], str, bool]:  # type: ignore[override]
        page = await hook.achanges(position)
        return [c.to_dict() for c in page.changes], page.position, page.has_more

    async def wait(self, hook: DropboxHook, position: str) -> bool:  # type: ignore[override]
        delay = self.not_before - time.monotonic()
        if delay > 0:  # Dropbox asked for a pause before the next longpoll (backoff)
            await asyncio.sleep(delay)
        answer = await hook.await_for_changes(position, self.timeout)
        self.not_before = time.monotonic() + (answer.backoff or 0.0)
        return answer.changes

    async def restart_position(self, hook: DropboxHook) -> str:  # type: ignore[override]
        return await hook.alatest_cursor("", recursive=True)


class DropboxChangeTrigger(ChangeTrigger):
    """Fires once per added, modified or deleted Dropbox file below ``folder`` (glob ``pattern``).

    A new file and a new version look alike in Dropbox's feed: a path this watcher saw before is reported
    as ``modified``, otherwise ``added``; a move is a ``deleted`` of the old path and an ``added`` of the new.
    ``longpoll_timeout`` is Dropbox's long-poll timeout (30-480 s).
    """

    service: ClassVar[str] = "dropbox"
    producer_class = DropboxFeed
    feed_option_names = ("longpoll_timeout",)

    def __init__(self, *, conn_id: str = "dropbox_default", **kwargs: Any) -> None:
        self._known: OrderedDict[str, None] = OrderedDict()
        super().__init__(conn_id=conn_id, **kwargs)

    @classmethod
    def feed_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        from dropbox_box_provider.errors import InvalidArgument

        timeout = int(options.pop("longpoll_timeout", DEFAULT_LONGPOLL_TIMEOUT))
        if options:
            raise InvalidArgument(f"DropboxChangeTrigger got unknown argument(s) {sorted(options)}")
        if not 30 <= timeout <= 480:
            raise InvalidArgument(
                f"longpoll_timeout {timeout} is out of range: Dropbox takes 30 to 480 seconds"
            )
        return {"longpoll_timeout": timeout}

    def refine_kind(self, change: dict[str, Any]) -> str:
        """``added`` for a path new to this watcher, ``modified`` for one seen before."""
        kind = str(change["kind"])
        path = str(change["path"]).lower()
        self._seen.forget(f"deleted:{path}")  # a later delete of a re-created path is news again
        if kind == "deleted":
            self._known.pop(path, None)
            return kind
        if kind == "added" and path in self._known:
            kind = "modified"
        self._known[path] = None
        self._known.move_to_end(path)
        while len(self._known) > self.dedup_window:
            self._known.popitem(last=False)
        return kind
