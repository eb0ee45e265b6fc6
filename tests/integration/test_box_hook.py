"""BoxHook against the emulator over loopback, through real Airflow connections (AIRFLOW_CONN_<ID> JSON).

Schemes: user OAuth (seeded by the emulator's consent + the real code exchange), JWT (the demo app's config
JSON file), CCG (canonical fields and the existing Box provider's extras). Big transfers live in
test_box_hook_transfers.py.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet

from dropbox_box_provider.auth import transport
from dropbox_box_provider.auth.manager import tokens_from_record
from dropbox_box_provider.emulator import seed
from dropbox_box_provider.errors import (
    InvalidRemotePath,
    ItemExists,
    ItemNotFound,
    RateLimited,
    ServiceError,
    TransportError,
)
from dropbox_box_provider.hooks.box import BoxHook
from dropbox_box_provider.testing import EmulatedServices
from tests.helpers.box import (
    box_ccg_connection,
    box_jwt_connection,
    box_oauth_connection,
    set_connection,
)

FAST = transport.RetryPolicy(base_delay=0.05, max_delay=0.2, max_retry_after=2.0, total_budget=10.0)
USER = seed.DEMO_BOX_USER_ID
SECOND_USER = seed.DEMO_BOX_SECOND_USER_ID


@pytest.fixture(autouse=True)
def fernet_key(monkeypatch: pytest.MonkeyPatch) -> str:
    """``[core] fernet_key`` encrypts the token store (no secrets backend is configured here)."""
    key = Fernet.generate_key().decode()
    monkeypatch.setenv("AIRFLOW__CORE__FERNET_KEY", key)
    return key


@pytest.fixture
def emu(emulated_services: EmulatedServices) -> EmulatedServices:
    """The testing kit's emulator, reset for this test."""
    return emulated_services


def make_hook(conn_id: str, **kwargs: Any) -> BoxHook:
    return BoxHook(conn_id, retry_policy=kwargs.pop("retry_policy", FAST), **kwargs)


@pytest.fixture
def oauth(monkeypatch: pytest.MonkeyPatch, emu: EmulatedServices, tmp_path: Path) -> Iterator[BoxHook]:
    """A hook on a Box user-OAuth connection (user 10001, an enterprise admin)."""
    box_oauth_connection(monkeypatch, emu, tmp_path, "box_hook_oauth")
    hook = make_hook("box_hook_oauth")
    yield hook
    hook.close()


def route_count(emu: EmulatedServices, route: str, status: int) -> int:
    return int(emu.client.stats()["box"]["routes"].get(route, {}).get(str(status), 0))


def grants(emu: EmulatedServices, grant: str) -> dict[str, int]:
    """Token-endpoint outcomes of ``grant`` with the zero counts left out."""
    counts = emu.client.stats()["box"]["token"].get(grant, {})
    return {outcome: n for outcome, n in counts.items() if n}


def sha1(data: bytes) -> str:
    return hashlib.sha1(data, usedforsecurity=False).hexdigest()


# ---------------------------------------------------------------------------------------------- identity


def test_current_user_and_connection_test(oauth: BoxHook) -> None:
    user = oauth.get_current_user()
    assert user["id"] == USER
    assert user["login"] == "demo@example.com"
    ok, message = oauth.test_connection()
    assert ok, message
    assert "Demo User" in message and USER in message


