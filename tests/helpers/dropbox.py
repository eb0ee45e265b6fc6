"""Helpers for Dropbox hook tests: connections as AIRFLOW_CONN_<ID> JSON seeded from the emulator, and a
loopback fault proxy that cuts a response mid-body or loses it after the emulator processed the request.
"""

from __future__ import annotations

import json
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from dropbox_box_provider.auth import transport
from dropbox_box_provider.auth.tokens import TokenSet
from dropbox_box_provider.emulator import seed
from dropbox_box_provider.testing import user_grant
from tests.fixtures.emulator import Emulator

# Quick retries so fault tests stay fast; Retry-After up to 2 s is honoured exactly.
FAST = transport.RetryPolicy(base_delay=0.05, max_delay=0.2, max_retry_after=2.0, total_budget=10.0)


def set_connection(monkeypatch: pytest.MonkeyPatch, conn_id: str, **body: Any) -> str:
    """Define Airflow connection ``conn_id`` by its ``AIRFLOW_CONN_<ID>`` JSON environment variable."""
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "dropbox", **body}))
    return conn_id


def store_location(tmp_path: Path) -> str:
    """A sqlite token-store URL of its own in the test's tmp dir."""
    return f"sqlite:///{tmp_path / f'tokens-{uuid.uuid4().hex[:8]}.db'}"


def dropbox_tokens(emulator: Emulator, client_id: str = seed.DEMO_DROPBOX_CLIENT_ID) -> TokenSet:
    """An offline Dropbox grant: the emulator's consent (no-redirect flow), then the real code exchange."""
    secret = {
        seed.DEMO_DROPBOX_CLIENT_ID: seed.DEMO_DROPBOX_CLIENT_SECRET,
        seed.DEMO_DROPBOX_TEAM_CLIENT_ID: seed.DEMO_DROPBOX_TEAM_CLIENT_SECRET,
    }[client_id]
    return user_grant(emulator.client, "dropbox", client_id, secret)


def dropbox_connection(
    monkeypatch: pytest.MonkeyPatch,
    emulator: Emulator,
    tmp_path: Path,
    conn_id: str = "dropbox_test",
    *,
    host: str | None = None,
    client_id: str = seed.DEMO_DROPBOX_CLIENT_ID,
    **extra: Any,
) -> TokenSet:
    """A Dropbox OAuth connection seeded with a fresh refresh token (own sqlite store); returns the tokens."""
    tokens = dropbox_tokens(emulator, client_id)
    secret = (
        seed.DEMO_DROPBOX_CLIENT_SECRET
        if client_id == seed.DEMO_DROPBOX_CLIENT_ID
        else seed.DEMO_DROPBOX_TEAM_CLIENT_SECRET
    )
    set_connection(
        monkeypatch,
        conn_id,
        host=host or emulator.url,
        login=client_id,
        password=secret,
        extra={
            "initiate_oauth": "REFRESH",
            "refresh_token": tokens.refresh_token,
            "oauth_settings_location": store_location(tmp_path),
            **extra,
        },
    )
    return tokens


# --------------------------------------------------------------------------- fault proxy


@dataclass
class ProxyRule:
    """What to do to the next ``count`` requests whose path contains ``path``."""

    path: str
    cut_after: int | None = None  # relay this many response body bytes, then abort the connection
    close_after: int | None = None  # relay this many response body bytes, then close cleanly (a short body)
    lose_response: bool = False  # forward the request, then close without answering
    corrupt_request: bool = False  # flip the first byte of the request body
    corrupt_response: bool = False  # flip the first byte of the response body
    count: int = 1


@dataclass
class FaultProxy:
    """One request per client connection (``Connection: close`` both ways), relayed to the emulator."""

    upstream: tuple[str, int]
    rules: list[ProxyRule] = field(default_factory=list)
    applied: list[str] = field(default_factory=list)
    #: (method, path, header lines) of every request relayed, in arrival order.
    seen: list[tuple[str, str, list[str]]] = field(default_factory=list)
    url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, rule: ProxyRule) -> None:
        with self._lock:
            self.rules.append(rule)

    def _take(self, path: str) -> ProxyRule | None:
        with self._lock:
            for rule in self.rules:
                if rule.path in path and rule.count > 0:
                    rule.count -= 1
                    self.applied.append(path)
                    return rule
        return None

    def handle(self, client: socket.socket) -> None:
        with client:
            head = _read_head(client)
            if head is None:
                return
            head, _, leftover = head.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            path = lines[0].split(" ")[1] if len(lines[0].split(" ")) > 1 else ""
            headers = [line for line in lines[1:] if line and not line.lower().startswith("connection:")]
            length = next(
                (int(h.split(":", 1)[1]) for h in headers if h.lower().startswith("content-length:")), 0
            )
            with self._lock:
                self.seen.append((lines[0].split(" ")[0], path, headers))
            rule = self._take(path)
            with socket.create_connection(self.upstream) as upstream:
                upstream.sendall(
                    ("\r\n".join([lines[0], *headers, "Connection: close"]) + "\r\n\r\n").encode()
                )
                remaining = length - len(leftover)
                flip = rule is not None and rule.corrupt_request
                while leftover or remaining > 0:
                    data = leftover or client.recv(min(1 << 20, remaining))
                    if not data:
                        return
                    if not leftover:
                        remaining -= len(data)
                    leftover = b""
                    if flip:
                        data, flip = bytes([data[0] ^ 0xFF]) + data[1:], False
                    upstream.sendall(data)
                if rule is not None and rule.lose_response:
                    _drain(upstream)
                    _abort(client)
                    return
                self._relay_response(upstream, client, rule)

    @staticmethod
    def _relay_response(upstream: socket.socket, client: socket.socket, rule: ProxyRule | None) -> None:
        response_head = _read_head(upstream)
        if response_head is None:
            return
        head, _, body = response_head.partition(b"\r\n\r\n")
        head_lines = [h for h in head.split(b"\r\n") if not h.lower().startswith(b"connection:")]
        client.sendall(b"\r\n".join([*head_lines, b"Connection: close"]) + b"\r\n\r\n")
        sent = 0
        flip = rule is not None and rule.corrupt_response
        limit = None if rule is None else rule.cut_after if rule.cut_after is not None else rule.close_after
        while True:
            if flip and body:
                body, flip = bytes([body[0] ^ 0xFF]) + body[1:], False
            if rule is not None and limit is not None:
                allowed = limit - sent
                if allowed <= 0:
                    if rule.cut_after is not None:
                        _abort(client)
                    return
                body = body[:allowed]
            if body:
                client.sendall(body)
                sent += len(body)
            body = upstream.recv(1 << 16)
            if not body:
                return


def _read_head(sock: socket.socket) -> bytes | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        data += chunk
    return data


def _drain(sock: socket.socket) -> None:
    while sock.recv(1 << 16):
        pass


def _abort(sock: socket.socket) -> None:
    """Reset the connection (RST) so the client sees a broken transfer, not a clean end."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    sock.close()


@contextmanager
def fault_proxy(emulator_url: str) -> Iterator[FaultProxy]:
    """A FaultProxy on a free 127.0.0.1 port in front of the emulator; stopped on exit."""
    host, port = emulator_url.removeprefix("http://").split(":")
    proxy = FaultProxy(upstream=(host, int(port.rstrip("/"))))
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(32)
    listener.settimeout(0.2)
    proxy.url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=_guarded, args=(proxy, client), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        stop.set()
        listener.close()
        thread.join(timeout=5)


def _guarded(proxy: FaultProxy, client: socket.socket) -> None:
    with suppress(OSError):
        proxy.handle(client)
