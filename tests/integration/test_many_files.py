"""Many small files: bounded concurrency (counted by the emulator), one shared back-off under 429 storms,
Dropbox batch commits (more files than one batch, a lost batch answer, write contention), the operators'
``max_active_transfers`` and its deprecated name, and fsspec's multi-file put/get."""

from __future__ import annotations

import hashlib
import os
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet

from dropbox_box_provider.auth import transport
from dropbox_box_provider.auth.backoff import BackoffGate, shared_backoff
from dropbox_box_provider.content_hash import dropbox_content_hash
from dropbox_box_provider.deprecation import reset_warnings
from dropbox_box_provider.errors import AlreadyExists, InvalidArgument
from dropbox_box_provider.hooks.base import BaseOAuthHook
from dropbox_box_provider.hooks.box import BoxHook
from dropbox_box_provider.hooks.dropbox import DropboxHook
from tests.fixtures.emulator import RunningEmulator, wait_until
from tests.helpers import box as box_helpers
from tests.helpers import dropbox as dropbox_helpers
from tests.helpers.dropbox import FAST
from tests.helpers.hooks import service_hook

UPLOAD_ROUTE = {"dropbox": "*/files/upload_session/start", "box": "*/2.0/files/content"}


@pytest.fixture(autouse=True)
def airflow_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow_home"))
    monkeypatch.setenv("AIRFLOW__CORE__FERNET_KEY", Fernet.generate_key().decode())


@pytest.fixture(params=["dropbox", "box"])
def files(
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    fresh_emulator: RunningEmulator,
    tmp_path: Path,
) -> Iterator[BaseOAuthHook]:
    hook = service_hook(request.param, monkeypatch, fresh_emulator, tmp_path, "many")
    yield hook
    hook.close()


@pytest.fixture
def dropbox_hook(
    monkeypatch: pytest.MonkeyPatch, fresh_emulator: RunningEmulator, tmp_path: Path
) -> Iterator[DropboxHook]:
    dropbox_helpers.dropbox_connection(monkeypatch, fresh_emulator, tmp_path, "many_dropbox")
    hook = DropboxHook("many_dropbox", retry_policy=FAST)
    yield hook
    hook.close()


def local_files(folder: Path, count: int, size: int = 3000) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        path = folder / f"f{index:03d}.bin"
        path.write_bytes(os.urandom(size) + b"%d" % index)
        paths.append(path)
    return paths


def remote_hash(hook: BaseOAuthHook, data: bytes) -> str:
    if hook.service == "dropbox":
        return dropbox_content_hash(data)
    return hashlib.sha1(data, usedforsecurity=False).hexdigest()


def routes(emulator: RunningEmulator, service: str) -> dict[str, dict[str, int]]:
    stats: dict[str, dict[str, int]] = emulator.client.stats()[service]["routes"]
    return stats


def count(emulator: RunningEmulator, service: str, suffix: str, status: str | None = None) -> int:
    return sum(
        n
        for route, statuses in routes(emulator, service).items()
        if route.endswith(suffix)
        for code, n in statuses.items()
        if status is None or code == status
    )


def test_upload_files_keeps_at_most_max_active_transfers_in_flight(
    files: Any, fresh_emulator: RunningEmulator, tmp_path: Path
) -> None:
    sources = local_files(tmp_path / "src", 12)
    files.info("/")  # the token is fetched before the count starts
    fresh_emulator.client.configure(latency_ms=60)
    fresh_emulator.client.clear_stats()
    entries = files.upload_files([(p, "/Many/") for p in sources], max_active_transfers=3)
    in_flight = fresh_emulator.client.stats()[files.service]["max_in_flight"]
    assert 2 <= in_flight <= 3, in_flight
    assert [e.name for e in entries] == [p.name for p in sources]  # in the order given
    for source, entry in zip(sources, entries, strict=True):
        assert entry.content_hash == remote_hash(files, source.read_bytes())

    back = tmp_path / "back"
    back.mkdir()
    fresh_emulator.client.clear_stats()
    written = files.download_files([(e.ref, back / e.name) for e in entries], max_active_transfers=2)
    assert fresh_emulator.client.stats()[files.service]["max_in_flight"] == 2
    assert [p.read_bytes() for p in written] == [p.read_bytes() for p in sources]


def test_a_429_storm_backs_every_worker_off_and_loses_no_file(
    files: Any, fresh_emulator: RunningEmulator, tmp_path: Path
) -> None:
    sources = local_files(tmp_path / "src", 10)
    files.info("/")
    fresh_emulator.client.fault(UPLOAD_ROUTE[files.service], status=429, retry_after=1, count=6)
    entries = files.upload_files([(p, "/Storm/") for p in sources], max_active_transfers=3)
    assert count(fresh_emulator, files.service, UPLOAD_ROUTE[files.service][1:], "429") == 6
    assert len(entries) == 10
    for source in sources:
        assert files.read_bytes(f"/Storm/{source.name}") == source.read_bytes()


