"""BoxHook big transfers against the emulator: chunked upload sessions (200 MiB), versions, commit 202,
flat memory, and downloads whose body breaks off mid-stream (a loopback proxy cuts the connection)."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import socket
import threading
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from dropbox_box_provider.auth import transport
from dropbox_box_provider.errors import TransportError
from dropbox_box_provider.hooks.box import CHUNKED_THRESHOLD, BoxHook
from dropbox_box_provider.testing import EmulatedServices
from tests.fixtures.emulator import Emulator, RunningEmulator
from tests.helpers.box import box_oauth_connection

FAST = transport.RetryPolicy(base_delay=0.05, max_delay=0.2, max_retry_after=2.0, total_budget=10.0)
MIB = 1024 * 1024
PART_SIZE = 8 * MIB  # the emulator's part_size, as Box's for files of this size


@pytest.fixture(autouse=True)
def fernet_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__CORE__FERNET_KEY", Fernet.generate_key().decode())


@pytest.fixture
def hook(
    monkeypatch: pytest.MonkeyPatch, emulated_services: EmulatedServices, tmp_path: Path
) -> Iterator[BoxHook]:
    box_oauth_connection(monkeypatch, emulated_services, tmp_path, "box_transfers")
    hook = BoxHook("box_transfers", retry_policy=FAST)
    yield hook
    hook.close()


@pytest.fixture
def process_hook(
    monkeypatch: pytest.MonkeyPatch, fresh_emulator: RunningEmulator, tmp_path: Path
) -> Iterator[BoxHook]:
    """A hook on the emulator subprocess: memory tests trace this process only, never the server's bytes."""
    box_oauth_connection(monkeypatch, fresh_emulator, tmp_path, "box_transfers")
    hook = BoxHook("box_transfers", retry_policy=FAST)
    yield hook
    hook.close()


def write_random(path: Path, size: int) -> str:
    """A file of ``size`` random bytes written 1 MiB at a time; returns its SHA-1."""
    digest = hashlib.sha1(usedforsecurity=False)
    with path.open("wb") as handle:
        left = size
        while left:
            block = os.urandom(min(MIB, left))
            digest.update(block)
            handle.write(block)
            left -= len(block)
    return digest.hexdigest()


def file_sha1(path: Path) -> str:
    digest = hashlib.sha1(usedforsecurity=False)
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(MIB), b""):
            digest.update(block)
    return digest.hexdigest()


def session_part_puts(emu: Emulator) -> int:
    routes = emu.client.stats()["box"]["routes"]
    return sum(
        counts.get("200", 0)
        for route, counts in routes.items()
        if route.startswith("/2.0/files/upload_sessions/") and route.count("/") == 4
    )


