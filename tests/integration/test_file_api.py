"""Search, temporary and shared links, versions and Box If-Match: each runs against DropboxHook and BoxHook
over loopback to the emulator, through real Airflow connections (unicode names, several result pages)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet

from dropbox_box_provider.content_hash import dropbox_content_hash
from dropbox_box_provider.errors import InvalidArgument, NotFound, PreconditionFailed
from dropbox_box_provider.hooks.base import BaseOAuthHook
from dropbox_box_provider.hooks.box import BoxHook
from dropbox_box_provider.hooks.box import file_api as box_file_api
from dropbox_box_provider.hooks.dropbox import file_api as dropbox_file_api
from dropbox_box_provider.hooks.files import RemoteFiles, RemoteVersion
from tests.fixtures.emulator import RunningEmulator
from tests.helpers import box as box_helpers
from tests.helpers.dropbox import FAST
from tests.helpers.hooks import service_hook


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
) -> Iterator[Any]:
    """A hook of either service, empty tree (a fresh emulator per test)."""
    hook = service_hook(request.param, monkeypatch, fresh_emulator, tmp_path, "api")
    yield hook
    hook.close()


@pytest.fixture
def box(
    monkeypatch: pytest.MonkeyPatch, fresh_emulator: RunningEmulator, tmp_path: Path
) -> Iterator[BoxHook]:
    box_helpers.box_oauth_connection(monkeypatch, fresh_emulator, tmp_path, "etag_box")
    hook = BoxHook("etag_box", retry_policy=FAST)
    yield hook
    hook.close()


def expected_hash(hook: BaseOAuthHook, data: bytes) -> str:
    if hook.service == "dropbox":
        return dropbox_content_hash(data)
    return hashlib.sha1(data, usedforsecurity=False).hexdigest()


def search_requests(emulator: RunningEmulator, service: str) -> int:
    routes = emulator.client.stats()[service]["routes"]
    names = (
        ("/2/files/search_v2", "/2/files/search/continue_v2") if service == "dropbox" else ("/2.0/search",)
    )
    return sum(routes.get(name, {}).get("200", 0) for name in names)


def test_both_hooks_still_implement_the_protocol(files: Any) -> None:
    assert isinstance(files, RemoteFiles)


def test_search_names_case_insensitively_under_a_path_over_several_pages(
    files: Any, fresh_emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    for index in range(5):
        files.write_bytes(f"/Séarch/Ünïcode Report {index}.csv", b"x")
    files.write_bytes("/Séarch/sub/ünïcode report deep.txt", b"y")
    files.write_bytes("/Séarch/unrelated.txt", b"z")
    files.write_bytes("/Other/ünïcode report elsewhere.csv", b"w")
    module = dropbox_file_api if files.service == "dropbox" else box_file_api
    monkeypatch.setattr(module, "SEARCH_PAGE", 2)  # five matches below /Séarch: three pages
    before = search_requests(fresh_emulator, files.service)
    found = list(files.search("ÜNÏCODE REPORT", path="/séarch"))
    assert sorted(e.path for e in found) == sorted(
        [f"/Séarch/Ünïcode Report {i}.csv" for i in range(5)] + ["/Séarch/sub/ünïcode report deep.txt"]
    )
    assert all(e.kind == "file" and e.id for e in found)
    assert search_requests(fresh_emulator, files.service) - before >= 3, "more than one page was read"
    everywhere = sorted(e.path for e in files.search("report"))
    assert "/Other/ünïcode report elsewhere.csv" in everywhere and len(everywhere) == 7
    assert len(list(files.search("report", limit=3))) == 3
    assert [e.kind for e in files.search("séarch")] == ["folder"]
    assert list(files.search("no such name")) == []
    with pytest.raises(NotFound):
        list(files.search("report", path="/missing folder"))
    with pytest.raises(InvalidArgument):
        files.search("  ")
    with pytest.raises(InvalidArgument):
        files.search("x", limit=0)


def test_temporary_link_downloads_without_a_token(files: Any) -> None:
    data = "naïve café ☕".encode() * 100
    files.write_bytes("/Links/naïve ☕.txt", data)
    link = files.temporary_link("/links/NAÏVE ☕.txt")
    assert isinstance(link, str) and link.startswith("http")
    answer = httpx.get(link, follow_redirects=False)
    assert answer.status_code == 200 and answer.content == data
    assert httpx.get(link, headers={"Range": "bytes=0-4"}).content == data[:5]
    with pytest.raises(InvalidArgument):
        files.temporary_link("/Links")
    with pytest.raises(NotFound):
        files.temporary_link("/Links/missing.txt")


def test_shared_link_is_stable_when_asked_again(files: Any) -> None:
    files.write_bytes("/Shared/résumé.pdf", b"%PDF")
    files.mkdir("/Shared/Földer")
    url = files.shared_link("/Shared/résumé.pdf")
    assert url.startswith("https://")
    assert files.shared_link("/shared/RÉSUMÉ.pdf") == url, "an existing link is returned, not an error"
    expires = datetime.now(UTC) + timedelta(days=7)
    team = files.shared_link("/Shared/Földer", access="team", expires=expires)
    assert team.startswith("https://") and team != url
    with pytest.raises(InvalidArgument):
        files.shared_link("/Shared/résumé.pdf", access="everyone")
    with pytest.raises(NotFound):
        files.shared_link("/Shared/missing.pdf")
    if files.service == "dropbox":
        with pytest.raises(InvalidArgument, match="team"):
            files.shared_link("/Shared/résumé.pdf", access="collaborators")
    else:
        assert files.shared_link("/Shared/résumé.pdf", access="collaborators") == url
        assert files.info("/Shared/résumé.pdf").raw["shared_link"]["access"] == "collaborators"
        with pytest.raises(InvalidArgument, match="public"):
            files.shared_link("/Shared/résumé.pdf", access="team", password="s3cret-pass")
        assert files.shared_link("/Shared/résumé.pdf", password="s3cret-pass") == url


def test_versions_newest_first_and_download_of_an_earlier_one(
    files: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(box_file_api, "VERSIONS_PAGE", 1)  # Box: each earlier version on a page of its own
    contents = [b"first", b"second!", "третий".encode()]
    files.write_bytes("/Versions/dåta.bin", contents[0])
    for data in contents[1:]:
        files.write_bytes("/Versions/dåta.bin", data, overwrite=True)
    versions = files.versions("/versions/DÅTA.bin")
    assert all(isinstance(v, RemoteVersion) for v in versions)
    assert [v.current for v in versions] == [True, False, False]
    assert [v.content_hash for v in versions] == [expected_hash(files, d) for d in reversed(contents)]
    assert [v.size for v in versions] == [len(d) for d in reversed(contents)]
    assert len({v.id for v in versions}) == 3 and all(v.modified is not None for v in versions)
    oldest = files.download_file("/Versions/dåta.bin", tmp_path / "oldest.bin", version=versions[-1].id)
    assert oldest.read_bytes() == contents[0]
    current = files.download_file("/Versions/dåta.bin", tmp_path / "current.bin", versions[0].id)
    assert current.read_bytes() == contents[-1]
    assert versions[1].to_dict()["content_hash"] == expected_hash(files, contents[1])
    files.write_bytes("/Versions/other.bin", b"other")
    other = files.versions("/Versions/other.bin")
    assert len(other) == 1 and other[0].current
    with pytest.raises((NotFound, InvalidArgument)):
        files.download_file("/Versions/other.bin", tmp_path / "wrong.bin", version=versions[-1].id)
    assert not (tmp_path / "wrong.bin").exists()
    with pytest.raises(InvalidArgument):
        files.versions("/Versions")


# Box If-Match ------------------------------------------------------------------------------------------


def test_box_etag_refuses_lost_updates(box: BoxHook, tmp_path: Path) -> None:
    first = box.write_bytes("/Etag/ä.txt", b"one")
    assert first.etag is not None
    second = box.write_bytes("/Etag/ä.txt", b"two", overwrite=True)
    assert second.etag != first.etag
    local = tmp_path / "three.txt"
    local.write_bytes(b"three")
    with pytest.raises(PreconditionFailed, match="etag") as stale:
        box.upload_file(local, "/Etag/ä.txt", etag=first.etag)
    assert stale.value.status == 412
    assert box.read_bytes("/Etag/ä.txt") == b"two", "the stale write changed nothing"
    third = box.upload_file(local, "/Etag/ä.txt", etag=second.etag)
    assert box.read_bytes("/Etag/ä.txt") == b"three" and third.id == first.id
    with pytest.raises(PreconditionFailed):
        box.upload_file(local, "/Etag/absent.txt", etag=second.etag)
    with pytest.raises(PreconditionFailed):
        box.move("/Etag/ä.txt", "/Etag/moved.txt", etag=second.etag)
    with pytest.raises(PreconditionFailed):
        box.delete("/Etag/ä.txt", etag=first.etag)
    assert box.exists("/Etag/ä.txt")
    moved = box.move("/Etag/ä.txt", "/Etag/moved ä.txt", etag=box.info("/Etag/ä.txt").etag)
    assert moved.path == "/Etag/moved ä.txt"
    box.delete("/Etag/moved ä.txt", etag=moved.etag)
    assert not box.exists("/Etag/moved ä.txt")
    box.mkdir("/Etag/sub")
    box.delete("/Etag/sub", etag=box.info("/Etag/sub").etag)
    assert not box.exists("/Etag/sub")


def test_box_etag_upload_resent_after_a_lost_answer_succeeds(
    box: BoxHook, fresh_emulator: RunningEmulator, tmp_path: Path
) -> None:
    entry = box.write_bytes("/Lost/a.txt", b"one")
    local = tmp_path / "a.txt"
    local.write_bytes(b"two, written once")
    fresh_emulator.client.fault(
        f"/upload.box.com/api/2.0/files/{entry.id}/content", drop=True, drop_after=True
    )
    done = box.upload_file(local, "/Lost/a.txt", etag=entry.etag)
    assert done.id == entry.id and box.read_bytes("/Lost/a.txt") == b"two, written once"
    routes = fresh_emulator.client.stats()["box"]["routes"][f"/2.0/files/{entry.id}/content"]
    assert routes.get("412") == 1, "the resend met the etag its own first attempt had changed"


def test_box_delete_resent_after_a_lost_answer_succeeds(
    box: BoxHook, fresh_emulator: RunningEmulator
) -> None:
    entry = box.write_bytes("/Lost/gone.txt", b"bye")
    assert box.info("/Lost/gone.txt").id == entry.id  # resolved: the delete sends only its DELETE
    fresh_emulator.client.fault(f"/api.box.com/2.0/files/{entry.id}", drop=True, drop_after=True)
    box.delete("/Lost/gone.txt")
    assert not box.exists("/Lost/gone.txt")


def test_box_path_remembered_by_one_hook_follows_a_move_by_another(
    box: BoxHook, monkeypatch: pytest.MonkeyPatch, fresh_emulator: RunningEmulator, tmp_path: Path
) -> None:
    box_helpers.box_oauth_connection(monkeypatch, fresh_emulator, tmp_path, "etag_box_other")
    other = BoxHook("etag_box_other", retry_policy=FAST)
    try:
        box.write_bytes("/P/a.txt", b"a")
        box.write_bytes("/P/b.txt", b"b")
        assert box.exists("/P/a.txt") and box.exists("/P/b.txt")  # both paths now remembered by `box`
        other.move("/P/a.txt", "/Q/a.txt")  # another worker moves one, renames the other
        other.move("/P/b.txt", "/P/c.txt")
        assert not box.exists("/P/a.txt") and not box.exists("/P/b.txt")
        assert box.info("/Q/a.txt").path == "/Q/a.txt" and box.read_bytes("/P/c.txt") == b"b"
    finally:
        other.close()


# Every operation on a file found in a folder of several listing pages -------------------------------------


def folder_item_pages(emulator: RunningEmulator, folder_id: str) -> int:
    """Box folder listing pages the emulator served for ``folder_id``."""
    routes = emulator.client.stats()["box"]["routes"]
    return int(routes.get(f"/2.0/folders/{folder_id}/items", {}).get("200", 0))


def test_each_operation_on_files_in_a_folder_of_several_pages(
    files: Any, fresh_emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Search, temporary and shared links (password, expiry), versions and a versioned download, each from
    a hook that has not seen the folder: on Box the path resolver pages through the folder (2 items a page)
    to reach names on its last page; on Dropbox listings are paged the same way."""
    from dropbox_box_provider.hooks.box import hook as box_hook_module
    from dropbox_box_provider.hooks.dropbox import DropboxHook

    monkeypatch.setattr(box_hook_module, "LIST_LIMIT", 2)
    list_arg = DropboxHook._list_arg
    monkeypatch.setattr(
        DropboxHook,
        "_list_arg",
        staticmethod(lambda path, recursive, limit: list_arg(path, recursive, limit or 2)),
    )
    module = dropbox_file_api if files.service == "dropbox" else box_file_api
    monkeypatch.setattr(module, "SEARCH_PAGE", 2)
    monkeypatch.setattr(box_file_api, "VERSIONS_PAGE", 1)
    folder = "/Crowded ünï"
    for index in range(6):
        files.write_bytes(f"{folder}/ärchive {index}.bin", b"filler")
    target, shared, team = (
        f"{folder}/Ωmega zürich.txt",
        f"{folder}/Ωmega shared.txt",
        f"{folder}/Ωmega team.txt",
    )
    contents = [b"first", "второй".encode()]
    files.write_bytes(target, contents[0])
    files.write_bytes(target, contents[1], overwrite=True)
    files.write_bytes(shared, b"shared")
    files.write_bytes(team, b"team")
    folder_id = files.info(folder).id
    assert len(list(files.list(folder))) == 9  # five pages of two
    hooks: list[Any] = []

    def fresh() -> Any:
        """A hook of the same connection that has resolved nothing yet."""
        hooks.append(type(files)(files.conn_id, retry_policy=FAST))
        return hooks[-1]

    def pages_read(action: Any) -> Any:
        before = folder_item_pages(fresh_emulator, folder_id)
        result = action()
        if files.service == "box":
            assert folder_item_pages(fresh_emulator, folder_id) - before >= 2, "the folder was paged through"
        return result

    try:
        link = pages_read(lambda: fresh().temporary_link(target.upper()))
        assert httpx.get(link).content == contents[1]

        url = pages_read(lambda: fresh().shared_link(shared, password="s3cret-pass"))
        assert fresh().shared_link(shared.lower(), password="s3cret-pass") == url
        expires = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)
        team_url = pages_read(lambda: fresh().shared_link(team, access="team", expires=expires))
        assert team_url.startswith("https://") and team_url != url
        if files.service == "box":
            protected = files.info(shared).raw["shared_link"]
            assert protected["access"] == "open" and protected["is_password_enabled"]
            company = files.info(team).raw["shared_link"]
            assert company["access"] == "company"
            assert datetime.fromisoformat(company["unshared_at"]) == expires
        else:
            protected, limited = (existing_dropbox_link(files, p) for p in (shared, team))
            assert protected["url"] == url and protected["link_permissions"]["require_password"]
            assert limited["url"] == team_url
            assert limited["link_permissions"]["effective_audience"][".tag"] == "team"
            assert limited["expires"] == expires.strftime("%Y-%m-%dT%H:%M:%SZ")

        versions = pages_read(lambda: fresh().versions(target))
        assert [v.content_hash for v in versions] == [expected_hash(files, d) for d in reversed(contents)]
        earlier = pages_read(
            lambda: fresh().download_file(target, tmp_path / "earlier.bin", version=versions[1].id)
        )
        assert earlier.read_bytes() == contents[0]

        before = search_requests(fresh_emulator, files.service)
        found = list(fresh().search("ΩMEGA", path=folder))  # three matches, two a page
        assert sorted(e.path for e in found) == sorted([target, shared, team])
        assert search_requests(fresh_emulator, files.service) - before >= 2, "more than one page was read"
    finally:
        for hook in hooks:
            hook.close()


