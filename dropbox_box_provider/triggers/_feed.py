"""What the Dropbox and Box change triggers share: one long-poll per account (Airflow's shared stream in ack
mode), the feed position kept in the watched assets' ``asset_state_store`` and moved only in ``advance()``,
per-watcher filtering (folder, glob, change kinds) and de-duplication by change identity.

Delivery is at least once: after a restart the feed is read again from the last stored position, so a
change may come twice; each watcher drops repeats of the last ``dedup_window`` identities it saw.
"""

from __future__ import annotations

import abc
import importlib.util
from collections.abc import AsyncIterator, Hashable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from dropbox_box_provider.errors import EventTriggerUnavailable
from dropbox_box_provider.lazy import lazy_module

NEEDS_AIRFLOW_3_3 = (
    "the Dropbox and Box change triggers need Airflow 3.3 or later (shared streams and the asset state "
    "store for watchers); upgrade Airflow, or keep using RemoteFileTrigger and the file sensors"
)
try:
    from airflow.triggers.base import BaseEventTrigger, TriggerEvent
except ImportError as exc:
    raise EventTriggerUnavailable(NEEDS_AIRFLOW_3_3) from exc
# Airflow < 3.3: no shared streams, no asset_state_store for watchers. Only the triggerer runs a shared
# stream (dropbox_box_provider/triggers/feeds): a DAG file checks that it exists, without loading it.
if importlib.util.find_spec("airflow.triggers.shared_stream") is None:
    raise EventTriggerUnavailable(NEEDS_AIRFLOW_3_3)

# Used when a watcher is created or runs, not while a DAG file is parsed (dropbox_box_provider/lazy.py).
if TYPE_CHECKING:
    from airflow.triggers.shared_stream import SharedStreamProducer

    from dropbox_box_provider.hooks import changes, matching
    from dropbox_box_provider.triggers.feeds.base import FeedProducer
else:
    changes = lazy_module("dropbox_box_provider.hooks.changes", globals())
    matching = lazy_module("dropbox_box_provider.hooks.matching", globals())

#: A raw shared-stream event that only carries the feed position (filters skip it).
POSITION_MARKER = "__position__"
DEFAULT_DEDUP_WINDOW = 10_000
RECONNECT_BASE, RECONNECT_MAX = 1.0, 60.0

# shared stream key -> {id(trigger): its asset_state_store}: the producer (built from kwargs alone) finds
# where to keep the position through this registry, filled when the triggerer starts each watcher.
ASSET_STORES: dict[Hashable, dict[int, Any]] = {}


