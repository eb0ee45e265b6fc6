"""DropboxChangeTrigger: schedules DAGs from Dropbox's change feed (an ``AssetWatcher`` trigger; Airflow
3.3+).

One cursor per connection on the whole Dropbox (recursive), long-polled on the notify host with Dropbox's
own timeout and ``backoff``; every watcher of the connection shares it and keeps its own folder, glob and
change kinds. The cursor lives in the watched assets' state store and moves only once the events derived
from it are persisted. Delivery is at least once; repeats are dropped by path + ``rev``.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Any, ClassVar

from dropbox_box_provider.triggers._feed import ChangeTrigger

if TYPE_CHECKING:
    from dropbox_box_provider.triggers.feeds.dropbox import DropboxFeed

DEFAULT_LONGPOLL_TIMEOUT = 480


class DropboxChangeTrigger(ChangeTrigger):
    """Fires once per added, modified or deleted Dropbox file below ``folder`` (glob ``pattern``).

    A new file and a new version look alike in Dropbox's feed: a path this watcher saw before is reported
    as ``modified``, otherwise ``added``; a move is a ``deleted`` of the old path and an ``added`` of the new.
    ``longpoll_timeout`` is Dropbox's long-poll timeout (30-480 s).
    """

    service: ClassVar[str] = "dropbox"
    feed_option_names = ("longpoll_timeout",)

    def __init__(self, *, conn_id: str = "dropbox_default", **kwargs: Any) -> None:
        self._known: OrderedDict[str, None] = OrderedDict()
        super().__init__(conn_id=conn_id, **kwargs)

    @classmethod
    def producer_class(cls) -> type[DropboxFeed]:
        from dropbox_box_provider.triggers.feeds.dropbox import DropboxFeed

        return DropboxFeed

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
