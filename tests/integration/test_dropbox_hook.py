"""DropboxHook file operations against the emulator over loopback, through real Airflow connections.

Faults the emulator cannot make (a response cut mid-body, a response lost after the request was processed,
flipped bytes) come from a loopback TCP proxy in front of it (tests/helpers/dropbox.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from dropbox_box_provider.content_hash import DROPBOX_BLOCK_SIZE, DropboxContentHasher, dropbox_content_hash
from dropbox_box_provider.emulator import seed
from dropbox_box_provider.errors import (
    ContentHashMismatch,
    InvalidArgument,
    InvalidRemotePath,
    ItemExists,
    ItemNotFound,
    ServiceError,
    TransportError,
)
from dropbox_box_provider.hooks.dropbox import DropboxHook, dropbox_api_arg, normalize_path
from dropbox_box_provider.testing import EmulatedServices
from tests.fixtures.emulator import Emulator, RunningEmulator
from tests.helpers.dropbox import FAST, ProxyRule, dropbox_connection, fault_proxy

MiB = 1024 * 1024
FOLDER = "/Reports 2024/Ünïcødé ✓ 📁"


@pytest.fixture(autouse=True)
def airflow_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow_home"))
    monkeypatch.setenv("AIRFLOW__CORE__FERNET_KEY", Fernet.generate_key().decode())


@pytest.fixture
def emu(emulated_services: EmulatedServices) -> EmulatedServices:
    """The testing kit's emulator, reset for this test."""
    return emulated_services


@pytest.fixture
def hook(monkeypatch: pytest.MonkeyPatch, emu: EmulatedServices, tmp_path: Path) -> DropboxHook:
    dropbox_connection(monkeypatch, emu, tmp_path, "dbx_files")
    return DropboxHook("dbx_files", retry_policy=FAST)


@pytest.fixture
def process_hook(
    monkeypatch: pytest.MonkeyPatch, fresh_emulator: RunningEmulator, tmp_path: Path
) -> DropboxHook:
    """A hook on the emulator subprocess: memory tests trace this process only, never the server's bytes."""
    dropbox_connection(monkeypatch, fresh_emulator, tmp_path, "dbx_files")
    return DropboxHook("dbx_files", retry_policy=FAST)


def routes(emu: Emulator) -> dict[str, dict[str, int]]:
    result: dict[str, dict[str, int]] = emu.client.stats()["dropbox"]["routes"]
    return result


def make_file(path: Path, size: int) -> Path:
    """``size`` random bytes written 4 MiB at a time (never the whole file in memory)."""
    with path.open("wb") as handle:
        left = size
        while left:
            step = min(4 * MiB, left)
            handle.write(os.urandom(step))
            left -= step
    return path


def file_hash(path: Path) -> str:
    hasher = DropboxContentHasher()
    with path.open("rb") as handle:
        while chunk := handle.read(MiB):
            hasher.update(chunk)
    return hasher.hexdigest()


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".part"))


# ----------------------------------------------------------------------------- pure helpers


def test_api_arg_escapes_non_ascii_and_delete_character() -> None:
    assert dropbox_api_arg({"path": "/é 📁\x7f"}) == '{"path":"/\\u00e9 \\ud83d\\udcc1\\u007f"}'
    assert dropbox_api_arg({"path": "/a b"}).isascii()
    assert normalize_path("a/b/") == "/a/b" and normalize_path("/", allow_root=True) == ""
    assert normalize_path("id:abc") == "id:abc"
    with pytest.raises(InvalidRemotePath, match="path is empty"):
        normalize_path("/")


def test_content_hash_matches_the_documented_definition_in_any_chunking() -> None:
    """SHA-256 over the SHA-256 of each 4 MiB block, whatever sizes the bytes arrive in."""
    for size in (0, 1, DROPBOX_BLOCK_SIZE - 1, DROPBOX_BLOCK_SIZE, 2 * DROPBOX_BLOCK_SIZE + 7):
        data = os.urandom(size)
        blocks = [data[i : i + DROPBOX_BLOCK_SIZE] for i in range(0, size, DROPBOX_BLOCK_SIZE)]
        expected = hashlib.sha256(b"".join(hashlib.sha256(b).digest() for b in blocks)).hexdigest()
        assert dropbox_content_hash(data) == expected
        hasher = DropboxContentHasher()
        for start in range(0, size, 1_000_003):
            hasher.update(data[start : start + 1_000_003])
        assert hasher.hexdigest() == expected


