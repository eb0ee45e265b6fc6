"""``dropbox://`` and ``box://`` through fsspec and ObjectStoragePath, over loopback to the emulator: round
trips, ranged reads, folders, server-side and cross-service copies, and the errors a user sees."""

from __future__ import annotations

import hashlib
import os
import resource
from pathlib import Path

import fsspec
import pytest
from airflow.sdk import ObjectStoragePath

from dropbox_box_provider.content_hash import dropbox_content_hash
from dropbox_box_provider.fs.box import BoxFileSystem
from dropbox_box_provider.fs.dropbox import DropboxFileSystem
from dropbox_box_provider.get_provider_info import get_provider_info
from tests.fixtures.emulator import RunningEmulator
from tests.fs.conftest import BOX_CONN, DROPBOX_CONN, url


def service_hash(scheme: str, data: bytes) -> str:
    if scheme == "dropbox":
        return dropbox_content_hash(data)
    return hashlib.sha1(data, usedforsecurity=False).hexdigest()


def test_registered_with_fsspec_and_airflow() -> None:
    assert fsspec.get_filesystem_class("dropbox") is DropboxFileSystem
    assert fsspec.get_filesystem_class("box") is BoxFileSystem
    assert get_provider_info()["filesystems"] == [
        "dropbox_box_provider.fs.dropbox",
        "dropbox_box_provider.fs.box",
    ]
    from airflow.sdk.io import get_fs

    fs = get_fs("dropbox", "some_conn")
    assert isinstance(fs, DropboxFileSystem) and fs.conn_id == "some_conn"
    assert get_fs("box", None).conn_id == "box_default"  # type: ignore[attr-defined]


def test_object_storage_path_binds_the_connection(services: RunningEmulator) -> None:
    path = ObjectStoragePath(f"dropbox://{DROPBOX_CONN}@/inbox/a.csv")
    assert (path.conn_id, path.path, str(path)) == (
        DROPBOX_CONN,
        "/inbox/a.csv",
        f"dropbox://{DROPBOX_CONN}@/inbox/a.csv",
    )
    assert isinstance(path.fs, DropboxFileSystem) and path.fs.conn_id == DROPBOX_CONN
    box = ObjectStoragePath(f"box://{BOX_CONN}@/x/") / "y.txt"
    assert (box.conn_id, box.path) == (BOX_CONN, "/x/y.txt")
    assert isinstance(box.fs, BoxFileSystem) and box.fs.conn_id == BOX_CONN


def test_fsspec_url_carries_the_connection(services: RunningEmulator) -> None:
    with fsspec.open(f"dropbox://{DROPBOX_CONN}@/plain/fsspec.txt", "wb") as handle:
        handle.write(b"no airflow path object")
    fs, path = fsspec.core.url_to_fs(f"dropbox://{DROPBOX_CONN}@/plain/fsspec.txt")
    assert fs.conn_id == DROPBOX_CONN and path == "/plain/fsspec.txt"
    assert fs.cat_file(path) == b"no airflow path object"


def test_round_trip_unicode_and_nested_folders(scheme: str) -> None:
    data = os.urandom(1024)
    path = ObjectStoragePath(url(scheme, "/Reports/2024/Å ä ü — naïve.bin"))
    path.write_bytes(data)
    assert path.read_bytes() == data
    assert path.exists() and path.is_file() and not path.is_dir()
    assert path.parent.is_dir() and ObjectStoragePath(url(scheme, "/Reports")).is_dir()
    assert path.stat().st_size == 1024
    assert [p.name for p in path.parent.iterdir()] == ["Å ä ü — naïve.bin"]
    assert [p.name for p in ObjectStoragePath(url(scheme, "/Reports")).glob("**/*.bin")] == [path.name]
    fs = path.fs
    assert fs.ukey(path.path).endswith(":" + service_hash(scheme, data))
    assert fs.checksum(path.path) == int(service_hash(scheme, data)[:16], 16)
    assert fs.info(path.path)["hash_algorithm"] == ("dropbox-content-hash" if scheme == "dropbox" else "sha1")
    with path.open("w") as text:  # text mode over the binary file
        text.write("línea\n")
    assert path.read_text() == "línea\n"


