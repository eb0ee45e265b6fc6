"""The RemoteFiles contract: every test runs once against DropboxHook and once against BoxHook, over
loopback to the emulator, through real Airflow connections. The same code must pass for both services."""

from __future__ import annotations

import asyncio
import hashlib
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from dropbox_box_provider.content_hash import dropbox_content_hash
from dropbox_box_provider.deprecation import reset_warnings
from dropbox_box_provider.errors import (
    AlreadyExists,
    AuthConfigError,
    ChecksumMismatch,
    InvalidArgument,
    InvalidRemotePath,
    NotFound,
    PreconditionFailed,
    ServiceError,
    TransferError,
    TransportError,
    UnsafePath,
)
from dropbox_box_provider.hooks.base import BaseOAuthHook
from dropbox_box_provider.hooks.box import BoxHook
from dropbox_box_provider.hooks.dropbox import DropboxHook
from dropbox_box_provider.hooks.files import RemoteEntry, RemoteFiles
from dropbox_box_provider.hooks.matching import find_files, safe_local_child
from dropbox_box_provider.testing import EmulatedServices
from tests.helpers import box as box_helpers
from tests.helpers import dropbox as dropbox_helpers
from tests.helpers.hooks import service_hook


@pytest.fixture(autouse=True)
def airflow_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow_home"))
    monkeypatch.setenv("AIRFLOW__CORE__FERNET_KEY", Fernet.generate_key().decode())


@pytest.fixture(params=["dropbox", "box"])
def files(
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    emulated_services: EmulatedServices,
    tmp_path: Path,
) -> Iterator[BaseOAuthHook]:
    """A hook of either service, empty tree (a fresh emulator per test)."""
    hook = service_hook(request.param, monkeypatch, emulated_services, tmp_path, "files")
    yield hook
    hook.close()


def expected_hash(hook: BaseOAuthHook, data: bytes) -> str:
    if hook.service == "dropbox":
        return dropbox_content_hash(data)
    return hashlib.sha1(data, usedforsecurity=False).hexdigest()


def test_both_hooks_implement_the_protocol(files: BaseOAuthHook) -> None:
    assert isinstance(files, RemoteFiles)


def test_write_info_read_and_conflicts(files: RemoteFiles) -> None:
    entry = files.write_bytes("/Contract/ä b.txt", b"one")
    assert isinstance(entry, RemoteEntry)
    assert (entry.path, entry.name, entry.kind, entry.size) == ("/Contract/ä b.txt", "ä b.txt", "file", 3)
    assert entry.content_hash == expected_hash(files, b"one")  # type: ignore[arg-type]
    assert entry.hash_algorithm in ("dropbox-content-hash", "sha1")
    info = files.info("/contract/Ä B.TXT")  # names compare case-insensitively on both services
    assert (info.id, info.path, info.kind) == (entry.id, "/Contract/ä b.txt", "file")
    assert info.modified is not None and info.modified.tzinfo is not None
    assert files.info(entry.ref).id == entry.id  # id:<id> addresses the item on both services
    assert files.read_bytes("/Contract/ä b.txt") == b"one"
    assert files.write_bytes("/Contract/ä b.txt", b"one").id == entry.id  # same content: not a conflict
    with pytest.raises(AlreadyExists, match="overwrite=True"):
        files.write_bytes("/Contract/ä b.txt", b"two")
    assert files.write_bytes("/Contract/ä b.txt", b"two", overwrite=True).size == 3
    assert files.read_bytes(entry.ref) == b"two"
    folder = files.info("/Contract")
    assert folder.kind == "folder" and folder.name == "Contract" and folder.content_hash is None
    assert files.info("/").kind == "folder"
    with pytest.raises(NotFound):
        files.info("/Contract/missing.txt")
    with pytest.raises(NotFound):
        files.read_bytes("/nowhere/x.txt")
    assert files.exists("/Contract") and not files.exists("/Contract/missing.txt")


