"""Checksums of downloads computed beside the network reads: a worker thread feeds the hash while the next
block is read (hashlib releases the GIL on large buffers), so verifying costs little wall time."""

from __future__ import annotations

import queue
import threading
from typing import Protocol

# Below this many bytes a thread's start costs more than the overlap saves: hash inline.
OVERLAP_THRESHOLD = 8 * 1024 * 1024
# Blocks waiting to be hashed (each at most a read block, 1 MiB): bounds the memory held.
QUEUE_DEPTH = 8


class Hash(Protocol):
    """What is fed: ``hashlib`` objects and ``DropboxContentHasher``."""

    def update(self, data: bytes) -> None: ...

    def hexdigest(self) -> str: ...


class OverlappedHash:
    """``update`` hands bytes to a worker thread (inline for an expected size below ``OVERLAP_THRESHOLD``);
    ``hexdigest`` waits for the backlog. The bytes given must not change afterwards (httpx chunks do not).
    Use as a context manager, so the worker ends even when the download fails."""

    def __init__(self, hasher: Hash, expected_size: int | None) -> None:
        self._hasher = hasher
        self._overlap = expected_size is None or expected_size >= OVERLAP_THRESHOLD
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=QUEUE_DEPTH)
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None

    def __enter__(self) -> OverlappedHash:
        return self

    def __exit__(self, *_: object) -> None:
        self._stop()

    def _work(self) -> None:
        while (data := self._queue.get()) is not None:
            if self._failure is None:
                try:
                    self._hasher.update(data)
                except BaseException as exc:  # re-raised by hexdigest, in the caller's thread
                    self._failure = exc

    def update(self, data: bytes) -> None:
        """Add the next bytes."""
        if not self._overlap:
            self._hasher.update(data)
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="download-hash", daemon=True)
            self._thread.start()
        self._queue.put(data)

    def _stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def restart(self, hasher: Hash) -> None:
        """Drop what was fed and start over with ``hasher`` (a download that began again from byte 0)."""
        self._stop()
        self._hasher, self._failure = hasher, None

    def hexdigest(self) -> str:
        """The digest of everything fed, once the worker has caught up."""
        self._stop()
        if self._failure is not None:
            raise self._failure
        return self._hasher.hexdigest()
