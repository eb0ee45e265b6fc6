"""What the Dropbox and Box feed producers share: one long-poll per account in Airflow's shared-stream ack
mode, the feed position kept in the watched assets' ``asset_state_store`` and moved only in ``advance()``,
jittered reconnects after faults."""

from __future__ import annotations

import abc
import asyncio
import logging
import random
from collections.abc import AsyncIterator, Hashable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.triggers.shared_stream import AdvanceItem, SharedStreamProducer

from dropbox_box_provider.triggers._feed import ASSET_STORES, POSITION_MARKER, RECONNECT_BASE, RECONNECT_MAX

if TYPE_CHECKING:
    from dropbox_box_provider.triggers.files import FileHook

log = logging.getLogger(__name__)


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
        return [a for store in ASSET_STORES.get(self.key, {}).values() for a in _accessors(store)]

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
        forgotten = False  # the service forgot our position: take a new one (its faults are retried too)
        while True:
            try:
                if self.hook is None:
                    self.hook = await prepared_hook(self.service, self.conn_id)  # type: ignore[arg-type]
                hook = self.hook
                if forgotten:
                    position = await self.restart_position(hook)
                    await self.positions.save(position)
                    forgotten, read_next = False, True
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
                forgotten = True
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