def test_list_patterns_recursion_and_times(files: RemoteFiles) -> None:
    for path in ("/L/a.csv", "/L/b.txt", "/L/sub/c.csv", "/L/sub/deeper/d.csv"):
        files.write_bytes(path, path.encode())
    top = sorted(e.name for e in files.list("/L"))
    assert top == ["a.csv", "b.txt", "sub"]  # never the folder itself
    assert [e.name for e in files.list("/L", pattern="*.CSV")] == ["a.csv"]  # case-insensitive glob
    everything = sorted(e.path for e in files.list("/L", recursive=True))
    assert everything == [
        "/L/a.csv",
        "/L/b.txt",
        "/L/sub",
        "/L/sub/c.csv",
        "/L/sub/deeper",
        "/L/sub/deeper/d.csv",
    ]
    deep = sorted(e.path for e in files.list("/L", recursive=True, pattern="**/*.csv"))
    assert deep == ["/L/a.csv", "/L/sub/c.csv", "/L/sub/deeper/d.csv"]  # ** crosses folders (and none)
    assert sorted(e.path for e in files.list("/L", recursive=True, pattern="sub/*.csv")) == ["/L/sub/c.csv"]
    future = datetime.now(UTC) + timedelta(hours=1)
    assert list(files.list("/L", modified_after=future)) == []
    naive_past = datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=1)  # naive = UTC
    assert sorted(e.name for e in files.list("/L", modified_after=naive_past)) == ["a.csv", "b.txt"]
    with pytest.raises(InvalidRemotePath, match="not a folder"):
        list(files.list("/L/a.csv"))
    with pytest.raises(NotFound):
        list(files.list("/nope"))
    with pytest.raises(InvalidArgument):
        list(files.list("/L", modified_after="yesterday"))  # type: ignore[arg-type]
    assert [e.name for e in find_files(files, "/L/*.csv")] == ["a.csv"]
    assert find_files(files, "/missing/*.csv") == [] and find_files(files, "/L/none.csv") == []


def test_async_twins(files: RemoteFiles) -> None:
    files.write_bytes("/A/x.txt", b"x")
    files.write_bytes("/A/y.bin", b"y")

    async def run() -> tuple[RemoteEntry, list[str], bool, bool]:
        try:
            info = await files.ainfo("/A/x.txt")
            names = [e.name async for e in files.alist("/A", pattern="*.txt")]
            return info, names, await files.aexists("/A/y.bin"), await files.aexists("/A/z")
        finally:
            await files.aclose()  # type: ignore[attr-defined]

    info, names, present, absent = asyncio.run(run())
    assert info == files.info("/A/x.txt") and names == ["x.txt"] and present and not absent


def test_upload_download_atomic_and_checked(files: RemoteFiles, tmp_path: Path) -> None:
    local = tmp_path / "report.csv"
    local.write_bytes(b"a,b\n1,2\n")
    entry = files.upload_file(local, "/Up/report.csv")
    assert entry.kind == "file" and entry.size == 8 and entry.path == "/Up/report.csv"
    assert files.upload_file(local, "/Up/").path == "/Up/report.csv"  # trailing '/': into the folder
    local.write_bytes(b"changed")
    with pytest.raises(AlreadyExists):
        files.upload_file(local, "/Up/report.csv")
    assert files.upload_file(local, "/Up/report.csv", overwrite=True).size == 7
    target = tmp_path / "out" / "copy.csv"
    target.parent.mkdir()
    assert files.download_file("/Up/report.csv", target) == target
    assert target.read_bytes() == b"changed"
    assert [p.name for p in target.parent.iterdir()] == ["copy.csv"]  # no temporary file left
    with pytest.raises(NotFound):
        files.download_file("/Up/absent.csv", tmp_path / "out" / "absent.csv")
    assert not (tmp_path / "out" / "absent.csv").exists()
    with pytest.raises(FileNotFoundError, match="is not a file"):
        files.upload_file(tmp_path / "absent.csv", "/Up/absent.csv")