class ChangeTrigger(BaseEventTrigger, abc.ABC):
    """Fires one TriggerEvent per matching change below ``folder`` (``pattern`` glob on the path relative
    to it, or on the name when not ``recursive``; ``kinds`` of change; folders only with ``include_folders``).

    kwargs hold no time: a first run starts at "now" (or replays what is there when ``replay``) and stores
    that position. Watchers of one connection share one long-poll. After a fault the feed reconnects with
    jittered exponential back-off capped at ``reconnect_max`` seconds. Each watcher drops repeats among the
    last ``dedup_window`` change identities (delivery is at least once).
    """

    service: ClassVar[str] = ""

    def __init__(
        self,
        *,
        conn_id: str,
        folder: str = "/",
        pattern: str | None = None,
        kinds: Sequence[str] = ("added", "modified"),
        recursive: bool = True,
        include_folders: bool = False,
        replay: bool = False,
        dedup_window: int = DEFAULT_DEDUP_WINDOW,
        reconnect_max: float = RECONNECT_MAX,
        **feed: Any,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        from dropbox_box_provider.errors import InvalidArgument

        unknown = sorted(set(kinds) - set(changes.CHANGE_KINDS))
        if unknown or not kinds:
            raise InvalidArgument(
                f"change kinds {unknown or list(kinds)} are not valid: use some of {changes.CHANGE_KINDS}"
            )
        self.conn_id = conn_id
        self.folder = "/" + str(folder).strip("/") if str(folder).strip("/") else "/"
        self.pattern = pattern or None
        self.kinds = [k for k in changes.CHANGE_KINDS if k in kinds]
        self.recursive = bool(recursive)
        self.include_folders = bool(include_folders)
        self.replay = bool(replay)
        self.dedup_window = int(dedup_window)
        self.reconnect_max = float(reconnect_max)
        self.feed = self.feed_options(feed)
        self._seen = changes.RecentIdentities(self.dedup_window)

    #: The kwargs that are feed settings (part of the stream key), validated by ``feed_options``.
    feed_option_names: ClassVar[tuple[str, ...]] = ()

    @classmethod
    @abc.abstractmethod
    def feed_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        """The service's feed settings (long-poll timeout...), validated."""

    @classmethod
    @abc.abstractmethod
    def producer_class(cls) -> type[FeedProducer]:
        """The service's feed reader (imported here: only the triggerer runs it)."""

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Class path and plain-JSON kwargs (no time, no token)."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "conn_id": self.conn_id,
                "folder": self.folder,
                "pattern": self.pattern,
                "kinds": list(self.kinds),
                "recursive": self.recursive,
                "include_folders": self.include_folders,
                "replay": self.replay,
                "dedup_window": self.dedup_window,
                "reconnect_max": self.reconnect_max,
                **self.feed,
            },
        )

    # ------------------------------------------------------------------ shared stream

    @classmethod
    def stream_key(cls, conn_id: str, replay: bool, feed: dict[str, Any]) -> Hashable:
        """One stream per service, connection, start rule and feed settings (never per folder or glob)."""
        return (f"dropbox_box_provider.{cls.service}", conn_id, bool(replay), *sorted(feed.items()))

    def shared_stream_key(self) -> Hashable | None:
        """This watcher's stream; registers its asset state store, where the producer keeps the position."""
        key = self.stream_key(self.conn_id, self.replay, self.feed)
        if self.asset_state_store is not None:
            ASSET_STORES.setdefault(key, {})[id(self)] = self.asset_state_store
        return key

    @classmethod
    def create_shared_stream_producer(cls, kwargs: dict[str, Any]) -> SharedStreamProducer:
        """The group's producer (ack mode): it opens the hook lazily in ``open_stream``."""
        feed = cls.feed_options({k: v for k, v in kwargs.items() if k in cls.feed_option_names})
        return cls.producer_class()(
            kwargs, cls.stream_key(kwargs["conn_id"], bool(kwargs.get("replay")), feed)
        )

    async def filter_shared_stream(self, shared_stream: AsyncIterator[Any]) -> AsyncIterator[TriggerEvent]:
        """This watcher's events from the shared feed."""
        async for raw in shared_stream:
            event = self.event_for(raw)
            if event is not None:
                yield event

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Standalone loop (outside a triggerer's shared streams): the same producer, advanced after each
        of its events was handed on."""
        from airflow.triggers.shared_stream import AdvanceItem, AdvanceOutcome

        key = self.shared_stream_key()
        producer = self.create_shared_stream_producer(self.serialize()[1])
        try:
            async for raw, position in producer.open_stream():
                event = self.event_for(raw)
                if event is not None:
                    yield event
                if position is not None:
                    await producer.advance([AdvanceItem(position, AdvanceOutcome(acked=1, failed=0))])
        finally:
            await producer.aclose()
            ASSET_STORES.get(key, {}).pop(id(self), None)

    async def cleanup(self) -> None:
        """Forget this watcher's store in the registry."""
        for stores in ASSET_STORES.values():
            stores.pop(id(self), None)

    # ------------------------------------------------------------------ filtering

    def event_for(self, raw: dict[str, Any]) -> TriggerEvent | None:
        """The TriggerEvent for one raw change, or None (marker, other folder, kind or name, a repeat)."""
        if POSITION_MARKER in raw:
            return None
        change = dict(raw)
        change["kind"] = self.refine_kind(change)
        if not self.matches(change):
            return None
        if not self._seen.first_time(change["identity"]):
            return None
        payload = {"service": self.service, "conn_id": self.conn_id, "folder": self.folder, **change}
        return TriggerEvent(payload)  # type: ignore[no-untyped-call]

    def refine_kind(self, change: dict[str, Any]) -> str:
        """The change's kind as this watcher reports it (services refine what their feed cannot say)."""
        return str(change["kind"])

    def matches(self, change: dict[str, Any]) -> bool:
        """True when ``change`` is below the folder, of a wanted kind, and its path matches the glob."""
        if change["kind"] not in self.kinds:
            return False
        entry = change.get("entry")
        if entry is not None and entry.get("kind") == "folder" and not self.include_folders:
            return False
        path = str(change["path"])
        base = self.folder.rstrip("/")
        if base and not path.lower().startswith(base.lower() + "/"):
            return False
        relative = matching.relative_path(self.folder, path)
        if not self.recursive and "/" in relative:
            return False
        if self.pattern is not None:
            target = relative if self.recursive else relative.rsplit("/", 1)[-1]
            if not matching.compile_glob(self.pattern).match(target):
                return False
        return True