def test_jwt_connection_from_box_app_config_file(
    monkeypatch: pytest.MonkeyPatch, emu: EmulatedServices, tmp_path: Path
) -> None:
    box_jwt_connection(monkeypatch, emu, tmp_path, "box_hook_jwt")
    hook = make_hook("box_hook_jwt")
    assert hook.get_auth_config().auth_scheme == "jwt"
    assert hook.get_current_user()["id"] == seed.DEMO_BOX_JWT_SERVICE_ACCOUNT_ID
    entry = hook.write_bytes(b"from the service account", "/svc/hello.txt")
    assert hook.read_bytes(entry["id"]) == b"from the service account"
    assert grants(emu, "urn:ietf:params:oauth:grant-type:jwt-bearer") == {"ok": 1}
    acting = hook.as_user(USER)  # a service account may act as enterprise users
    assert acting.get_current_user()["id"] == USER
    assert not acting.exists("/svc/hello.txt")
    assert grants(emu, "urn:ietf:params:oauth:grant-type:jwt-bearer") == {"ok": 1}  # same token reused


@pytest.mark.parametrize("legacy", [False, True], ids=["canonical", "existing-box-provider-extras"])
def test_ccg_connection(
    monkeypatch: pytest.MonkeyPatch, emu: EmulatedServices, tmp_path: Path, legacy: bool
) -> None:
    box_ccg_connection(monkeypatch, emu, tmp_path, "box_hook_ccg", legacy_extras=legacy)
    hook = make_hook("box_hook_ccg")
    config = hook.get_auth_config()
    assert (config.auth_scheme, config.subject_type, config.subject_id) == (
        "ccg",
        "enterprise",
        seed.DEMO_BOX_ENTERPRISE_ID,
    )
    assert config.client_id == seed.DEMO_BOX_CCG_CLIENT_ID
    assert hook.get_current_user()["id"] == seed.DEMO_BOX_CCG_SERVICE_ACCOUNT_ID
    assert hook.create_folder("/ccg/in") != "0"
    assert [e["name"] for e in hook.list_folder("/ccg")] == ["in"]
    assert grants(emu, "client_credentials") == {"ok": 1}


# ---------------------------------------------------------------------------------------------- paths


def test_paths_and_ids_resolve_and_cache(oauth: BoxHook, emu: EmulatedServices) -> None:
    folder_id = oauth.create_folder("/a/b/c")
    assert folder_id.isdigit() and folder_id != "0"
    assert oauth.get_item_id("/a/b/c") == folder_id
    assert oauth.get_item_id("/A/b/C/") == folder_id  # Box names are case-insensitive
    assert oauth.get_item_id(folder_id) == folder_id
    assert oauth.get_item_id(int(folder_id)) == folder_id
    assert oauth.get_item_id("/") == "0"
    listings = route_count(emu, "/2.0/folders/0/items", 200)
    oauth.get_item_id("/a/b/c")
    assert route_count(emu, "/2.0/folders/0/items", 200) == listings  # served from the hook's cache

    fresh = make_hook(oauth.conn_id)  # a new hook walks from the root
    assert fresh.get_item_id("/a/b/c") == folder_id
    with pytest.raises(ItemNotFound, match="no item at '/a/missing'"):
        fresh.get_item_id("/a/missing")
    with pytest.raises(InvalidRemotePath, match="neither a Box path nor a Box id"):
        fresh.get_item_id("a/b")
    with pytest.raises(InvalidRemotePath, match=r"'\.\.'"):
        fresh.get_item_id("/a/../b")
    with pytest.raises(ItemNotFound, match="999999"):
        fresh.get_file_info("999999")


def test_list_folder_pages_with_markers(oauth: BoxHook, emu: EmulatedServices) -> None:
    names = [f"f{i:02d}.txt" for i in range(7)]
    for name in names:
        oauth.write_bytes(name.encode(), f"/many/{name}")
    oauth.create_folder("/many/sub")
    before = route_count(emu, f"/2.0/folders/{oauth.get_item_id('/many')}/items", 200)
    listed = list(oauth.list_folder("/many", limit=3))
    assert [e["name"] for e in listed] == ["sub", *names]  # folders first, then by name
    assert {e["type"] for e in listed} == {"file", "folder"}
    after = route_count(emu, f"/2.0/folders/{oauth.get_item_id('/many')}/items", 200)
    assert after - before == 3  # 8 items in pages of 3
    assert list(oauth.list_folder(oauth.get_item_id("/many/sub"))) == []
    with pytest.raises(InvalidRemotePath, match="is a file, not a folder"):
        list(oauth.list_folder("/many/f00.txt"))