def test_the_shared_gate_holds_back_the_next_request_of_every_worker() -> None:
    """A 429's Retry-After closes the transfer's gate; every request of the transfer waits it out."""
    now = [100.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    gate = BackoffGate(clock=lambda: now[0], sleep=sleep)
    answers = {"/a": [httpx.Response(429, headers={"Retry-After": "7"}), httpx.Response(200)]}
    sent: list[tuple[str, float]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append((request.url.path, now[0]))
        queue = answers.get(request.url.path)
        return queue.pop(0) if queue else httpx.Response(200)

    no_own_sleep: Any = lambda seconds: None  # noqa: E731 - the gate does all the waiting here
    with shared_backoff(gate), httpx.Client(transport=httpx.MockTransport(handler)) as client:
        assert transport.send(
            client, client.build_request("GET", "http://x/a"), sleep=no_own_sleep
        ).is_success
        assert gate.holds == 1
        assert sent == [("/a", 100.0), ("/a", 107.0)]  # the retry went out when the gate opened
        gate.hold(5)  # another worker was refused meanwhile
        assert transport.send(
            client, client.build_request("GET", "http://x/b"), sleep=no_own_sleep
        ).is_success
        assert sent[-1] == ("/b", 112.0)  # this worker's first request waited for it too
    outside = httpx.Client(transport=httpx.MockTransport(handler))
    gate.hold(60)
    transport.send(outside, outside.build_request("GET", "http://x/c"))  # another transfer: not held
    assert sent[-1] == ("/c", 112.0)


def test_dropbox_batches_commits_beyond_one_batch(
    dropbox_hook: DropboxHook, fresh_emulator: RunningEmulator, tmp_path: Path
) -> None:
    sources = local_files(tmp_path / "src", 7)
    entries = dropbox_hook.upload_files([(p, "/Batch/") for p in sources], batch_size=3)
    assert count(fresh_emulator, "dropbox", "/upload_session/finish_batch_v2", "200") == 3  # 3 + 3 + 1
    assert count(fresh_emulator, "dropbox", "/files/upload") == 0  # no file went alone
    assert [e.path for e in entries] == [f"/Batch/{p.name}" for p in sources]
    listed = {e.name: e.content_hash for e in dropbox_hook.list("/Batch")}
    assert listed == {p.name: dropbox_content_hash(p.read_bytes()) for p in sources}


def test_dropbox_lost_batch_answer_counts_landed_files_as_done(
    dropbox_hook: DropboxHook, fresh_emulator: RunningEmulator, tmp_path: Path
) -> None:
    sources = local_files(tmp_path / "src", 5)
    dropbox_hook.info("/")
    fresh_emulator.client.fault("*/upload_session/finish_batch_v2", drop_after=True, count=1)
    entries = dropbox_hook.upload_files([(p, "/Lost/") for p in sources])
    assert count(fresh_emulator, "dropbox", "/upload_session/finish_batch_v2") == 2  # committed, answer lost
    assert count(fresh_emulator, "dropbox", "/files/get_metadata", "200") == 5  # found where they should be
    assert count(fresh_emulator, "dropbox", "/files/upload") == 0  # so none was sent again
    assert [e.content_hash for e in entries] == [dropbox_content_hash(p.read_bytes()) for p in sources]


def test_dropbox_batch_under_write_contention_and_conflicts(
    dropbox_hook: DropboxHook, fresh_emulator: RunningEmulator, tmp_path: Path
) -> None:
    sources = local_files(tmp_path / "src", 8)
    dropbox_hook.info("/")
    fresh_emulator.client.configure(latency_ms=30, dropbox_write_concurrency=1)
    dropbox_hook.write_bytes("/Busy/f003.bin", b"other content")
    entries = dropbox_hook.upload_files([(p, "/Busy/") for p in sources[:3]], max_active_transfers=4)
    assert len(entries) == 3
    assert count(fresh_emulator, "dropbox", "/files/upload", "409") == 0  # one write per batch: no refusal
    with pytest.raises(AlreadyExists, match="overwrite=True"):
        dropbox_hook.upload_files([(p, "/Busy/") for p in sources])
    # Every other file of the failed call landed; overwrite replaces the conflicting one.
    assert dropbox_hook.read_bytes("/Busy/f007.bin") == sources[7].read_bytes()
    dropbox_hook.upload_files([(sources[3], "/Busy/")], overwrite=True)
    assert dropbox_hook.read_bytes("/Busy/f003.bin") == sources[3].read_bytes()


def test_batch_contention_refusals_are_committed_again(
    dropbox_hook: DropboxHook, fresh_emulator: RunningEmulator, tmp_path: Path
) -> None:
    """A batch that meets another write gets too_many_write_operations per entry and commits them later."""
    sources = local_files(tmp_path / "src", 4)
    dropbox_hook.info("/")
    fresh_emulator.client.configure(latency_ms=400, dropbox_write_concurrency=1)

    other = threading.Thread(target=dropbox_hook.write_bytes, args=("/Other.txt", b"x"))
    staged: list[Any] = []
    original = dropbox_hook.request

    def request(method: str, url: str, **kwargs: Any) -> httpx.Response:
        if url.endswith("finish_batch_v2") and not staged:
            staged.append(url)
            other.start()  # another writer holds the namespace while the batch arrives
            assert wait_until(lambda: fresh_emulator.client.stats()["dropbox"]["in_flight"] >= 1)
        return original(method, url, **kwargs)

    dropbox_hook.request = request  # type: ignore[method-assign,assignment]
    entries = dropbox_hook.upload_files([(p, "/Contended/") for p in sources])
    other.join()
    assert count(fresh_emulator, "dropbox", "/upload_session/finish_batch_v2", "200") == 2
    assert [e.content_hash for e in entries] == [dropbox_content_hash(p.read_bytes()) for p in sources]


def test_operators_take_max_active_transfers_and_its_deprecated_name() -> None:
    from dropbox_box_provider.operators.box import BoxDownloadOperator
    from dropbox_box_provider.operators.dropbox import DropboxUploadOperator

    up = DropboxUploadOperator(task_id="u", local_path="/x/*.csv", remote_path="/in/", max_active_transfers=6)
    assert up.max_active_transfers == 6
    reset_warnings()
    with pytest.warns(DeprecationWarning, match=r"max_active_transfers=\.\.\."):
        old = BoxDownloadOperator(
            task_id="d", remote_path="/in/*.csv", local_path="/tmp/x", max_concurrent_transfers=2
        )
    assert old.max_active_transfers == 2
    with warnings.catch_warnings(), pytest.raises(InvalidArgument, match="pass only max_active_transfers"):
        warnings.simplefilter("ignore", DeprecationWarning)
        DropboxUploadOperator(
            task_id="v",
            local_path="/x",
            remote_path="/in/",
            max_active_transfers=3,
            max_concurrent_transfers=5,
        )


def test_fsspec_put_and_get_of_many_files_move_them_concurrently(
    files: Any, fresh_emulator: RunningEmulator, tmp_path: Path
) -> None:
    from dropbox_box_provider.fs.box import BoxFileSystem
    from dropbox_box_provider.fs.dropbox import DropboxFileSystem

    source = tmp_path / "tree"
    local_files(source, 6)
    local_files(source / "sub", 3)
    cls = DropboxFileSystem if files.service == "dropbox" else BoxFileSystem
    fs = cls(hook=files, max_active_transfers=3, skip_instance_cache=True)
    files.info("/")
    fresh_emulator.client.configure(latency_ms=40)
    fresh_emulator.client.clear_stats()
    fs.put(str(source), "/Put/", recursive=True)
    assert 2 <= fresh_emulator.client.stats()[files.service]["max_in_flight"] <= 3
    assert sorted(fs.ls("/Put/tree/sub", detail=False)) == [f"/Put/tree/sub/f00{i}.bin" for i in range(3)]
    target = tmp_path / "got"
    fs.get("/Put/tree", str(target), recursive=True)
    for path in [*source.glob("*.bin"), *(source / "sub").glob("*.bin")]:
        assert (target / path.relative_to(source)).read_bytes() == path.read_bytes()


def test_remote_to_remote_moves_max_active_transfers_files_at_once(
    monkeypatch: pytest.MonkeyPatch, fresh_emulator: RunningEmulator, tmp_path: Path
) -> None:
    from dropbox_box_provider.operators.remote_transfer import DropboxToBoxOperator

    dropbox_helpers.dropbox_connection(monkeypatch, fresh_emulator, tmp_path, "r2r_dropbox")
    box_helpers.box_oauth_connection(monkeypatch, fresh_emulator, tmp_path, "r2r_box")
    source = DropboxHook("r2r_dropbox", retry_policy=FAST)
    sources = local_files(tmp_path / "src", 6)
    source.upload_files([(p, "/Out/") for p in sources])
    fresh_emulator.client.configure(latency_ms=40)
    fresh_emulator.client.clear_stats()
    moved = DropboxToBoxOperator(
        task_id="r2r",
        dropbox_path="/Out/*.bin",
        box_folder="/In",
        dropbox_conn_id="r2r_dropbox",
        box_conn_id="r2r_box",
        max_active_transfers=3,
    ).execute({})  # type: ignore[arg-type]
    assert 2 <= fresh_emulator.client.stats()["dropbox"]["max_in_flight"] <= 3
    assert [m["action"] for m in moved] == ["copied"] * 6
    box = BoxHook("r2r_box", retry_policy=FAST)
    for path in sources:
        assert box.read_bytes(f"/In/{path.name}") == path.read_bytes()
    source.close()
    box.close()
