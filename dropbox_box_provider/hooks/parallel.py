"""Many files at once: ``map_bounded`` runs one call per item with at most ``limit`` in flight, all sharing
one back-off gate (a 429 seen by any worker pauses every worker: ``auth.backoff``)."""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import TypeVar

from dropbox_box_provider.auth.backoff import BackoffGate, current_gate, shared_backoff

T = TypeVar("T")
R = TypeVar("R")

DEFAULT_MAX_ACTIVE_TRANSFERS = 4


def map_bounded(func: Callable[[T], R], items: Sequence[T], limit: int) -> list[R]:
    """``[func(i) for i in items]`` with up to ``limit`` calls at once, results in ``items`` order.

    Each call runs in a copy of the caller's context (lineage and quick-answer switches hold in the
    workers) under one shared back-off gate (the caller's, else a new one). After the first failure no
    new call starts; the calls already running finish, then that failure is raised.
    """
    gate = current_gate() or BackoffGate()
    with shared_backoff(gate):
        if limit <= 1 or len(items) <= 1:
            return [func(item) for item in items]
        with ThreadPoolExecutor(max_workers=min(limit, len(items)), thread_name_prefix="transfer") as pool:
            futures: list[Future[R]] = []
            for item in items:
                futures.append(pool.submit(contextvars.copy_context().run, func, item))
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            failed = next((f for f in futures if f in done and f.exception() is not None), None)
            if failed is not None:
                for future in futures:
                    future.cancel()
                wait(futures)
                raise failed.exception()  # type: ignore[misc]
            return [future.result() for future in futures]