def test_get_file_info_and_exists(oauth: BoxHook) -> None:
    entry = oauth.write_bytes(b"hello box", "/info/hello.txt")
    info = oauth.get_file_info("/info/hello.txt")
    assert (info["type"], info["id"], info["name"], info["size"]) == ("file", entry["id"], "hello.txt", 9)
    assert info["sha1"] == sha1(b"hello box")
    assert [p["name"] for p in info["path_collection"]["entries"]] == ["All Files", "info"]
    folder = oauth.get_file_info(oauth.get_item_id("/info"))  # an id: the type is found out
    assert folder["type"] == "folder" and folder["name"] == "info"
    assert oauth.exists("/info/hello.txt") and oauth.exists(entry["id"]) and oauth.exists("/info")
    assert not oauth.exists("/info/nope.txt") and not oauth.exists("/nope/deeper")
    assert not oauth.exists("987654321")


def test_create_folder_options(oauth: BoxHook) -> None:
    first = oauth.create_folder("/made/here")
    assert oauth.create_folder("/made/here") == first  # exist_ok by default
    with pytest.raises(ItemExists, match="exist_ok=True"):
        oauth.create_folder("/made/here", exist_ok=False)
    with pytest.raises(ItemNotFound, match="parents=True"):
        oauth.create_folder("/absent/child", parents=False)
    oauth.write_bytes(b"x", "/made/file.txt")
    with pytest.raises(ItemExists, match="is a file"):
        oauth.create_folder("/made/file.txt")
    assert oauth.create_folder("/") == "0"


def test_create_folder_race_reads_the_conflict_id(oauth: BoxHook, emu: EmulatedServices) -> None:
    """Two hooks create the same folder at once: the loser's 409 item_name_in_use names the winner's id."""
    other = make_hook(oauth.conn_id)
    oauth.create_folder("/race")  # both hooks must walk into /race before either creates the child
    other.get_item_id("/race")
    emu.client.fault("/api.box.com/2.0/folders", delay=0.8, count=1)
    result: dict[str, str] = {}
    slow = threading.Thread(target=lambda: result.setdefault("slow", oauth.create_folder("/race/same")))
    slow.start()
    deadline = time.monotonic() + 5
    while httpx.get(f"{emu.url}/_emulator/faults").json()["faults"] and time.monotonic() < deadline:
        time.sleep(0.02)  # until the slow hook's POST has taken the delay
    fast = other.create_folder("/race/same")
    slow.join(10)
    assert result["slow"] == fast
    assert route_count(emu, "/2.0/folders", 409) == 1
    assert [e["name"] for e in other.list_folder("/race")] == ["same"]


def test_delete_files_and_folders(oauth: BoxHook) -> None:
    oauth.write_bytes(b"1", "/del/one.txt")
    entry = oauth.write_bytes(b"2", "/del/two.txt")
    oauth.delete("/del/one.txt")
    assert not oauth.exists("/del/one.txt")
    oauth.delete(entry["id"])
    assert not oauth.exists("/del/two.txt")
    oauth.write_bytes(b"3", "/del/sub/three.txt")
    with pytest.raises(ServiceError, match="recursive=True") as info:
        oauth.delete("/del")
    assert info.value.code == "folder_not_empty"
    oauth.delete("/del", recursive=True)
    assert not oauth.exists("/del") and not oauth.exists("/del/sub/three.txt")
    with pytest.raises(ItemNotFound):
        oauth.delete("/del")
    with pytest.raises(InvalidRemotePath, match="root folder"):
        oauth.delete("/")


# ---------------------------------------------------------------------------------------------- transfers


