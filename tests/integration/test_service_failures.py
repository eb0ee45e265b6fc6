"""Hooks against the failures the real services produce (issue 16), each made real by the emulator:
Dropbox write contention (409 too_many_write_operations), a bad Select-User/Select-Admin member id, and
Box download links that expire before they are used."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from dropbox_box_provider.emulator import seed
from dropbox_box_provider.errors import (
    AlreadyExists,
    AuthConfigError,
    ChecksumMismatch,
    NotFound,
    ServiceError,
)
from dropbox_box_provider.hooks.box import CHUNKED_THRESHOLD, BoxHook
from dropbox_box_provider.hooks.box import upload as box_upload
from dropbox_box_provider.hooks.dropbox import DropboxHook
from tests.fixtures.emulator import RunningEmulator
from tests.helpers.box import box_oauth_connection
from tests.helpers.dropbox import FAST, dropbox_connection

MiB = 1024 * 1024


@pytest.fixture(autouse=True)
def airflow_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow_home"))
    monkeypatch.setenv("AIRFLOW__CORE__FERNET_KEY", Fernet.generate_key().decode())


@pytest.fixture
def dropbox_hook(
    monkeypatch: pytest.MonkeyPatch, fresh_emulator: RunningEmulator, tmp_path: Path
) -> Iterator[DropboxHook]:
    dropbox_connection(monkeypatch, fresh_emulator, tmp_path, "dbx_contention")
    hook = DropboxHook("dbx_contention", retry_policy=FAST)
    yield hook
    hook.close()


@pytest.fixture
def box_hook(
    monkeypatch: pytest.MonkeyPatch, fresh_emulator: RunningEmulator, tmp_path: Path
) -> Iterator[BoxHook]:
    box_oauth_connection(monkeypatch, fresh_emulator, tmp_path, "box_links")
    hook = BoxHook("box_links", retry_policy=FAST)
    yield hook
    hook.close()


def routes(emu: RunningEmulator, service: str) -> dict[str, dict[str, int]]:
    result: dict[str, dict[str, int]] = emu.client.stats()[service]["routes"]
    return result


def refreshes(emu: RunningEmulator, service: str) -> int:
    return int(emu.client.stats()[service]["token"]["refresh_token"]["ok"])


def test_dropbox_too_many_write_operations_is_retried_like_a_429(
    dropbox_hook: DropboxHook, fresh_emulator: RunningEmulator, tmp_path: Path
) -> None:
    faults = fresh_emulator.client
    faults.fault("*/2/files/create_folder_v2", error="too_many_write_operations", count=2)
    assert dropbox_hook.create_folder("/busy")["name"] == "busy"
    faults.fault("*/2/files/upload", error="too_many_write_operations", count=2)
    assert dropbox_hook.write_bytes("/busy/a.txt", b"contended")["size"] == 9
    source = tmp_path / "s.bin"
    source.write_bytes(b"s" * (4 * MiB + 7))
    faults.fault("*/files/upload_session/finish", error="too_many_write_operations", count=2)
    session = dropbox_hook.upload_file(
        source, "/busy/s.bin", chunk_size=4 * MiB, single_request_limit=4 * MiB
    )
    assert session["size"] == 4 * MiB + 7
    faults.fault("*/2/files/delete_v2", error="too_many_write_operations", count=2)
    dropbox_hook.delete("/busy/a.txt")  # RemoteFiles.delete returns None; the file must be gone
    assert not dropbox_hook.exists("/busy/a.txt")
    stats = routes(fresh_emulator, "dropbox")
    for route in ("create_folder_v2", "upload", "upload_session/finish", "delete_v2"):
        assert stats[f"/2/files/{route}"] == {"409": 2, "200": 1}, route
    assert dropbox_hook.read_bytes("/busy/s.bin") == source.read_bytes()
    assert not dropbox_hook.exists("/busy/a.txt")


def test_dropbox_write_contention_past_the_retry_budget_is_raised(
    dropbox_hook: DropboxHook, fresh_emulator: RunningEmulator
) -> None:
    fresh_emulator.client.fault("*/2/files/upload", error="too_many_write_operations", count=50)
    with pytest.raises(ServiceError, match="too_many_write_operations past the retry budget") as caught:
        dropbox_hook.write_bytes("/never.txt", b"x")
    assert caught.value.status == 409 and caught.value.code == "path/too_many_write_operations"
    assert "run the task again later" in str(caught.value)
    assert routes(fresh_emulator, "dropbox")["/2/files/upload"]["409"] == FAST.max_attempts


def test_dropbox_invalid_select_user_is_a_configuration_error_without_refresh(
    monkeypatch: pytest.MonkeyPatch, fresh_emulator: RunningEmulator, tmp_path: Path
) -> None:
    member = "dbmid:nobody"
    dropbox_connection(
        monkeypatch,
        fresh_emulator,
        tmp_path,
        "dbx_bad_member",
        client_id=seed.DEMO_DROPBOX_TEAM_CLIENT_ID,
        select_user=member,
    )
    hook = DropboxHook("dbx_bad_member", retry_policy=FAST)
    hook.get_access_token()
    before = refreshes(fresh_emulator, "dropbox")
    for _ in range(2):
        with pytest.raises(AuthConfigError) as caught:
            hook.get_current_account()
        assert member in str(caught.value)
    assert refreshes(fresh_emulator, "dropbox") == before, "a bad member id is not an expired token"
    assert hook.get_access_token(), "the stored tokens stay usable"


def test_box_expired_download_link_is_fetched_again(
    box_hook: BoxHook, fresh_emulator: RunningEmulator, tmp_path: Path
) -> None:
    data = b"expiring link " * 1000
    entry = box_hook.write_bytes(data, "/links/file.bin")
    fresh_emulator.client.configure(box_download_link_ttl=0.3)
    # The first use of the link is held past its lifetime, so the download host answers 403.
    fresh_emulator.client.fault("*/dl.boxcloud.com/*", delay=0.6, count=1)
    target = box_hook.download_file(entry["id"], tmp_path / "out.bin")
    assert target.read_bytes() == data
    stats = routes(fresh_emulator, "box")
    link_answers = [counts for route, counts in stats.items() if route.startswith("/d/1/")]
    assert sorted(status for counts in link_answers for status in counts) == ["200", "403"]
    assert stats[f"/2.0/files/{entry['id']}/content"] == {"302": 2}


def test_dropbox_recursive_listing_yields_only_what_is_under_the_folder(dropbox_hook: DropboxHook) -> None:
    """Dropbox lists the folder itself first in a recursive listing; the hook yields only its contents."""
    dropbox_hook.write_bytes("/tree/sub/leaf.txt", b"leaf")
    expected = ["/tree/sub", "/tree/sub/leaf.txt"]
    assert [e["path_display"] for e in dropbox_hook.list_folder("/Tree", recursive=True)] == expected
    folder_id = dropbox_hook.get_metadata("/tree")["id"]
    assert [
        e["path_display"] for e in dropbox_hook.list_folder(folder_id, recursive=True, limit=1)
    ] == expected

    async def listed() -> list[str]:
        names = [e["path_display"] async for e in dropbox_hook.alist_folder("/tree", recursive=True)]
        await dropbox_hook.aclose()
        return names

    assert asyncio.run(listed()) == expected
    root = [e["path_display"] for e in dropbox_hook.list_folder("", recursive=True)]
    assert root == ["/tree", *expected]


def test_box_chunked_commit_parts_mismatch_is_retried_after_listing_the_parts(
    box_hook: BoxHook, fresh_emulator: RunningEmulator, tmp_path: Path
) -> None:
    """Right after the last part Box may answer the commit 400 ``parts_mismatch``: list, commit again."""
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(CHUNKED_THRESHOLD + 3))
    fresh_emulator.client.fault("*/upload_sessions/*/commit", error="parts_mismatch", count=2)
    entry = box_hook.upload_file(source, "/chunked/big.bin")
    assert entry.content_hash == hashlib.sha1(source.read_bytes(), usedforsecurity=False).hexdigest()
    assert box_hook.read_bytes("/chunked/big.bin") == source.read_bytes()
    stats = routes(fresh_emulator, "box")
    commits = [c for r, c in stats.items() if r.endswith("/commit")]
    listings = [c for r, c in stats.items() if r.endswith("/parts")]
    assert commits == [{"400": 2, "201": 1}] and listings == [{"200": 2}]


def test_box_chunked_commit_with_a_wrong_digest_is_digest_mismatch(
    box_hook: BoxHook, fresh_emulator: RunningEmulator
) -> None:
    """A commit whose whole-file Digest is wrong is Box's ``digest_mismatch``, raised as ChecksumMismatch."""
    size = CHUNKED_THRESHOLD + 1
    folder = box_hook.mkdir("/digest")
    session = box_hook.request(
        "POST",
        f"{box_upload.UPLOAD}/files/upload_sessions",
        json={"folder_id": folder.id, "file_size": size, "file_name": "d.bin"},
        expected=(201,),
    ).json()
    data = os.urandom(size)
    part_size = int(session["part_size"])
    parts = []
    for offset in range(0, size, part_size):
        piece = data[offset : offset + part_size]
        digest = hashlib.sha1(piece, usedforsecurity=False).digest()
        answer = box_hook.request(
            "PUT",
            box_hook.as_real_url(session["session_endpoints"]["upload_part"]),
            content=piece,
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Range": f"bytes {offset}-{offset + len(piece) - 1}/{size}",
                "Digest": f"sha={box_upload.b64_sha1(digest)}",
            },
        )
        parts.append(answer.json()["part"])
    wrong = hashlib.sha1(b"not the file", usedforsecurity=False).digest()
    with pytest.raises(ChecksumMismatch) as caught:
        box_upload.commit(box_hook, session["session_endpoints"]["commit"], parts, wrong, "d.bin")
    assert caught.value.code == "digest_mismatch" and "upload it again" in str(caught.value)
    assert not box_hook.exists("/digest/d.bin")


