"""The child side of the crash trials: refresh a Box token and SIGKILL itself at a chosen point.

The kill points are injected without touching product code: TokenManager takes a ``flows`` object (its
TokenFlows protocol) and a store, so the child hands it wrappers that kill the process around the real
token request and around the real store write. Before dying the child appends what it obtained (token
fingerprints) to a report file with one unbuffered ``os.write``, which survives SIGKILL.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import signal
import time
from collections.abc import Iterator
from typing import Any

from dropbox_box_provider.auth import flows
from dropbox_box_provider.auth.config import AuthConfig
from dropbox_box_provider.auth.manager import TokenManager
from dropbox_box_provider.auth.tokens import TokenSet
from dropbox_box_provider.store import open_store
from dropbox_box_provider.store.base import LockedRecord, TokenStore

CONN_ID = "box_crash"
KILL_POINTS = ("before_request", "after_response", "during_write", "after_commit")
# Kill points between the token response and the commit: the only window where Box's rotation can bite.
WINDOW_POINTS = frozenset({"after_response", "during_write"})
EXIT_NOT_KILLED = 3
EXIT_FAILED = 4


def digest(token: str | None) -> str | None:
    """A fingerprint of a token for the report (the token itself never leaves the child)."""
    return hashlib.sha256(token.encode()).hexdigest() if token else None


class Crash:
    """Where and how this child dies: the kill point, a jitter delay, a variant of the write point."""

    def __init__(self, point: str, jitter: float, before_update: bool, report_path: str) -> None:
        self.point = point
        self.jitter = jitter
        self.before_update = before_update
        self.report_path = report_path

    def report(self, **data: Any) -> None:
        fd = os.open(self.report_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, (json.dumps(data) + "\n").encode())
        finally:
            os.close(fd)

    def die(self, where: str) -> None:
        if where != self.point:
            return
        if self.jitter:
            time.sleep(self.jitter)
        os.kill(os.getpid(), signal.SIGKILL)


class CrashingFlows:
    """flows.refresh with kill points before the request and after the response."""

    def __init__(self, crash: Crash) -> None:
        self.crash = crash

    def refresh(self, config: AuthConfig, refresh_token: str) -> TokenSet:
        self.crash.report(stage="refresh_started", used=digest(refresh_token))
        self.crash.die("before_request")
        tokens = flows.refresh(config, refresh_token)
        self.crash.report(
            stage="response", access=digest(tokens.access_token), refresh=digest(tokens.refresh_token)
        )
        self.crash.die("after_response")
        return tokens

    def exchange_code(
        self, config: AuthConfig, code: str, callback_url: str | None = None, code_verifier: str | None = None
    ) -> TokenSet:
        return flows.exchange_code(config, code, callback_url, code_verifier)

    def fetch_service_token(self, config: AuthConfig) -> TokenSet:
        return flows.fetch_service_token(config)


class _CrashingLocked:
    def __init__(self, inner: LockedRecord, crash: Crash) -> None:
        self._inner = inner
        self._crash = crash

    @property
    def record(self) -> Any:
        return self._inner.record

    def write(self, service: str, payload: dict[str, Any], **kwargs: Any) -> Any:
        if self._crash.before_update:
            self._crash.die("during_write")
        written = self._inner.write(service, payload, **kwargs)
        self._crash.die("during_write")  # the row is updated inside the open transaction, not committed
        return written


class CrashingStore:
    """The real store, whose locked record dies in the middle of the write or right after the commit."""

    def __init__(self, inner: TokenStore, crash: Crash) -> None:
        self._inner = inner
        self._crash = crash
        self.url = inner.url

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    @contextlib.contextmanager
    def locked(self, conn_id: str) -> Iterator[_CrashingLocked]:
        with self._inner.locked(conn_id) as locked:
            yield _CrashingLocked(locked, self._crash)
        self._crash.die("after_commit")


def run(
    store_url: str,
    key: str,
    fields: dict[str, Any],
    point: str,
    jitter: float,
    before_update: bool,
    report: str,
) -> None:
    """Child entry point: one refresh that must be killed at ``point``; exit codes say if it was not."""
    crash = Crash(point, jitter, before_update, report)
    try:
        config = AuthConfig.from_mapping("box", fields, conn_id=CONN_ID)
        store = CrashingStore(open_store(store_url, key), crash)
        manager = TokenManager(store, flows=CrashingFlows(crash))  # type: ignore[arg-type]
        manager.get_valid_token(CONN_ID, config)
    except BaseException as exc:
        crash.report(stage="error", error=f"{type(exc).__name__}: {exc}")
        os._exit(EXIT_FAILED)
    os._exit(EXIT_NOT_KILLED)


def random_plan(rng: random.Random, point: str) -> tuple[float, bool]:
    """Timing jitter (0-20 ms before the kill) and, for the write point, before or after the UPDATE."""
    return rng.choice([0.0, rng.uniform(0, 0.02)]), rng.random() < 0.5