def test_seek_and_ranged_reads(scheme: str) -> None:
    data = bytes(range(256)) * 2048  # 512 KiB
    path = ObjectStoragePath(url(scheme, "/ranges/data.bin"))
    path.write_bytes(data)
    fs = path.fs
    with fs.open(path.path, "rb", block_size=64 * 1024) as handle:
        handle.seek(300_000)
        assert handle.read(10) == data[300_000:300_010]
        handle.seek(-5, os.SEEK_END)
        assert handle.read() == data[-5:]
        handle.seek(17)
        assert handle.read(70_000) == data[17:70_017]
        assert handle.tell() == 70_017
    assert fs.cat_file(path.path, start=1000, end=1010) == data[1000:1010]
    assert fs.cat_file(path.path, start=-3) == data[-3:]
    assert path.read_block(4096, 100) == data[4096:4196]


def test_folders_moves_copies_and_removal(scheme: str) -> None:
    root = ObjectStoragePath(url(scheme, "/work"))
    (root / "a").mkdir(parents=True)
    with pytest.raises(FileExistsError):
        (root / "a").mkdir()
    (root / "a" / "one.txt").write_bytes(b"1")
    (root / "a" / "one.txt").copy(root / "a" / "two.txt")  # same store: server-side copy
    (root / "a" / "two.txt").rename(root / "a" / "three.txt")
    assert sorted(p.name for p in (root / "a").iterdir()) == ["one.txt", "three.txt"]
    assert (root / "a" / "three.txt").read_bytes() == b"1"
    root.fs.mv((root / "a").path, (root / "b").path)
    assert not (root / "a").exists() and (root / "b" / "one.txt").exists()
    with pytest.raises(OSError, match="not empty"):
        root.fs.rmdir((root / "b").path)
    (root / "b" / "one.txt").unlink()
    assert not (root / "b" / "one.txt").exists()
    root.fs.rm((root / "b").path, recursive=True)
    assert not (root / "b").exists()


@pytest.mark.parametrize(("source", "target"), [("dropbox", "box"), ("box", "dropbox")])
def test_copy_and_move_between_services(services: RunningEmulator, source: str, target: str) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    src = ObjectStoragePath(url(source, "/outbox/big.bin"))
    src.write_bytes(data)
    dst = ObjectStoragePath(url(target, "/inbox/big.bin"))
    src.copy(dst)
    assert dst.read_bytes() == data and src.exists()
    assert dst.fs.info(dst.path)["content_hash"] == service_hash(target, data)
    moved = ObjectStoragePath(url(target, "/moved/big.bin"))
    src.move(moved)
    assert moved.read_bytes() == data and not src.exists()


def test_copy_to_and_from_local_files(scheme: str, tmp_path: Path) -> None:
    local = tmp_path / "local.txt"
    local.write_bytes(b"from disk")
    remote = ObjectStoragePath(url(scheme, "/up/local.txt"))
    ObjectStoragePath(f"file://{local}").copy(remote)
    assert remote.read_bytes() == b"from disk"
    back = tmp_path / "back.txt"
    remote.copy(ObjectStoragePath(f"file://{back}"))
    assert back.read_bytes() == b"from disk"


def test_clear_errors(scheme: str) -> None:
    missing = ObjectStoragePath(url(scheme, "/nope/missing.txt"))
    assert not missing.exists()
    with pytest.raises(FileNotFoundError):
        missing.read_bytes()
    with pytest.raises(FileNotFoundError):
        missing.fs.open(missing.path, "rb")
    folder = ObjectStoragePath(url(scheme, "/taken"))
    folder.mkdir()
    with pytest.raises(IsADirectoryError, match="is a folder"):  # a folder is in the way: refused
        folder.write_bytes(b"x")
    existing = ObjectStoragePath(url(scheme, "/taken/file.txt"))
    existing.write_bytes(b"x")
    with pytest.raises(FileExistsError):
        existing.fs.open(existing.path, "xb")
    with pytest.raises(ValueError, match="not supported"):
        existing.fs.open(existing.path, "ab")