# ----------------------------------------------------------------------------- metadata and folders


def test_folders_metadata_listing_and_delete_with_unicode_and_spaces(
    hook: DropboxHook, emu: EmulatedServices
) -> None:
    assert hook.get_current_account()["account_id"] == seed.DEMO_DROPBOX_ACCOUNT_ID
    assert not hook.exists(FOLDER)
    created = hook.create_folder(FOLDER)
    assert created["path_display"] == FOLDER
    assert hook.create_folder(FOLDER)["id"] == created["id"]  # exist_ok=True by default
    with pytest.raises(ItemExists):
        hook.create_folder(FOLDER, exist_ok=False)
    for name in ("b file.txt", "a fïle.txt", "c.txt"):
        hook.write_bytes(f"{FOLDER}/{name}", name.encode())
    with pytest.raises(ItemExists):
        hook.create_folder(f"{FOLDER}/c.txt")  # a file is in the way, exist_ok or not

    metadata = hook.get_metadata(f"{FOLDER}/a fïle.txt")
    assert metadata[".tag"] == "file" and metadata["size"] == len("a fïle.txt".encode())
    assert hook.exists(f"{FOLDER}/a fïle.txt")

    names = [entry["name"] for entry in hook.list_folder(FOLDER, limit=1)]
    assert names == ["a fïle.txt", "b file.txt", "c.txt"]
    assert routes(emu)["/2/files/list_folder/continue"] == {"200": 2}  # cursors followed
    everything = {entry["path_display"] for entry in hook.list_folder("/", recursive=True)}
    assert {"/Reports 2024", FOLDER, f"{FOLDER}/c.txt"} <= everything

    assert hook.delete(f"{FOLDER}/c.txt") is None  # RemoteFiles.delete returns nothing on both services
    assert not hook.exists(f"{FOLDER}/c.txt")
    with pytest.raises(ItemNotFound, match="not_found"):
        hook.delete(f"{FOLDER}/c.txt")
    assert hook.delete(f"{FOLDER}/c.txt", missing_ok=True) is None
    with pytest.raises(ItemNotFound):
        hook.get_metadata("/no such thing")
    with pytest.raises(InvalidArgument):
        list(hook.list_folder("/", limit=5000))


def test_read_and_write_bytes_modes(hook: DropboxHook) -> None:
    first = hook.write_bytes("/notes/ß.txt", b"one")
    assert first["content_hash"] == dropbox_content_hash(b"one")
    assert hook.write_bytes("/notes/ß.txt", b"one")["id"] == first["id"]  # same content: no conflict
    with pytest.raises(ItemExists):
        hook.write_bytes("/notes/ß.txt", b"two")
    assert hook.write_bytes("/notes/ß.txt", b"two", mode="overwrite")["size"] == 3
    assert hook.read_bytes("/notes/ß.txt") == b"two"
    with pytest.raises(InvalidArgument):
        hook.write_bytes("/notes/x", b"", mode="update")  # type: ignore[arg-type]
    with pytest.raises(ItemNotFound):
        hook.read_bytes("/notes/missing.txt")


def test_team_app_acts_as_the_selected_member(
    monkeypatch: pytest.MonkeyPatch, emu: EmulatedServices, tmp_path: Path
) -> None:
    dropbox_connection(
        monkeypatch,
        emu,
        tmp_path,
        "dbx_team",
        client_id=seed.DEMO_DROPBOX_TEAM_CLIENT_ID,
        select_user=seed.DEMO_DROPBOX_TEAM_MEMBER_MEMBER_ID,
        path_root="1000003",
    )
    hook = DropboxHook("dbx_team")
    assert hook.act_as_headers() == {
        "Dropbox-API-Select-User": seed.DEMO_DROPBOX_TEAM_MEMBER_MEMBER_ID,
        "Dropbox-API-Path-Root": '{".tag":"namespace_id","namespace_id":"1000003"}',
    }
    assert hook.get_current_account()["email"] == "member@team.example.com"

    dropbox_connection(
        monkeypatch, emu, tmp_path, "dbx_team_nouser", client_id=seed.DEMO_DROPBOX_TEAM_CLIENT_ID
    )
    with pytest.raises(ServiceError) as caught:
        DropboxHook("dbx_team_nouser").get_current_account()
    assert caught.value.status == 400