def test_upload_download_round_trip_and_overwrite(oauth: BoxHook, tmp_path: Path) -> None:
    local = tmp_path / "report.csv"
    local.write_bytes(b"a,b\n1,2\n")
    entry = oauth.upload_file(local, "/docs/2024/report.csv")  # parents created
    assert entry["sha1"] == sha1(local.read_bytes()) and entry["name"] == "report.csv"
    assert oauth.upload_file(local, "/docs/2024/report.csv")["id"] == entry["id"]  # same bytes: no conflict
    local.write_bytes(b"a,b\n3,4\n5,6\n")
    with pytest.raises(ItemExists, match="overwrite=True"):
        oauth.upload_file(local, "/docs/2024/report.csv")
    with pytest.raises(ItemExists, match="overwrite=True"):
        make_hook(oauth.conn_id).upload_file(local, "/docs/2024")  # an existing folder: upload into it
    version = oauth.upload_file(local, "/docs/2024/report.csv", overwrite=True)
    assert version["id"] == entry["id"] and version["sha1"] == sha1(local.read_bytes())
    fresh = make_hook(oauth.conn_id)  # no cache: the 409 conflict id leads to the new version
    local.write_bytes(b"third")
    assert fresh.upload_file(local, "/docs/2024/report.csv", overwrite=True)["id"] == entry["id"]

    target = tmp_path / "out" / "copy.csv"
    assert oauth.download_file("/docs/2024/report.csv", target) == target
    assert target.read_bytes() == b"third"
    assert sorted(p.name for p in target.parent.iterdir()) == ["copy.csv"]  # no temp file left

    into = oauth.upload_file(local, oauth.get_item_id("/docs"), name="by-id.bin")
    assert oauth.get_item_id("/docs/by-id.bin") == into["id"]
    assert oauth.read_bytes(into["id"]) == b"third"
    with pytest.raises(InvalidRemotePath, match="needs a file name"):
        oauth.write_bytes(b"x", oauth.get_item_id("/docs"))
    with pytest.raises(ItemExists, match="folder named"):
        oauth.write_bytes(b"x", "/docs/2024")
    with pytest.raises(FileNotFoundError):
        oauth.upload_file(tmp_path / "absent.bin", "/docs/absent.bin")


def test_write_bytes_into_folder_and_read_back(oauth: BoxHook) -> None:
    folder = oauth.create_folder("/blobs")
    entry = oauth.write_bytes(b"\x00\x01binary\xff", "/blobs", name="b.bin")
    assert oauth.read_bytes("/blobs/b.bin") == b"\x00\x01binary\xff"
    assert oauth.get_file_info(entry["id"])["parent"]["id"] == folder
    assert oauth.write_bytes(b"new", "/blobs/b.bin", overwrite=True)["id"] == entry["id"]
    assert oauth.read_bytes(entry["id"]) == b"new"
    assert oauth.write_bytes(b"", "/blobs/empty.txt")["size"] == 0
    assert oauth.read_bytes("/blobs/empty.txt") == b""
    make_hook(oauth.conn_id).delete("/blobs/b.bin")  # behind the back of oauth's cache
    again = oauth.write_bytes(b"re-created", "/blobs/b.bin", overwrite=True)
    assert again["id"] != entry["id"] and oauth.read_bytes("/blobs/b.bin") == b"re-created"


def test_unicode_and_spaces_in_names(oauth: BoxHook, tmp_path: Path) -> None:
    path = "/Données 2024/résumé final ü 日本.txt"
    data = "naïve café ✓".encode()
    entry = oauth.write_bytes(data, path)
    assert entry["name"] == "résumé final ü 日本.txt"
    fresh = make_hook(oauth.conn_id)
    assert fresh.get_item_id("/DONNÉES 2024/Résumé Final Ü 日本.txt") == entry["id"]
    assert [e["name"] for e in fresh.list_folder("/Données 2024")] == ["résumé final ü 日本.txt"]
    target = tmp_path / "ünïcode dir" / "résumé.txt"
    fresh.download_file(path, target)
    assert target.read_bytes() == data


