"""What the Dropbox and Box change triggers share: one long-poll per account (Airflow's shared stream in ack
mode), the feed position kept in the watched assets' ``asset_state_store`` and moved only in ``advance()``,
per-watcher filtering (folder, glob, change kinds) and de-duplication by change identity.

Delivery is at least once: after a restart the feed is read again from the last stored position, so a
change may come twice; each watcher drops repeats of the last ``dedup_window`` identities it saw.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import random
from collections.abc import AsyncIterator, Hashable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from dropbox_box_provider.errors import EventTriggerUnavailable

try:
    from airflow.triggers.base import BaseEventTrigger, TriggerEvent
    from airflow.triggers.shared_stream import AdvanceItem, AdvanceOutcome, SharedStreamProducer
except ImportError as exc:  # Airflow < 3.3: no shared streams, no asset_state_store for watchers
    raise EventTriggerUnavailable(
        "the Dropbox and Box change triggers need Airflow 3.3 or later (shared streams and the asset state "
        "store for watchers); upgrade Airflow, or keep using RemoteFileTrigger and the file sensors"
    ) from exc

from dropbox_box_provider.hooks.changes import CHANGE_KINDS, RecentIdentities
from dropbox_box_provider.hooks.matching import compile_glob, relative_path

if TYPE_CHECKING:
    from dropbox_box_provider.triggers.files import FileHook

log = logging.getLogger(__name__)

#: A raw shared-stream event that only carries the feed position (filters skip it).
POSITION_MARKER = "__position__"
DEFAULT_DEDUP_WINDOW = 10_000
RECONNECT_BASE, RECONNECT_MAX = 1.0, 60.0

# shared stream key -> {id(trigger): its asset_state_store}: the producer (built from kwargs alone) finds
# where to keep the position through this registry, filled when the triggerer starts each watcher.
_STORES: dict[Hashable, dict[int, Any]] = {}


def _accessors(store: Any) -> list[Any]:
    """The per-asset accessors of an ``AssetStateStoreAccessors`` (one per watched asset)."""
    found = [*getattr(store, "_by_name", {}).values(), *getattr(store, "_by_uri", {}).values()]
    return found or [store]


class PositionStore:
    """The feed position of one shared stream, kept in every watched asset's state store."""

    def __init__(self, key: Hashable, name: str) -> None:
        self.key = key
        self.name = name
        self._memory: str | None = None

    def _stores(self) -> list[Any]:
        return [a for store in _STORES.get(self.key, {}).values() for a in _accessors(store)]

    async def load(self) -> str | None:
        """The stored position (None on the first run)."""
        for accessor in self._stores():
            value = await accessor.aget(self.name)
            if isinstance(value, dict) and value.get("position"):
                return str(value["position"])
        return self._memory

    async def save(self, position: str) -> None:
        """Persist ``position`` in every watched asset's store (memory only when there is none)."""
        self._memory = position
        value = {"position": position, "saved_at": datetime.now(UTC).isoformat()}
        for accessor in self._stores():
            await accessor.aset(self.name, value)


class Reconnect:
    """Jittered exponential back-off between attempts after faults (reset after a good answer)."""

    def __init__(self, base: float = RECONNECT_BASE, ceiling: float = RECONNECT_MAX) -> None:
        self.base, self.ceiling, self.failures = base, ceiling, 0

    def reset(self) -> None:
        self.failures = 0

    def next_delay(self) -> float:
        self.failures += 1
        ceiling = min(self.ceiling, self.base * 2 ** min(self.failures - 1, 16))
        return random.uniform(0, ceiling)  # noqa: S311 - jitter, not security