def test_missing_connection_is_named(services: RunningEmulator) -> None:
    from airflow.exceptions import AirflowNotFoundException

    with pytest.raises(AirflowNotFoundException, match="no_such_conn"):
        ObjectStoragePath("dropbox://no_such_conn@/a.txt").read_bytes()


@pytest.mark.slow
def test_64_mib_round_trip_keeps_memory_flat(scheme: str) -> None:
    size, block = 64 * 1024 * 1024, 1024 * 1024
    pattern = os.urandom(block)
    path = ObjectStoragePath(url(scheme, "/large/64mib.bin"))
    warm = ObjectStoragePath(url(scheme, "/large/warm.bin"))  # imports and clients are not transfer memory
    warm.write_bytes(pattern)
    assert warm.read_bytes() == pattern
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    digest = hashlib.sha256()
    with path.open("wb") as handle:
        for index in range(size // block):
            chunk = pattern[index % 7 :] + pattern[: index % 7]
            handle.write(chunk)
            digest.update(chunk)
    written = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
    read = hashlib.sha256()
    with path.open("rb", block_size=4 * block) as handle:
        while chunk := handle.read(block):
            read.update(chunk)
    growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
    assert read.hexdigest() == digest.hexdigest()
    assert path.stat().st_size == size
    assert growth < 64 * 1024 * 1024, (
        f"peak RSS grew by {growth / 2**20:.1f} MiB ({written / 2**20:.1f} writing)"
    )


def test_common_io_file_transfer_operator(services: RunningEmulator) -> None:
    from airflow.providers.common.io.operators.file_transfer import FileTransferOperator

    ObjectStoragePath(url("dropbox", "/io/a.csv")).write_bytes(b"a,1\n")
    FileTransferOperator(
        task_id="t", src=url("dropbox", "/io/a.csv"), dst=url("box", "/io/copied.csv")
    ).execute({})  # type: ignore[arg-type]
    assert ObjectStoragePath(url("box", "/io/copied.csv")).read_bytes() == b"a,1\n"
    with pytest.raises(ValueError, match="already exists"):
        FileTransferOperator(
            task_id="u", src=url("dropbox", "/io/a.csv"), dst=url("box", "/io/copied.csv")
        ).execute({})  # type: ignore[arg-type]
    FileTransferOperator(
        task_id="v",
        src="dropbox:///io/a.csv",
        source_conn_id=DROPBOX_CONN,
        dst=url("box", "/io/copied.csv"),
        overwrite=True,
    ).execute({})  # type: ignore[arg-type]


def test_dropbox_writes_stream_into_an_upload_session(services: RunningEmulator) -> None:
    data = os.urandom(9 * 1024 * 1024 + 5)  # two 4 MiB pieces, then the rest at finish
    path = ObjectStoragePath(url("dropbox", "/streamed/nine.bin"))
    with path.open("wb", block_size=1024 * 1024) as handle:
        for start in range(0, len(data), 700_000):
            handle.write(data[start : start + 700_000])
    routes = services.client.stats()["dropbox"]["routes"]
    assert routes["/2/files/upload_session/start"]["200"] == 1
    assert routes["/2/files/upload_session/append_v2"]["200"] == 1
    assert routes["/2/files/upload_session/finish"]["200"] == 1
    assert path.read_bytes() == data
    small = ObjectStoragePath(url("dropbox", "/streamed/small.txt"))
    small.write_bytes(b"")  # an empty file: one plain upload
    assert small.read_bytes() == b"" and small.stat().st_size == 0
