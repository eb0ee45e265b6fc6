"""Checksums of transfers computed beside the network I/O: a worker thread hashes a block while the next one
is read from (or sent to) the socket -- hashlib and socket calls release the GIL on large buffers -- so
verifying costs little wall time."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any, Protocol

# Below this many bytes a thread's start costs more than the overlap saves: hash inline.
OVERLAP_THRESHOLD = 8 * 1024 * 1024
# Calls waiting for the worker (each holds at most one 1 MiB block): bounds the memory held.
QUEUE_DEPTH = 8


class Hash(Protocol):
    """What is fed: ``hashlib`` objects and ``DropboxContentHasher``."""

    def update(self, data: bytes) -> None: ...

    def hexdigest(self) -> str: ...


class SerialWorker:
    """Runs submitted calls in order on one worker thread (started on first use), or inline when
    ``overlap`` is false. The arguments must not change afterwards (bytes do not). A failure is raised by
    ``wait``; use as a context manager so the thread ends even when the transfer fails."""

    def __init__(self, overlap: bool) -> None:
        self.overlap = overlap
        self._queue: queue.Queue[tuple[Callable[..., Any], tuple[Any, ...]] | None] = queue.Queue(QUEUE_DEPTH)
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None

    def __enter__(self) -> SerialWorker:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _work(self) -> None:
        while (task := self._queue.get()) is not None:
            if self._failure is None:
                try:
                    task[0](*task[1])
                except BaseException as exc:  # re-raised by wait, in the caller's thread
                    self._failure = exc

    def submit(self, call: Callable[..., Any], *args: Any) -> None:
        """Run ``call(*args)`` after the calls submitted before it."""
        if not self.overlap:
            call(*args)
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="transfer-hash", daemon=True)
            self._thread.start()
        self._queue.put((call, args))

    def stop(self) -> None:
        """Let the worker finish what was submitted and end (a later ``submit`` starts a new one)."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def wait(self) -> None:
        """Block until every submitted call ran; raise the first failure."""
        self.stop()
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise failure


class OverlappedHash:
    """``update`` hands bytes to a worker thread (inline for an expected size below ``OVERLAP_THRESHOLD``);
    ``hexdigest`` waits for the backlog. ``hasher`` None (checksums not verified) takes the bytes and computes
    nothing. Use as a context manager, so the worker ends even on failure."""

    def __init__(self, hasher: Hash | None, expected_size: int | None) -> None:
        self._hasher = hasher
        self._worker = SerialWorker(expected_size is None or expected_size >= OVERLAP_THRESHOLD)

    def __enter__(self) -> OverlappedHash:
        return self

    def __exit__(self, *_: object) -> None:
        self._worker.stop()

    def update(self, data: bytes) -> None:
        """Add the next bytes."""
        if self._hasher is not None:
            self._worker.submit(self._hasher.update, data)

    def restart(self, hasher: Hash | None) -> None:
        """Drop what was fed and start over with ``hasher`` (a download that began again from byte 0)."""
        self._worker.stop()
        self._worker = SerialWorker(self._worker.overlap)
        self._hasher = hasher

    def hexdigest(self) -> str | None:
        """The digest of everything fed, once the worker has caught up; None without a hasher."""
        self._worker.wait()
        return self._hasher.hexdigest() if self._hasher is not None else None
