"""Hooks against the failures the real services produce (issue 16), each made real by the emulator:
Dropbox write contention (409 too_many_write_operations), a bad Select-User/Select-Admin member id, and
Box download links that expire before they are used."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from dropbox_box_provider.emulator import seed
from dropbox_box_provider.errors import AuthConfigError, ServiceError
from dropbox_box_provider.hooks.box import BoxHook
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
