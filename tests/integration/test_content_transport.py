"""Content streams (downloads) go through ``content_transport.Urllib3Transport`` under the hooks' one httpx
stack: the bytes arrive whole and checksum-checked (the worker-thread hash for large files), a corrupted body
is refused, a refused connection is retried like httpx's, and a configured proxy keeps httpx's transport."""

from __future__ import annotations

import hashlib
import os
import socket
from pathlib import Path

import httpx
import pytest

from dropbox_box_provider.auth import content_transport, transport
from dropbox_box_provider.errors import ChecksumMismatch, TransportError
from dropbox_box_provider.hooks.box import BoxHook
from dropbox_box_provider.hooks.dropbox import DropboxHook
from dropbox_box_provider.hooks.hashing import OVERLAP_THRESHOLD
from tests.fixtures.emulator import RunningEmulator
from tests.helpers.box import box_oauth_connection
from tests.helpers.dropbox import FAST, ProxyRule, dropbox_connection, fault_proxy

MiB = 1024 * 1024
LARGE = OVERLAP_THRESHOLD + 3 * MiB + 5  # hashed in the worker thread


pytestmark = pytest.mark.usefixtures("fernet_key_without_proxy")


def random_file(path: Path, size: int) -> str:
    data = os.urandom(size)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".part"))


def test_dropbox_download_streams_through_urllib3_and_is_checked(
    monkeypatch: pytest.MonkeyPatch, fresh_emulator: RunningEmulator, tmp_path: Path
) -> None:
    dropbox_connection(monkeypatch, fresh_emulator, tmp_path, "dbx_content")
    hook = DropboxHook("dbx_content", retry_policy=FAST)
    expected = random_file(tmp_path / "src.bin", LARGE)
    hook.upload_file(tmp_path / "src.bin", "/content/src.bin")
    for attempt in range(2):  # the second reuses the pooled connection
        hook.download_file("/content/src.bin", tmp_path / f"out{attempt}.bin")
        assert sha256_of(tmp_path / f"out{attempt}.bin") == expected
    assert isinstance(hook.get_content_conn()._transport, content_transport.Urllib3Transport)
    assert leftovers(tmp_path) == []
    hook.close()


def test_box_download_streams_through_urllib3_and_is_checked(
    monkeypatch: pytest.MonkeyPatch, fresh_emulator: RunningEmulator, tmp_path: Path
) -> None:
    box_oauth_connection(monkeypatch, fresh_emulator, tmp_path, "box_content")
    hook = BoxHook("box_content", retry_policy=FAST)
    expected = random_file(tmp_path / "src.bin", LARGE)
    hook.upload_file(tmp_path / "src.bin", "/content/src.bin")
    hook.download_file("/content/src.bin", tmp_path / "out.bin")
    assert sha256_of(tmp_path / "out.bin") == expected
    assert isinstance(hook.plain_client()._transport, content_transport.Urllib3Transport)
    assert isinstance(hook.get_content_conn()._transport, content_transport.Urllib3Transport)
    hook.close()


def test_large_corrupted_downloads_are_refused_and_leave_nothing(
    monkeypatch: pytest.MonkeyPatch, fresh_emulator: RunningEmulator, tmp_path: Path
) -> None:
    random_file(tmp_path / "src.bin", LARGE)
    out = tmp_path / "out"
    out.mkdir()
    with fault_proxy(fresh_emulator.url) as proxy:
        dropbox_connection(monkeypatch, fresh_emulator, tmp_path, "dbx_bad", host=proxy.url)
        dropbox = DropboxHook("dbx_bad", retry_policy=FAST)
        dropbox.upload_file(tmp_path / "src.bin", "/bad.bin")
        proxy.add(ProxyRule("files/download", corrupt_response=True))
        with pytest.raises(ChecksumMismatch, match="nothing was kept"):
            dropbox.download_file("/bad.bin", out / "dropbox.bin")

        box_oauth_connection(monkeypatch, fresh_emulator, tmp_path, "box_bad")
        monkeypatch.setenv(
            "AIRFLOW_CONN_BOX_BAD", os.environ["AIRFLOW_CONN_BOX_BAD"].replace(fresh_emulator.url, proxy.url)
        )
        box = BoxHook("box_bad", retry_policy=FAST)
        box.upload_file(tmp_path / "src.bin", "/bad.bin")
        proxy.add(ProxyRule("/d/1/", corrupt_response=True))  # the pre-signed download URL
        with pytest.raises(ChecksumMismatch, match="nothing was written"):
            box.download_file("/bad.bin", out / "box.bin")
    assert len(proxy.applied) == 2
    assert list(out.iterdir()) == []


def test_a_refused_connection_is_retried_then_reported() -> None:
    with socket.socket() as probe:  # a port with nobody listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    policy = transport.RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.02)
    client = content_transport.content_client()
    attempts: list[float] = []
    with pytest.raises(TransportError) as caught:
        transport.send(
            client,
            client.build_request("GET", f"http://127.0.0.1:{port}/x"),
            policy=policy,
            sleep=attempts.append,
        )
    assert caught.value.code == "connection_failed"
    assert isinstance(caught.value.__cause__, httpx.ConnectError)
    assert len(attempts) == 2  # three attempts: a connection never made is safe to resend
    client.close()


def test_a_proxy_in_the_environment_keeps_httpx_transport(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    assert content_transport.fast_transport() is None
    client = content_transport.content_client()
    assert not isinstance(client._transport, content_transport.Urllib3Transport)
    client.close()


def test_a_rejected_token_and_a_busy_service_on_a_content_stream_are_handled_by_the_one_stack(
    monkeypatch: pytest.MonkeyPatch, fresh_emulator: RunningEmulator, tmp_path: Path
) -> None:
    dropbox_connection(monkeypatch, fresh_emulator, tmp_path, "dbx_auth")
    hook = DropboxHook("dbx_auth", retry_policy=FAST)
    expected = random_file(tmp_path / "src.bin", 2 * MiB)
    hook.upload_file(tmp_path / "src.bin", "/auth/src.bin")
    assert fresh_emulator.client.expire_access_tokens(service="dropbox") >= 1
    fresh_emulator.client.fault("*files/download", status=503, retry_after=0, count=1)
    hook.download_file("/auth/src.bin", tmp_path / "out.bin")
    assert sha256_of(tmp_path / "out.bin") == expected
    statuses = fresh_emulator.client.stats()["dropbox"]["routes"]["/2/files/download"]
    assert statuses.get("401", 0) >= 1 and statuses.get("503") == 1 and statuses.get("200") == 1, statuses
    hook.close()