def test_async_twins(hook: DropboxHook) -> None:
    for name in ("x.txt", "y.txt"):
        hook.write_bytes(f"/async/{name}", b"data")

    async def scenario() -> tuple[dict[str, Any], list[str], bool, bool]:
        metadata = await hook.aget_metadata("/async/x.txt")
        names = [entry["name"] async for entry in hook.alist_folder("/async", limit=1)]
        found, missing = await hook.aexists("/async/y.txt"), await hook.aexists("/async/z.txt")
        await hook.aclose()
        return metadata, names, found, missing

    metadata, names, found, missing = asyncio.run(scenario())
    assert metadata["name"] == "x.txt" and names == ["x.txt", "y.txt"] and found and not missing


# ----------------------------------------------------------------------------- transfers


def test_upload_and_download_single_and_session(
    hook: DropboxHook, emu: EmulatedServices, tmp_path: Path
) -> None:
    source = make_file(tmp_path / "src file.bin", 9 * MiB + 3)
    small = hook.upload_file(source, "/up/single é.bin")
    assert small["content_hash"] == file_hash(source) and routes(emu)["/2/files/upload"] == {"200": 1}

    session = hook.upload_file(
        source, "/up/session é.bin", chunk_size=4 * MiB, single_request_limit=4 * MiB, mode="overwrite"
    )
    assert session["size"] == 9 * MiB + 3 and session["content_hash"] == file_hash(source)
    stats = routes(emu)
    assert stats["/2/files/upload_session/start"] == {"200": 1}
    assert stats["/2/files/upload_session/append_v2"] == {"200": 2}
    assert stats["/2/files/upload_session/finish"] == {"200": 1}

    out = tmp_path / "out dir"
    out.mkdir()
    target = out / "dówn.bin"
    assert hook.download_file("/up/session é.bin", target) == target  # RemoteFiles: the local Path
    assert hook.info("/up/session é.bin").content_hash == file_hash(target) == file_hash(source)
    assert leftovers(out) == []
    with pytest.raises(InvalidArgument, match="multiple of 4 MiB"):
        hook.upload_file(source, "/up/x", chunk_size=5 * MiB)


def test_upload_session_recovers_when_an_append_answer_is_lost(
    monkeypatch: pytest.MonkeyPatch, emu: EmulatedServices, tmp_path: Path
) -> None:
    source = make_file(tmp_path / "s.bin", 10 * MiB)
    with fault_proxy(emu.url) as proxy:
        dropbox_connection(monkeypatch, emu, tmp_path, "dbx_proxy", host=proxy.url)
        hook = DropboxHook("dbx_proxy", retry_policy=FAST)
        proxy.add(ProxyRule("upload_session/append_v2", lose_response=True))
        metadata = hook.upload_file(source, "/lost.bin", chunk_size=4 * MiB, single_request_limit=4 * MiB)
    assert len(proxy.applied) == 1
    # The appended chunk landed; the resend got incorrect_offset and the upload went on from there.
    assert routes(emu)["/2/files/upload_session/append_v2"] == {"200": 2, "409": 1}
    assert metadata["content_hash"] == file_hash(source)


def test_corrupted_transfers_raise_and_keep_nothing(
    monkeypatch: pytest.MonkeyPatch, emu: EmulatedServices, tmp_path: Path
) -> None:
    source = make_file(tmp_path / "c.bin", 5 * MiB)
    with fault_proxy(emu.url) as proxy:
        dropbox_connection(monkeypatch, emu, tmp_path, "dbx_corrupt", host=proxy.url)
        hook = DropboxHook("dbx_corrupt", retry_policy=FAST)
        proxy.add(ProxyRule("files/upload", corrupt_request=True))
        with pytest.raises(ContentHashMismatch, match="upload it again"):
            hook.upload_file(source, "/corrupt.bin")
        hook.upload_file(source, "/good.bin")
        proxy.add(ProxyRule("files/download", corrupt_response=True))
        with pytest.raises(ContentHashMismatch, match="nothing was kept"):
            hook.download_file("/good.bin", tmp_path / "good.bin")
    assert not (tmp_path / "good.bin").exists() and leftovers(tmp_path) == []


