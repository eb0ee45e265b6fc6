"""Holding a connection's refresh lease: claim (or wait for the holder), keep it alive, write fenced by it.

A lease is a row in the token store (owner id and ``lease_until``) set by one short transaction. Nothing stays
open while the token request runs: the holder renews its lease every third of the lease time from a
background thread, so a live holder never loses it and a dead holder's lease lapses within one lease time.
The new tokens are written by a compare-and-swap fenced by the lease, retried on fresh connections for a
bounded time when the database blips; a holder that finds its lease taken never writes.
"""

from __future__ import annotations

import logging
import os
import random
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from dropbox_box_provider.errors import LeaseLost, StoreConflict, TokenStoreError

if TYPE_CHECKING:
    from dropbox_box_provider.store.base import LeaseState, TokenRecord, TokenStore

log = logging.getLogger(__name__)

_T = TypeVar("_T")

DEFAULT_LEASE_SECONDS = 10.0
# Token requests end within this (transport timeouts and retry budget); the lease is renewed until then.
TOKEN_REQUEST_DEADLINE = 60.0
DEFAULT_WRITE_RETRY_SECONDS = 30.0
WAIT_LOG_AFTER_SECONDS = 1.0


@dataclass(frozen=True)
class LeaseSettings:
    """Timing of refresh leases. ``seconds`` is the lease time (renewed every third of it)."""

    seconds: float = DEFAULT_LEASE_SECONDS
    request_deadline: float = TOKEN_REQUEST_DEADLINE
    write_retry_seconds: float = DEFAULT_WRITE_RETRY_SECONDS
    poll_min: float = 0.02
    poll_max: float = 0.25

    @property
    def max_wait(self) -> float:
        """How long a waiter waits for a live holder before giving up: the holder's whole worst case."""
        return self.request_deadline + self.write_retry_seconds + 2 * self.seconds