class FeedProducer(SharedStreamProducer, abc.ABC):
    """Reads one account's feed for every watcher in the group: each change as a raw event, then a
    position marker whose ``advance`` stores the position."""

    service: ClassVar[str] = ""

    def __init__(self, kwargs: dict[str, Any], key: Hashable) -> None:
        self.kwargs = kwargs
        self.conn_id: str = kwargs["conn_id"]
        self.replay: bool = bool(kwargs.get("replay", False))
        self.positions = PositionStore(key, self.state_key())
        self.hook: FileHook | None = None
        ceiling = float(kwargs.get("reconnect_max", RECONNECT_MAX))
        self.reconnect = Reconnect(min(RECONNECT_BASE, ceiling), ceiling)

    @abc.abstractmethod
    def state_key(self) -> str:
        """The asset-state key holding this feed's position."""

    @abc.abstractmethod
    async def start_position(self, hook: FileHook) -> tuple[str, list[dict[str, Any]]]:
        """Where a first run starts ("now", or the beginning when replaying) and any changes read there."""

    @abc.abstractmethod
    async def read(self, hook: FileHook, position: str) -> tuple[list[dict[str, Any]], str, bool]:
        """(changes as dicts, position after them, more ready at once)."""

    @abc.abstractmethod
    async def wait(self, hook: FileHook, position: str) -> bool:
        """Long-poll until the feed may have news after ``position`` (True) or the service's timeout."""

    @abc.abstractmethod
    async def restart_position(self, hook: FileHook) -> str:
        """A new position after the service forgot ours (Dropbox ``reset``)."""

    async def open_stream(self) -> AsyncIterator[tuple[Any, Any]]:
        """Changes and position markers, forever; faults are retried with jittered back-off."""
        from dropbox_box_provider.errors import CursorReset, DropboxBoxError
        from dropbox_box_provider.triggers.files import prepared_hook

        position: str | None = None
        read_next = True
        while True:
            try:
                if self.hook is None:
                    self.hook = await prepared_hook(self.service, self.conn_id)  # type: ignore[arg-type]
                hook = self.hook
                if position is None:
                    position = await self.positions.load()
                    if position is None:
                        position, replayed = await self.start_position(hook)
                        for change in replayed:
                            yield change, None
                        if replayed:  # stored once the replayed changes are persisted
                            yield {POSITION_MARKER: position}, position
                        else:
                            await self.positions.save(position)  # "now" is resolved once, then kept
                if read_next:
                    changes, position, more = await self.read(hook, position)
                    for change in changes:
                        yield change, None
                    yield {POSITION_MARKER: position}, position
                    self.reconnect.reset()
                    if more:
                        continue
                read_next = await self.wait(hook, position)
                self.reconnect.reset()
            except CursorReset as exc:
                log.warning("%s; continuing from a new cursor", exc)
                assert self.hook is not None
                position = await self.restart_position(self.hook)
                await self.positions.save(position)
                read_next = True
            except (DropboxBoxError, OSError) as exc:
                delay = self.reconnect.next_delay()
                log.warning("change feed of %r failed (%s); reconnecting in %.1f s", self.conn_id, exc, delay)
                await asyncio.sleep(delay)
                read_next = True

    async def advance(self, batch: Sequence[AdvanceItem]) -> None:
        """Store the last position of a fully resolved batch; a failed event stops the group so the feed
        is read again from the stored position (at least once)."""
        latest: str | None = None
        for item in batch:
            if item.outcome.failed:
                raise RuntimeError(
                    f"a change of connection {self.conn_id!r} was not persisted; re-reading the feed from "
                    "the last stored position"
                )
            if item.broker_payload is not None and (item.outcome.acked or item.outcome.rejected):
                latest = str(item.broker_payload)
        if latest is not None:
            await self.positions.save(latest)

    async def aclose(self) -> None:
        if self.hook is not None:
            await self.hook.aclose()


class ChangeTrigger(BaseEventTrigger, abc.ABC):
    """Fires one TriggerEvent per matching change below ``folder`` (``pattern`` glob on the path relative
    to it, or on the name when not ``recursive``; ``kinds`` of change; folders only with ``include_folders``).

    kwargs hold no time: a first run starts at "now" (or replays what is there when ``replay``) and stores
    that position. Watchers of one connection share one long-poll. After a fault the feed reconnects with
    jittered exponential back-off capped at ``reconnect_max`` seconds. Each watcher drops repeats among the
    last ``dedup_window`` change identities (delivery is at least once).
    """

    service: ClassVar[str] = ""
    producer_class: ClassVar[type[FeedProducer]]

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

        unknown = sorted(set(kinds) - set(CHANGE_KINDS))
        if unknown or not kinds:
            raise InvalidArgument(
                f"change kinds {unknown or list(kinds)} are not valid: use some of {CHANGE_KINDS}"
            )
        self.conn_id = conn_id
        self.folder = "/" + str(folder).strip("/") if str(folder).strip("/") else "/"
        self.pattern = pattern or None
        self.kinds = [k for k in CHANGE_KINDS if k in kinds]
        self.recursive = bool(recursive)
        self.include_folders = bool(include_folders)
        self.replay = bool(replay)
        self.dedup_window = int(dedup_window)
        self.reconnect_max = float(reconnect_max)
        self.feed = self.feed_options(feed)
        self._seen = RecentIdentities(self.dedup_window)

    #: The kwargs that are feed settings (part of the stream key), validated by ``feed_options``.
    feed_option_names: ClassVar[tuple[str, ...]] = ()

    @classmethod
    @abc.abstractmethod
    def feed_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        """The service's feed settings (long-poll timeout...), validated."""

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
            _STORES.setdefault(key, {})[id(self)] = self.asset_state_store
        return key

    @classmethod
    def create_shared_stream_producer(cls, kwargs: dict[str, Any]) -> SharedStreamProducer:
        """The group's producer (ack mode): it opens the hook lazily in ``open_stream``."""
        feed = cls.feed_options({k: v for k, v in kwargs.items() if k in cls.feed_option_names})
        return cls.producer_class(kwargs, cls.stream_key(kwargs["conn_id"], bool(kwargs.get("replay")), feed))

    async def filter_shared_stream(self, shared_stream: AsyncIterator[Any]) -> AsyncIterator[TriggerEvent]:
        """This watcher's events from the shared feed."""
        async for raw in shared_stream:
            event = self.event_for(raw)
            if event is not None:
                yield event

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Standalone loop (outside a triggerer's shared streams): the same producer, advanced after each
        of its events was handed on."""
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
            _STORES.get(key, {}).pop(id(self), None)

    async def cleanup(self) -> None:
        """Forget this watcher's store in the registry."""
        for stores in _STORES.values():
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
        relative = relative_path(self.folder, path)
        if not self.recursive and "/" in relative:
            return False
        if self.pattern is not None:
            target = relative if self.recursive else relative.rsplit("/", 1)[-1]
            if not compile_glob(self.pattern).match(target):
                return False
        return True