def test_download_cut_mid_body_leaves_destination_untouched(
    monkeypatch: pytest.MonkeyPatch, emu: EmulatedServices, tmp_path: Path
) -> None:
    source = make_file(tmp_path / "d.bin", 6 * MiB)
    target = tmp_path / "target.bin"
    target.write_bytes(b"previous content")
    with fault_proxy(emu.url) as proxy:
        dropbox_connection(monkeypatch, emu, tmp_path, "dbx_cut", host=proxy.url)
        hook = DropboxHook("dbx_cut", retry_policy=FAST)
        hook.upload_file(source, "/d.bin")
        proxy.add(ProxyRule("files/download", cut_after=2 * MiB))
        with pytest.raises(TransportError) as caught:
            hook.download_file("/d.bin", target)
        assert caught.value.code == "interrupted" and "Run the task again" in str(caught.value)
        assert target.read_bytes() == b"previous content" and leftovers(tmp_path) == []
        with pytest.raises(TransportError):
            proxy.add(ProxyRule("files/download", cut_after=MiB))
            hook.download_file("/d.bin", tmp_path / "fresh.bin")
        assert not (tmp_path / "fresh.bin").exists()
        # A connection dropped before the body starts is retried.
        emu.client.fault("*files/download", drop=True, count=1)
        hook.download_file("/d.bin", target)
    assert file_hash(target) == file_hash(source) and leftovers(tmp_path) == []


@pytest.mark.slow
def test_200_mib_upload_and_download_keep_memory_flat(
    process_hook: DropboxHook, fresh_emulator: RunningEmulator, tmp_path: Path
) -> None:
    hook, emu = process_hook, fresh_emulator
    source = make_file(tmp_path / "big.bin", 200 * MiB)
    expected = file_hash(source)
    tracemalloc.start()
    try:
        metadata = hook.upload_file(source, "/big/200 MiB.bin")
        upload_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        hook.download_file("/big/200 MiB.bin", tmp_path / "back.bin")
        download_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert metadata["size"] == 200 * MiB and metadata["content_hash"] == expected
    stats = routes(emu)
    assert stats["/2/files/upload_session/append_v2"] == {"200": 6}  # 32 MiB pieces after the start
    assert "/2/files/upload" not in stats
    assert file_hash(tmp_path / "back.bin") == expected
    assert upload_peak < 16 * MiB, upload_peak
    assert download_peak < 16 * MiB, download_peak


def test_streamed_upload_session_and_a_lost_append_answer(
    monkeypatch: pytest.MonkeyPatch, emu: EmulatedServices, tmp_path: Path
) -> None:
    """``open_upload`` (fsspec writes): pieces of 4 MiB; a piece whose answer was lost is not resent."""
    data = os.urandom(10 * MiB + 11)
    with fault_proxy(emu.url) as proxy:
        dropbox_connection(monkeypatch, emu, tmp_path, "dbx_stream", host=proxy.url)
        hook = DropboxHook("dbx_stream", retry_policy=FAST)
        proxy.add(ProxyRule("upload_session/append_v2", lose_response=True))
        upload = hook.open_upload("/streamed/ten.bin")
        upload.append(data[: 4 * MiB])
        upload.append(data[4 * MiB : 8 * MiB])
        with pytest.raises(InvalidArgument, match="multiple of 4 MiB"):
            upload.append(b"x")
        metadata = upload.finish(data[8 * MiB :])
        assert hook.read_bytes("/streamed/ten.bin") == data
    assert len(proxy.applied) == 1
    assert routes(emu)["/2/files/upload_session/append_v2"] == {"200": 1, "409": 1}
    assert metadata["content_hash"] == dropbox_content_hash(data)