def test_as_user_header_is_honoured(
    monkeypatch: pytest.MonkeyPatch, emu: EmulatedServices, tmp_path: Path, oauth: BoxHook
) -> None:
    """An enterprise admin's token acting as another user works in that user's tree."""
    box_oauth_connection(monkeypatch, emu, tmp_path, "box_hook_as_user", as_user=SECOND_USER)
    acting = make_hook("box_hook_as_user")
    assert acting.get_current_user()["id"] == SECOND_USER
    acting.write_bytes(b"second user's", "/mine.txt")
    assert not oauth.exists("/mine.txt")  # the admin's own tree does not hold it
    clone = oauth.as_user(SECOND_USER)
    assert clone.get_current_user()["id"] == SECOND_USER
    assert clone.read_bytes("/mine.txt") == b"second user's"
    assert oauth.get_current_user()["id"] == USER  # the original hook is unchanged
    with pytest.raises(InvalidRemotePath):
        oauth.as_user("not-a-user")
    denied = oauth.as_user("55555")  # no such enterprise user
    with pytest.raises(ServiceError) as info:
        denied.get_current_user()
    assert info.value.status == 403


# ---------------------------------------------------------------------------------------------- failures


def test_rotation_after_401_is_stored_and_the_hook_continues(oauth: BoxHook, emu: EmulatedServices) -> None:
    assert oauth.token_store.read(oauth.conn_id) is None  # nothing stored before the first call
    oauth.write_bytes(b"before", "/rot/a.txt")
    first = tokens_from_record(_stored(oauth))
    assert emu.client.expire_access_tokens("box") >= 1  # the service now answers 401 to that token
    assert oauth.read_bytes("/rot/a.txt") == b"before"
    rotated = tokens_from_record(_stored(oauth))
    assert rotated.access_token != first.access_token
    assert rotated.refresh_token and rotated.refresh_token != first.refresh_token
    assert grants(emu, "refresh_token") == {"ok": 2}  # the seed, then the rotation after the 401
    assert any(counts.get("401") for counts in emu.client.stats()["box"]["routes"].values())
    again = make_hook(oauth.conn_id)  # another process would read the rotated token from the store
    assert again.read_bytes("/rot/a.txt") == b"before"
    assert grants(emu, "refresh_token") == {"ok": 2}


def _stored(hook: BoxHook) -> Any:
    record = hook.token_store.read(hook.conn_id)
    assert record is not None
    return record


def test_429_retry_after_is_honoured(oauth: BoxHook, emu: EmulatedServices) -> None:
    oauth.get_current_user()
    emu.client.fault("/api.box.com/2.0/users/me", status=429, retry_after=1, count=1)
    started = time.monotonic()
    assert oauth.get_current_user()["id"] == USER
    assert time.monotonic() - started >= 0.95
    assert route_count(emu, "/2.0/users/me", 429) == 1
    short = make_hook(oauth.conn_id, retry_policy=transport.RetryPolicy(max_attempts=2, max_retry_after=2))
    emu.client.fault("/api.box.com/2.0/users/me", status=429, retry_after=1, count=5)
    with pytest.raises(RateLimited, match="rate-limited") as info:
        short.get_current_user()
    assert info.value.retry_after == 1


