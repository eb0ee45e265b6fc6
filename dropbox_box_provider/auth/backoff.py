"""One transfer's shared back-off: when any of its concurrent requests is told to slow down (429 or 503 with
``Retry-After``, Dropbox's ``too_many_write_operations``), every request of that transfer waits until then.

A service rate-limits the connection, not one request: the other workers' requests sent meanwhile would only
be refused too and spend their retry attempts. ``transport.send``/``asend`` consult the gate of the current
context (``shared_backoff``) before each attempt and extend it after such an answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
import time
from collections.abc import Callable, Iterator


class BackoffGate:
    """A "not before" time shared by the workers of one transfer (thread-safe; async waits too)."""

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._until = 0.0
        self.holds = 0  # how many refusals extended or renewed the pause (for logs and tests)

    def hold(self, seconds: float) -> None:
        """Nobody sends before ``seconds`` from now (a later time already set is kept)."""
        with self._lock:
            self.holds += 1
            self._until = max(self._until, self._clock() + max(0.0, seconds))

    def remaining(self) -> float:
        """Seconds until requests may go out again (0 when open)."""
        with self._lock:
            return max(0.0, self._until - self._clock())

    def wait(self) -> None:
        """Block until the gate is open (it may be extended while waiting)."""
        while (left := self.remaining()) > 0:
            self._sleep(left)

    async def await_open(self) -> None:
        """Async ``wait``."""
        while (left := self.remaining()) > 0:
            await asyncio.sleep(left)


_current: contextvars.ContextVar[BackoffGate | None] = contextvars.ContextVar("backoff_gate", default=None)


def current_gate() -> BackoffGate | None:
    """The gate of the transfer this code runs in, if any."""
    return _current.get()


@contextlib.contextmanager
def shared_backoff(gate: BackoffGate) -> Iterator[BackoffGate]:
    """Within this block (this thread or task, and contexts copied from it) requests share ``gate``."""
    token = _current.set(gate)
    try:
        yield gate
    finally:
        _current.reset(token)