def test_200_mib_upload_by_chunked_session_then_download(
    process_hook: BoxHook, fresh_emulator: RunningEmulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """13 parts of 16 MiB (the part_size Box's session gives 200 MiB) with per-part digests, SHA-1 checked
    both ways, memory flat."""
    hook = process_hook
    size = 200 * MIB
    local = tmp_path / "big.bin"
    expected = write_random(local, size)
    caplog.set_level(logging.INFO)
    tracemalloc.start()
    try:
        entry = hook.upload_file(local, "/big/big.bin")
        _, upload_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        target = tmp_path / "back" / "big.bin"
        hook.download_file(entry["id"], target)
        _, download_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert entry["sha1"] == expected and entry["size"] == size
    assert session_part_puts(fresh_emulator) == 13
    assert file_sha1(target) == expected
    assert upload_peak < 16 * MIB, f"upload peaked at {upload_peak / MIB:.0f} MiB"
    assert download_peak < 16 * MIB, f"download peaked at {download_peak / MIB:.0f} MiB"
    progress = [r.getMessage() for r in caplog.records if "Box upload of 'big.bin'" in r.getMessage()]
    assert progress and "done in" in progress[-1] and "200.0 MiB of 200.0 MiB (100%)" in progress[-1]
    assert any("Box download of 'big.bin'" in r.getMessage() for r in caplog.records)


def test_chunked_new_version_and_commit_202(
    hook: BoxHook, emulated_services: EmulatedServices, tmp_path: Path
) -> None:
    """At 20 MB a new version goes through files/{id}/upload_sessions; a 202 commit is waited out."""
    small = tmp_path / "v1.bin"
    write_random(small, CHUNKED_THRESHOLD - 1)  # multipart, just below the threshold
    first = hook.upload_file(small, "/ver/data.bin")
    assert session_part_puts(emulated_services) == 0
    big = tmp_path / "v2.bin"
    expected = write_random(big, CHUNKED_THRESHOLD)
    emulated_services.client.configure(box_commit_pending=1)
    second = hook.upload_file(big, "/ver/data.bin", overwrite=True)
    assert second["id"] == first["id"] and second["sha1"] == expected
    assert session_part_puts(emulated_services) == 3  # 8 + 8 + 3.07 MiB
    commits = emulated_services.client.stats()["box"]["routes"]
    assert sum(c.get("202", 0) for r, c in commits.items() if r.endswith("/commit")) == 1
    assert hook.get_file_info("/ver/data.bin")["size"] == CHUNKED_THRESHOLD


class CuttingProxy:
    """A loopback TCP proxy to the emulator that cuts the first ``cuts`` download responses after
    ``cut_after`` bytes (the body breaks off mid-stream, as a dropped connection does)."""

    def __init__(self, upstream: str, cut_after: int, cuts: int) -> None:
        host, port = upstream.removeprefix("http://").split(":")
        self.upstream = (host, int(port))
        self.cut_after = cut_after
        self.cuts_left = cuts
        self.cut = 0
        self.lock = threading.Lock()
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        self.sockets: list[socket.socket] = [self.server]
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.upstream)
            self.sockets += [client, upstream]
            download = threading.Event()
            threading.Thread(target=self._pump, args=(client, upstream, download, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, download, True), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, download: threading.Event, replies: bool) -> None:
        sent = 0
        cutting = False
        try:
            while data := src.recv(65536):
                if not replies and b" /dl.boxcloud.com/" in data:
                    download.set()
                if replies and download.is_set() and not cutting:
                    with self.lock:
                        cutting = self.cuts_left > 0
                        if cutting:
                            self.cuts_left -= 1
                            self.cut += 1
                if cutting:
                    room = self.cut_after - sent
                    if len(data) >= room:
                        dst.sendall(data[:room])
                        break
                dst.sendall(data)
                sent += len(data)
        except OSError:
            pass
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def proxied(
    monkeypatch: pytest.MonkeyPatch, emulated_services: EmulatedServices, tmp_path: Path
) -> Iterator[tuple[BoxHook, CuttingProxy]]:
    proxy = CuttingProxy(emulated_services.url, cut_after=3 * MIB, cuts=1)
    box_oauth_connection(monkeypatch, emulated_services, tmp_path, "box_proxied")
    monkeypatch.setenv(
        "AIRFLOW_CONN_BOX_PROXIED",
        os.environ["AIRFLOW_CONN_BOX_PROXIED"].replace(emulated_services.url, proxy.url),
    )
    hook = BoxHook("box_proxied", retry_policy=FAST)
    yield hook, proxy
    hook.close()
    proxy.close()


def test_download_cut_mid_stream_resumes_with_range(
    proxied: tuple[BoxHook, CuttingProxy], emulated_services: EmulatedServices, tmp_path: Path
) -> None:
    hook, proxy = proxied
    assert hook.get_auth_config().endpoint == proxy.url
    local = tmp_path / "src.bin"
    expected = write_random(local, 10 * MIB)
    hook.upload_file(local, "/cut/src.bin")
    target = tmp_path / "out" / "src.bin"
    hook.download_file("/cut/src.bin", target)
    assert proxy.cut == 1  # the first body really broke off
    assert file_sha1(target) == expected
    routes = emulated_services.client.stats()["box"]["routes"]
    downloads = {r: c for r, c in routes.items() if r.startswith("/d/1/")}
    assert sum(c.get("206", 0) for c in downloads.values()) == 1  # resumed from where it broke off
    assert sorted(p.name for p in target.parent.iterdir()) == ["src.bin"]


def test_download_cut_every_time_leaves_nothing(
    proxied: tuple[BoxHook, CuttingProxy], tmp_path: Path
) -> None:
    hook, proxy = proxied
    local = tmp_path / "src.bin"
    write_random(local, 10 * MIB)
    hook.upload_file(local, "/cut/src.bin")
    proxy.cuts_left = 100
    proxy.cut_after = MIB  # each attempt gets 1 MiB further, never to the end
    target = tmp_path / "out" / "src.bin"
    target.parent.mkdir()
    (target.parent / "keep.txt").write_text("unrelated")
    with pytest.raises(TransportError, match="nothing was written"):
        hook.download_file("/cut/src.bin", target)
    assert proxy.cut == FAST.max_attempts
    assert sorted(p.name for p in target.parent.iterdir()) == ["keep.txt"]