@pytest.mark.parametrize("operation", ["copy", "move"])
def test_dropbox_copy_and_move_onto_identical_content_succeed(
    dropbox_hook: DropboxHook, operation: str
) -> None:
    """A resent copy/move (its first answer lost) finds its own result at the target: success."""
    dropbox_hook.write_bytes("/rel/src.txt", b"same bytes")
    existing = dropbox_hook.write_bytes("/rel/dst.txt", b"same bytes")
    result = getattr(dropbox_hook, operation)("/rel/src.txt", "/rel/dst.txt")
    assert result.id == existing.id and result.content_hash == existing.content_hash
    assert dropbox_hook.read_bytes("/rel/dst.txt") == b"same bytes"
    assert dropbox_hook.exists("/rel/src.txt") is (operation == "copy")
    dropbox_hook.write_bytes("/rel/other.txt", b"other bytes")
    with pytest.raises(AlreadyExists, match="overwrite=True"):
        getattr(dropbox_hook, operation)("/rel/other.txt", "/rel/dst.txt")
    assert dropbox_hook.read_bytes("/rel/dst.txt") == b"same bytes"


@pytest.mark.parametrize("operation", ["copy", "move"])
def test_box_copy_and_move_onto_identical_content_succeed(box_hook: BoxHook, operation: str) -> None:
    """Box answers 409 ``item_name_in_use`` with the existing file: identical SHA-1 is success."""
    box_hook.write_bytes("/rel/src.txt", b"same bytes")
    existing = box_hook.write_bytes("/rel/dst.txt", b"same bytes")
    result = getattr(box_hook, operation)("/rel/src.txt", "/rel/dst.txt")
    assert result.id == existing.id and result.content_hash == existing.content_hash
    assert box_hook.read_bytes("/rel/dst.txt") == b"same bytes"
    assert box_hook.exists("/rel/src.txt") is (operation == "copy")
    box_hook.write_bytes("/rel/other.txt", b"other bytes")
    with pytest.raises(AlreadyExists, match="overwrite=True"):
        getattr(box_hook, operation)("/rel/other.txt", "/rel/dst.txt")
    assert box_hook.read_bytes("/rel/dst.txt") == b"same bytes"