def existing_dropbox_link(hook: Any, path: str) -> dict[str, Any]:
    """The link Dropbox keeps for ``path``, as its ``shared_link_already_exists`` answer carries it."""
    from dropbox_box_provider.auth.services import DROPBOX

    answer = hook.request(
        "POST",
        f"{DROPBOX.api_base}/sharing/create_shared_link_with_settings",
        json={"path": path},
        expected=(409,),
    ).json()
    existing: dict[str, Any] = answer["error"]["shared_link_already_exists"]["metadata"]
    return existing


def test_box_etag_on_items_in_a_folder_of_several_pages(
    box: BoxHook, fresh_emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """upload_file, move and delete with etag=, each from a hook that pages through the folder to find the
    item: a stale etag is PreconditionFailed and changes nothing; the current one acts."""
    from dropbox_box_provider.hooks.box import hook as box_hook_module

    monkeypatch.setattr(box_hook_module, "LIST_LIMIT", 2)
    folder = "/Étag crowd"
    for index in range(5):
        box.write_bytes(f"{folder}/fïller {index}.txt", b"f")
    first = box.write_bytes(f"{folder}/zébra.txt", b"one")
    second = box.write_bytes(f"{folder}/zébra.txt", b"two", overwrite=True)
    folder_id = box.info(folder).id
    local = tmp_path / "three.txt"
    local.write_bytes(b"three")
    hooks: list[BoxHook] = []

    def fresh() -> BoxHook:
        hooks.append(BoxHook("etag_box", retry_policy=FAST))
        return hooks[-1]

    def paged(action: Any) -> Any:
        before = folder_item_pages(fresh_emulator, folder_id)
        try:
            return action()
        finally:
            assert folder_item_pages(fresh_emulator, folder_id) - before >= 2, "the folder was paged through"

    try:
        with pytest.raises(PreconditionFailed):
            paged(lambda: fresh().upload_file(local, f"{folder}/zébra.txt", etag=first.etag))
        third = paged(lambda: fresh().upload_file(local, f"{folder}/ZÉBRA.txt", etag=second.etag))
        assert box.read_bytes(f"{folder}/zébra.txt") == b"three"
        with pytest.raises(PreconditionFailed):
            paged(lambda: fresh().move(f"{folder}/zébra.txt", f"{folder}/züg.txt", etag=second.etag))
        moved = paged(lambda: fresh().move(f"{folder}/zébra.txt", f"{folder}/züg.txt", etag=third.etag))
        assert moved.path == f"{folder}/züg.txt"
        with pytest.raises(PreconditionFailed):
            paged(lambda: fresh().delete(f"{folder}/züg.txt", etag=second.etag))
        assert fresh().exists(f"{folder}/züg.txt")
        paged(lambda: fresh().delete(f"{folder}/züg.txt", etag=moved.etag))
        assert not fresh().exists(f"{folder}/züg.txt")
    finally:
        for hook in hooks:
            hook.close()


def test_box_etag_move_to_another_folder_refuses_a_lost_update(box: BoxHook) -> None:
    """Box documents that If-Match cannot prevent a move to another folder (it always moves the latest
    item), and the emulator does the same: the hook itself must refuse a stale etag, for files and
    folders, and still move with the current one."""
    first = box.write_bytes("/From/ä.txt", b"one")
    second = box.write_bytes("/From/ä.txt", b"two", overwrite=True)
    box.mkdir("/To")
    with pytest.raises(PreconditionFailed, match="etag"):
        box.move("/From/ä.txt", "/To/ä.txt", etag=first.etag)
    assert box.read_bytes("/From/ä.txt") == b"two" and not box.exists("/To/ä.txt"), "nothing moved"
    moved = box.move("/From/ä.txt", "/To/ä moved.txt", etag=second.etag)
    assert moved.path == "/To/ä moved.txt" and box.read_bytes("/To/ä moved.txt") == b"two"
    assert not box.exists("/From/ä.txt")
    box.mkdir("/From/sub")
    folder = box.info("/From/sub")
    box.write_bytes("/From/sub/x.txt", b"x")  # a folder's etag moves when its content changes
    stale = folder.etag if box.info("/From/sub").etag != folder.etag else "stale-etag"
    with pytest.raises(PreconditionFailed):
        box.move("/From/sub", "/To/sub", etag=stale)
    assert box.exists("/From/sub/x.txt") and not box.exists("/To/sub")
    assert box.move("/From/sub", "/To/sub", etag=box.info("/From/sub").etag).path == "/To/sub"


def test_box_etag_on_an_upload_session(box: BoxHook, tmp_path: Path) -> None:
    """From 20 MB Box uploads go through a session: its commit carries If-Match, so a stale etag is
    PreconditionFailed and the file keeps its content; the current etag commits the new version."""
    from dropbox_box_provider.hooks.box import CHUNKED_THRESHOLD

    first = box.write_bytes("/Big/dätä.bin", b"small")
    second = box.write_bytes("/Big/dätä.bin", b"small, then changed", overwrite=True)
    big = tmp_path / "big.bin"
    data = bytes(range(256)) * (CHUNKED_THRESHOLD // 256 + 1)
    big.write_bytes(data)
    with pytest.raises(PreconditionFailed, match="etag"):
        box.upload_file(big, "/Big/dätä.bin", etag=first.etag)
    assert box.read_bytes("/Big/dätä.bin") == b"small, then changed"
    done = box.upload_file(big, "/Big/dätä.bin", etag=second.etag)
    assert done.id == first.id and done.size == len(data) and done.etag not in (first.etag, second.etag)
    assert box.info("/Big/dätä.bin").content_hash == hashlib.sha1(data, usedforsecurity=False).hexdigest()