def test_dropped_download_resumes_or_fails_cleanly(
    oauth: BoxHook, emu: EmulatedServices, tmp_path: Path
) -> None:
    data = bytes(range(256)) * 4096  # 1 MiB
    oauth.write_bytes(data, "/dl/data.bin")
    target = tmp_path / "dest" / "data.bin"
    emu.client.fault("/dl.boxcloud.com/*", drop=True, count=1)
    oauth.download_file("/dl/data.bin", target)
    assert target.read_bytes() == data

    file_id = oauth.get_item_id("/dl/data.bin")
    redirects = route_count(emu, f"/2.0/files/{file_id}/content", 302)
    emu.client.fault("/dl.boxcloud.com/*", status=503, count=1)  # retried on the same link
    assert oauth.read_bytes("/dl/data.bin") == data
    assert route_count(emu, f"/2.0/files/{file_id}/content", 302) == redirects + 1
    emu.client.fault("/dl.boxcloud.com/*", status=404, count=1)  # an expired link: Box is asked again
    assert oauth.read_bytes("/dl/data.bin") == data
    assert route_count(emu, f"/2.0/files/{file_id}/content", 302) == redirects + 3

    target.unlink()
    emu.client.fault("/dl.boxcloud.com/*", drop=True, count=50)
    with pytest.raises(TransportError, match="nothing was written") as info:
        oauth.download_file("/dl/data.bin", target)
    assert info.value.code == "download_failed"
    assert list(target.parent.iterdir()) == []  # neither the file nor a temp file
    emu.client.clear_faults()


def test_async_twins(oauth: BoxHook) -> None:
    entry = oauth.write_bytes(b"async", "/async dir/x.txt")
    oauth.write_bytes(b"async", "/async dir/y.txt")

    async def run() -> tuple[dict[str, Any], list[str], bool, bool, bool]:
        hook = make_hook(oauth.conn_id)
        try:
            info = await hook.aget_file_info("/async dir/x.txt")
            names = [e["name"] async for e in hook.alist_folder("/async dir", limit=1)]
            return (
                info,
                names,
                await hook.aexists("/async dir/y.txt"),
                await hook.aexists("/async dir/z.txt"),
                await hook.aexists(entry["id"]),
            )
        finally:
            await hook.aclose()

    info, names, has_y, has_z, by_id = asyncio.run(run())
    assert info["id"] == entry["id"] and info["sha1"] == sha1(b"async")
    assert names == ["x.txt", "y.txt"]
    assert (has_y, has_z, by_id) == (True, False, True)


def test_no_token_value_in_logs(
    oauth: BoxHook,
    emu: EmulatedServices,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    oauth.write_bytes(b"secret-free", "/logs/a.txt")
    emu.client.expire_access_tokens("box")
    emu.client.fault("/api.box.com/2.0/users/me", status=429, retry_after=0, count=1)
    oauth.get_current_user()
    oauth.read_bytes("/logs/a.txt")
    ok, message = oauth.test_connection()
    assert ok
    captured = capsys.readouterr()
    record = _stored(oauth)
    tokens = tokens_from_record(record)
    config = oauth.get_auth_config()
    secrets = [tokens.access_token, tokens.refresh_token, config.refresh_token, config.client_secret]
    text = caplog.text + captured.out + captured.err + message
    assert "retrying" in caplog.text  # the 429 was logged, so logs were captured
    for secret in secrets:
        assert secret and secret not in text
    assert tokens.access_token not in repr(oauth) and tokens.access_token not in repr(config)


def test_static_token_is_used_as_is_and_never_refreshed(
    monkeypatch: pytest.MonkeyPatch, emu: EmulatedServices, tmp_path: Path
) -> None:
    tokens = box_oauth_connection(monkeypatch, emu, tmp_path, "box_hook_seed_only")
    set_connection(
        monkeypatch,
        "box_hook_static",
        host=emu.url,
        extra={"auth_scheme": "static", "access_token": tokens.access_token},
    )
    hook = make_hook("box_hook_static")
    assert hook.get_current_user()["id"] == USER
    assert hook.act_as_headers() == {}
    emu.client.expire_access_tokens("box")
    with pytest.raises(ServiceError, match="not accepted") as info:  # a static token is never refreshed
        hook.get_current_user()
    assert info.value.status == 401
    assert grants(emu, "refresh_token") == {}  # never refreshed
