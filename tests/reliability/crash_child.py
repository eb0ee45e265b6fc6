"""The child side of the crash trials: refresh a Box token and SIGKILL itself at a chosen point.

The kill points are injected without touching product code: TokenManager takes a ``flows`` object (its
TokenFlows protocol) and a store, so the child hands it wrappers that kill the process around (and during)
the real token request and around the real fenced store write, all while it holds the refresh lease.
Before dying the child appends what it obtained (token fingerprints) to a report file with
one unbuffered ``os.write``, which survives SIGKILL.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import threading
import time
from typing import Any

from dropbox_box_provider.auth import flows
from dropbox_box_provider.auth.config import AuthConfig
from dropbox_box_provider.auth.manager import TokenManager
from dropbox_box_provider.auth.tokens import TokenSet
from dropbox_box_provider.store import open_store
from dropbox_box_provider.store.base import TokenStore
from dropbox_box_provider.store.lease import LeaseSettings

CONN_ID = "box_crash"
KILL_POINTS = ("before_request", "mid_request", "after_response", "before_write", "after_commit")
# Kill points where Box may have rotated the token but the fenced write never ran: the only window where
# Box's rotation can bite. A mid-request kill belongs to it: the emulator (like Box) finishes the request
# after the client died, so its answer is lost in flight.
WINDOW_POINTS = frozenset({"mid_request", "after_response", "before_write"})
# The token endpoint is delayed this long in mid_request trials, so the kill lands while it is in flight.
MID_REQUEST_DELAY = 0.3
EXIT_NOT_KILLED = 3
EXIT_FAILED = 4


def digest(token: str | None) -> str | None:
    """A fingerprint of a token for the report (the token itself never leaves the child)."""
    return hashlib.sha256(token.encode()).hexdigest() if token else None


class Crash:
    """Where and how this child dies: the kill point, a jitter delay, a variant of the write point."""

    def __init__(self, point: str, jitter: float, report_path: str) -> None:
        self.point = point
        self.jitter = jitter
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
        if self.crash.point == "mid_request":
            threading.Thread(target=self.crash.die, args=("mid_request",), daemon=True).start()
        tokens = flows.refresh(config, refresh_token)
        self.crash.report(
            stage="response",
            access=digest(tokens.access_token),
            refresh=digest(tokens.refresh_token),
            at=time.time(),
        )
        self.crash.die("after_response")
        return tokens

    def exchange_code(
        self, config: AuthConfig, code: str, callback_url: str | None = None, code_verifier: str | None = None
    ) -> TokenSet:
        return flows.exchange_code(config, code, callback_url, code_verifier)

    def fetch_service_token(self, config: AuthConfig) -> TokenSet:
        return flows.fetch_service_token(config)


class CrashingStore:
    """The real store, whose fenced write (the lease holder's) is preceded or followed by a kill."""

    def __init__(self, inner: TokenStore, crash: Crash) -> None:
        self._inner = inner
        self._crash = crash
        self.url = inner.url

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def write(self, conn_id: str, service: str, payload: dict[str, Any], **kwargs: Any) -> Any:
        self._crash.die("before_write")
        written = self._inner.write(conn_id, service, payload, **kwargs)
        self._crash.report(stage="written", at=time.time())
        self._crash.die("after_commit")
        return written


def run(
    store_url: str,
    key: str,
    fields: dict[str, Any],
    point: str,
    jitter: float,
    report: str,
    lease_seconds: float,
) -> None:
    """Child entry point: one refresh that must be killed at ``point``; exit codes say if it was not."""
    crash = Crash(point, jitter, report)
    try:
        config = AuthConfig.from_mapping("box", fields, conn_id=CONN_ID)
        store = CrashingStore(open_store(store_url, key), crash)
        manager = TokenManager(
            store,  # type: ignore[arg-type]
            flows=CrashingFlows(crash),  # type: ignore[arg-type]
            lease=LeaseSettings(seconds=lease_seconds),
        )
        manager.get_valid_token(CONN_ID, config)
    except BaseException as exc:
        crash.report(stage="error", error=f"{type(exc).__name__}: {exc}")
        os._exit(EXIT_FAILED)
    os._exit(EXIT_NOT_KILLED)


def random_plan(rng: random.Random, point: str) -> float:
    """Timing jitter (0-20 ms before the kill; mid-request: 20-200 ms into the delayed request)."""
    if point == "mid_request":
        return rng.uniform(0.02, 0.2)
    return rng.choice([0.0, rng.uniform(0, 0.02)])