def test_mkdir_delete_move_copy(files: RemoteFiles) -> None:
    made = files.mkdir("/M/a/b")
    assert made.kind == "folder" and made.path == "/M/a/b"
    assert files.mkdir("/M/a/b").id == made.id  # exist_ok by default
    with pytest.raises(AlreadyExists):
        files.mkdir("/M/a/b", exist_ok=False)
    with pytest.raises(NotFound):
        files.mkdir("/absent/child", parents=False)
    files.write_bytes("/M/a/b/f.txt", b"f")
    with pytest.raises(AlreadyExists):
        files.mkdir("/M/a/b/f.txt")
    with pytest.raises(PreconditionFailed, match="recursive=True"):
        files.delete("/M/a")  # non-empty without recursive: refused on both services
    assert files.exists("/M/a/b/f.txt")

    moved = files.move("/M/a/b/f.txt", "/M/renamed.txt")
    assert moved.path == "/M/renamed.txt" and moved.name == "renamed.txt"
    assert not files.exists("/M/a/b/f.txt") and files.read_bytes("/M/renamed.txt") == b"f"
    copied = files.copy("/M/renamed.txt", "/M/c/copy.txt")
    assert copied.id != moved.id and files.read_bytes("/M/c/copy.txt") == b"f"
    files.write_bytes("/M/other.txt", b"other")
    with pytest.raises(AlreadyExists):
        files.move("/M/other.txt", "/M/renamed.txt")
    assert files.move("/M/other.txt", "/M/renamed.txt", overwrite=True).path == "/M/renamed.txt"
    assert files.read_bytes("/M/renamed.txt") == b"other"
    folder_copy = files.copy("/M/a", "/M/a2")
    assert folder_copy.kind == "folder" and files.exists("/M/a2/b")

    files.delete("/M/renamed.txt")
    assert not files.exists("/M/renamed.txt")
    with pytest.raises(NotFound):
        files.delete("/M/renamed.txt")
    files.delete("/M/renamed.txt", missing_ok=True)
    files.delete("/M/a", recursive=True)
    assert not files.exists("/M/a") and not files.exists("/M/a/b")


def test_error_tree_keeps_transport_apart_from_service() -> None:
    assert issubclass(NotFound, ServiceError) and issubclass(PreconditionFailed, ServiceError)
    assert not issubclass(TransportError, ServiceError) and not issubclass(ServiceError, TransportError)
    assert issubclass(ChecksumMismatch, TransferError) and not issubclass(ChecksumMismatch, ServiceError)
    assert issubclass(UnsafePath, InvalidArgument)
    with pytest.raises(UnsafePath):
        safe_local_child("/tmp/x", "../etc/passwd")
    assert safe_local_child("/tmp/x", "ok.txt") == Path("/tmp/x/ok.txt")


def test_old_error_names_warn_once_and_alias_the_new_ones() -> None:
    reset_warnings()
    import dropbox_box_provider.errors as errors

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert errors.ItemNotFound is NotFound
        assert errors.ItemNotFound is NotFound
    messages = [str(w.message) for w in caught if w.category is DeprecationWarning]
    assert messages == [
        "dropbox_box_provider.errors.ItemNotFound is deprecated; use dropbox_box_provider.errors.NotFound"
    ]


def test_conventional_conn_id_keywords_and_wrong_type(
    monkeypatch: pytest.MonkeyPatch, emulated_services: EmulatedServices, tmp_path: Path
) -> None:
    assert DropboxHook(dropbox_conn_id="a").conn_id == "a" and BoxHook(box_conn_id="b").conn_id == "b"
    with pytest.raises(InvalidArgument, match="pass only one"):
        DropboxHook("a", dropbox_conn_id="b")
    with pytest.raises(TypeError):
        DropboxHook(box_conn_id="a")
    box_helpers.box_oauth_connection(monkeypatch, emulated_services, tmp_path, "typed_box")
    with pytest.raises(AuthConfigError, match=r"'box_oauth' is a Box connection.*use BoxHook"):
        DropboxHook("typed_box").get_auth_config()
    dropbox_helpers.dropbox_connection(monkeypatch, emulated_services, tmp_path, "typed_dropbox")
    with pytest.raises(AuthConfigError, match=r"'dropbox' is a Dropbox connection.*use DropboxHook"):
        BoxHook("typed_dropbox").get_auth_config()


def test_old_method_names_warn_once_naming_the_new_call(files: BaseOAuthHook) -> None:
    reset_warnings()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if isinstance(files, DropboxHook):
            files.create_folder("/Old")
            files.create_folder("/Old")
            files.write_bytes("/Old/x.txt", b"x", mode="add")
            assert files.get_metadata("/Old/x.txt")["name"] == "x.txt"
        else:
            assert isinstance(files, BoxHook)
            files.create_folder("/Old")
            files.create_folder("/Old")
            files.write_bytes(b"x", "/Old/x.txt")  # the old argument order
            old_order = files.write_bytes(b"y", "/Old", "y.txt", True)  # (data, folder, name, overwrite)
            assert (old_order.path, files.read_bytes("/Old/y.txt")) == ("/Old/y.txt", b"y")
            assert files.get_file_info("/Old/x.txt")["name"] == "x.txt"
    messages = [str(w.message) for w in caught if w.category is DeprecationWarning]
    assert len(messages) == 3, messages  # create_folder warned once, not twice
    assert any("use" in m and ".mkdir()" in m for m in messages)
    assert any(".info()" in m for m in messages)