def new_owner_id() -> str:
    """A lease owner id naming the machine and process (shown to waiters) plus a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class Lease:
    """One claim of ``conn_id``'s refresh lease, used as a context manager (the exit releases it).

    ``acquire`` returns None once this process holds the lease, or the value of ``ready()`` when another
    holder's refresh landed first and ``ready`` found it usable (then no lease is taken).
    """

    def __init__(
        self,
        store: TokenStore,
        conn_id: str,
        *,
        service: str,
        settings: LeaseSettings | None = None,
    ) -> None:
        self._store = store
        self._conn_id = conn_id
        self._service = service
        self._settings = settings or LeaseSettings()
        self.owner = new_owner_id()
        self.version: int | None = None
        self._held = False
        self._lost = threading.Event()
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"Lease({self._conn_id!r}, owner={self.owner!r}, held={self._held})"

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()

    @property
    def held(self) -> bool:
        """True while this process holds the lease and has not seen it taken."""
        return self._held and not self._lost.is_set()

    # -- claiming ----------------------------------------------------------------------------------

    def acquire(
        self, ready: Callable[[], _T | None] | None = None, *, known_version: int | None = None
    ) -> _T | None:
        """Claim the lease, or wait (read-only polling with jitter) while another live holder has it.

        ``known_version`` is the record version the caller's decision to refresh was based on. Whenever the
        store shows another version -- on a failed claim, while waiting, or on a claim that succeeds after
        someone else's refresh landed -- ``ready()`` is asked whether the new tokens serve; its non-None
        answer is returned at once (no lease kept). Raises TokenStoreError after ``max_wait`` seconds.
        """
        settings = self._settings
        started = time.monotonic()
        logged = False
        delay = settings.poll_min
        while True:
            state = self._store.claim_lease(
                self._conn_id, self.owner, settings.seconds, service=self._service
            )
            moved = ready is not None and state.version != known_version
            if state.acquired:
                self._held = True
                self.version = state.version
                if moved and ready is not None and (result := ready()) is not None:
                    self.release()
                    return result
                self._start_renewer()
                return None
            while True:  # another live holder: watch the record until it lands or the lease lapses
                if moved and ready is not None:
                    result = ready()
                    if result is not None:
                        return result
                    known_version = state.version
                waited = time.monotonic() - started
                if not logged and waited >= WAIT_LOG_AFTER_SECONDS:
                    log.info("waiting for %s to finish refreshing %s", state.holder, self._conn_id)
                    logged = True
                if waited >= settings.max_wait:
                    raise TokenStoreError(
                        f"waited {waited:.0f} s for {state.holder} to finish refreshing {self._conn_id!r} in "
                        f"token store {self._store.url}; its lease is still being renewed. What to do: check "
                        "that worker (a hung token request?) and retry; its lease lapses within "
                        f"{settings.seconds:g} s of it stopping"
                    )
                self._sleep_while_held(state, delay)
                delay = min(settings.poll_max, delay * 1.5)
                state = self._store.lease_state(self._conn_id)
                moved = ready is not None and state.version != known_version
                if state.holder is None and not moved:
                    break  # free or lapsed: claim it

    def _sleep_while_held(self, state: LeaseState, delay: float) -> None:
        """Sleep a jittered ``delay``, but not much past the moment the holder's lease would lapse."""
        pause = delay * (0.5 + random.random())  # noqa: S311 - jitter, not security
        if state.remaining is not None and state.remaining >= 0:
            pause = min(pause, state.remaining + 0.01)
        time.sleep(max(pause, 0.001))

    def record(self) -> TokenRecord | None:
        """The record as it stands now (read after the claim: nobody else refreshes it meanwhile)."""
        return self._store.read(self._conn_id)

    # -- keeping it ----------------------------------------------------------------------------------

    def _start_renewer(self) -> None:
        self._stop.clear()
        thread = threading.Thread(target=self._renew_loop, name=f"lease-{self._conn_id}", daemon=True)
        self._renewer = thread
        thread.start()

    def _renew_loop(self) -> None:
        settings = self._settings
        hard_stop = time.monotonic() + settings.request_deadline + settings.write_retry_seconds
        while not self._stop.wait(settings.seconds / 3):
            if time.monotonic() > hard_stop:
                log.warning("refresh of %s outlived its deadline; letting its lease lapse", self._conn_id)
                return
            try:
                if not self._store.renew_lease(self._conn_id, self.owner, settings.seconds):
                    self._lost.set()
                    return
            except TokenStoreError as exc:
                log.warning("could not renew the refresh lease of %s (will retry): %s", self._conn_id, exc)

    def _stop_renewer(self) -> None:
        self._stop.set()
        renewer, self._renewer = self._renewer, None
        if renewer is not None and renewer is not threading.current_thread():
            renewer.join()

    # -- writing and letting go ---------------------------------------------------------------------

    def write(
        self,
        payload: dict[str, Any],
        *,
        expires_at: float | None,
        refresh_issued_at: float | None,
        seed_fingerprint: str | None,
        force: bool = False,
    ) -> TokenRecord:
        """Compare-and-swap ``payload`` fenced by this lease, releasing it; retried on database errors.

        Never writes once the lease is known lost. After an error whose commit may have happened, the
        record is re-read: a record already holding this payload's access token means the write landed.
        """
        deadline = time.monotonic() + self._settings.write_retry_seconds
        delay = 0.1
        while True:
            if self._lost.is_set():
                raise self._lost_error()
            try:
                written = self._store.write(
                    self._conn_id,
                    self._service,
                    payload,
                    expected_version=self.version,
                    expires_at=expires_at,
                    refresh_issued_at=refresh_issued_at,
                    seed_fingerprint=seed_fingerprint,
                    force=force,
                    lease_owner=self.owner,
                )
            except (StoreConflict, LeaseLost):
                raise
            except TokenStoreError as exc:
                if time.monotonic() + delay >= deadline:
                    raise
                log.warning("could not save new tokens of %s, retrying: %s", self._conn_id, exc)
                time.sleep(delay * (0.5 + random.random()))  # noqa: S311 - jitter
                delay = min(2.0, delay * 2)
                landed = self._landed(payload)
                if landed is not None:
                    self._finish()
                    return landed
                continue
            self._finish()
            return written

    def _landed(self, payload: dict[str, Any]) -> TokenRecord | None:
        try:
            current = self._store.read(self._conn_id)
        except TokenStoreError:
            return None
        token = payload.get("access_token")
        if current is not None and token and current.payload.get("access_token") == token:
            return current
        return None

    def _lost_error(self) -> LeaseLost:
        return LeaseLost(
            f"the refresh lease of {self._conn_id!r} in token store {self._store.url} was taken by another "
            f"worker while this one ({self.owner}) refreshed: the database could not be reached for longer "
            f"than the lease time ({self._settings.seconds:g} s). Nothing was written by this worker"
        )

    def _finish(self) -> None:
        """The fenced write released the lease in its own transaction."""
        self._stop_renewer()
        self._held = False

    def release(self) -> None:
        """Give the lease back (best effort: if the database is unreachable it lapses by itself)."""
        self._stop_renewer()
        if not self._held:
            return
        self._held = False
        try:
            self._store.release_lease(self._conn_id, self.owner)
        except TokenStoreError as exc:
            log.warning(
                "could not release the refresh lease of %s (it lapses by itself): %s", self._conn_id, exc
            )