def test_dropbox_delete_resent_after_a_lost_answer_is_done(
    dropbox_hook: DropboxHook, fresh_emulator: RunningEmulator
) -> None:
    """The first delete_v2 deletes but its answer is lost; the resent one finds ``not_found``: success."""
    dropbox_hook.write_bytes("/lost/a.txt", b"a")
    fresh_emulator.client.fault("*/2/files/delete_v2", drop_after=True)
    dropbox_hook.delete("/lost/a.txt")
    assert not dropbox_hook.exists("/lost/a.txt")
    assert routes(fresh_emulator, "dropbox")["/2/files/delete_v2"] == {"0": 1, "409": 1}
    with pytest.raises(NotFound):  # without a lost answer, a missing path is still NotFound
        dropbox_hook.delete("/lost/a.txt")


def test_box_folder_create_resent_after_a_lost_answer_is_done(
    box_hook: BoxHook, fresh_emulator: RunningEmulator
) -> None:
    """The first POST /folders creates but its answer is lost; the resent one finds ``item_name_in_use`` in
    the same parent: the folder is the one this call made, even with exist_ok=False."""
    fresh_emulator.client.fault("*/2.0/folders", drop_after=True)
    made = box_hook.mkdir("/made", exist_ok=False)
    assert made.kind == "folder" and box_hook.info("/made").id == made.id
    assert routes(fresh_emulator, "box")["/2.0/folders"] == {"0": 1, "409": 1}
    with pytest.raises(AlreadyExists, match="exist_ok=True"):  # an existing folder without a lost answer
        box_hook.mkdir("/made", exist_ok=False)


def test_box_chunked_commit_resent_after_a_lost_answer_finds_the_file(
    box_hook: BoxHook, fresh_emulator: RunningEmulator, tmp_path: Path
) -> None:
    """The first commit assembles the file but its answer is lost; the resent one finds the session gone:
    the file this upload made (same name, same SHA-1) is the result."""
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(CHUNKED_THRESHOLD + 5))
    fresh_emulator.client.fault("*/upload_sessions/*/commit", drop_after=True)
    entry = box_hook.upload_file(source, "/lostcommit/big.bin")
    assert entry.content_hash == hashlib.sha1(source.read_bytes(), usedforsecurity=False).hexdigest()
    assert box_hook.info("/lostcommit/big.bin").id == entry.id
    commits = [c for r, c in routes(fresh_emulator, "box").items() if r.endswith("/commit")]
    assert len(commits) == 1 and commits[0]["0"] == 1
