"""Dropbox file routes of the emulator: listing and paging, metadata, folders, uploads, downloads, teams."""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

import httpx
import pytest

from dropbox_box_provider.emulator import seed
from tests.emulator.helpers import DROPBOX_TOKEN, dropbox_tokens

API = "/api.dropboxapi.com/2/"
CONTENT = "/content.dropboxapi.com/2/"
BLOCK = 4 * 1024 * 1024


def content_hash(data: bytes) -> str:
    """Reference implementation from Dropbox's documentation."""
    blocks = b"".join(hashlib.sha256(data[i : i + BLOCK]).digest() for i in range(0, len(data), BLOCK))
    return hashlib.sha256(blocks).hexdigest()


class Dropbox:
    """A tiny raw-HTTP Dropbox client for the tests."""

    def __init__(self, url: str, token: str, headers: dict[str, str] | None = None) -> None:
        self.http = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {token}", **(headers or {})}, timeout=60
        )

    def rpc(self, route: str, arg: Any) -> httpx.Response:
        return self.http.post(
            API + route, content=json.dumps(arg), headers={"Content-Type": "application/json"}
        )

    def content(self, route: str, arg: Any, data: bytes = b"", **headers: str) -> httpx.Response:
        return self.http.post(
            CONTENT + route,
            content=data,
            headers={
                "Dropbox-API-Arg": json.dumps(arg),
                "Content-Type": "application/octet-stream",
                **headers,
            },
        )


@pytest.fixture
def dbx(fresh_emulator) -> Dropbox:
    return Dropbox(
        fresh_emulator.url, dropbox_tokens(fresh_emulator.url, fresh_emulator.client)["access_token"]
    )


def test_get_current_account_body_null_or_empty(dbx):
    for body in (b"null", b""):
        answer = dbx.http.post(
            API + "users/get_current_account",
            content=body,
            headers={"Content-Type": "application/json"} if body else {},
        )
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "application/json"
        assert answer.json()["account_id"] == seed.DEMO_DROPBOX_ACCOUNT_ID
    bad = dbx.http.post(
        API + "users/get_current_account", content=b"null", headers={"Content-Type": "text/xml"}
    )
    assert bad.status_code == 400 and bad.headers["content-type"].startswith("text/plain")


def test_missing_and_invalid_token(fresh_emulator):
    missing = httpx.post(fresh_emulator.url + API + "users/get_current_account")
    assert missing.status_code == 400 and "Authorization" in missing.text
    invalid = httpx.post(
        fresh_emulator.url + API + "users/get_current_account", headers={"Authorization": "Bearer nope"}
    )
    assert invalid.status_code == 401
    assert invalid.json() == {
        "error_summary": "invalid_access_token/..",
        "error": {".tag": "invalid_access_token"},
    }


def test_folders_metadata_delete_and_case_insensitive_paths(dbx):
    created = dbx.rpc("files/create_folder_v2", {"path": "/Reports/2024"})
    assert created.status_code == 200
    assert created.json()["metadata"]["path_display"] == "/Reports/2024"
    conflict = dbx.rpc("files/create_folder_v2", {"path": "/reports/2024"})
    assert conflict.status_code == 409
    assert conflict.json()["error"] == {
        ".tag": "path",
        "path": {".tag": "conflict", "conflict": {".tag": "folder"}},
    }
    assert conflict.json()["error_summary"].startswith("path/conflict/folder/")
    renamed = dbx.rpc("files/create_folder_v2", {"path": "/reports/2024", "autorename": True})
    assert renamed.json()["metadata"]["name"] == "2024 (1)"
    meta = dbx.rpc("files/get_metadata", {"path": "/REPORTS"})
    assert meta.json()[".tag"] == "folder" and meta.json()["path_display"] == "/Reports"
    assert meta.json()["path_lower"] == "/reports" and meta.json()["id"].startswith("id:")
    by_id = dbx.rpc("files/get_metadata", {"path": meta.json()["id"]})
    assert by_id.json()["name"] == "Reports"
    missing = dbx.rpc("files/get_metadata", {"path": "/nope"})
    assert missing.status_code == 409
    assert missing.json() == {
        "error_summary": "path/not_found/..",
        "error": {".tag": "path", "path": {".tag": "not_found"}},
    }
    bad_path = dbx.rpc("files/get_metadata", {"path": "relative"})
    assert bad_path.status_code == 400 and "did not match pattern" in bad_path.text
    deleted = dbx.rpc("files/delete_v2", {"path": "/reports"})
    assert deleted.status_code == 200 and deleted.json()["metadata"][".tag"] == "folder"
    gone = dbx.rpc("files/delete_v2", {"path": "/reports"})
    assert gone.status_code == 409 and gone.json()["error_summary"].startswith("path_lookup/not_found")


def test_list_folder_paging_and_recursive(dbx):
    for index in range(7):
        assert (
            dbx.content("files/upload", {"path": f"/paged/f{index}.txt"}, b"x%d" % index).status_code == 200
        )
    dbx.rpc("files/create_folder_v2", {"path": "/paged/sub"})
    dbx.content("files/upload", {"path": "/paged/sub/deep.txt"}, b"deep")
    page = dbx.rpc("files/list_folder", {"path": "/paged", "limit": 3}).json()
    names = [e["name"] for e in page["entries"]]
    while page["has_more"]:
        page = dbx.rpc("files/list_folder/continue", {"cursor": page["cursor"]}).json()
        assert len(page["entries"]) <= 3
        names += [e["name"] for e in page["entries"]]
    assert sorted(names) == sorted([f"f{i}.txt" for i in range(7)] + ["sub"])
    recursive = dbx.rpc("files/list_folder", {"path": "/paged", "recursive": True}).json()
    assert "/paged/sub/deep.txt" in [e["path_lower"] for e in recursive["entries"]]
    root = dbx.rpc("files/list_folder", {"path": ""}).json()
    assert [e["name"] for e in root["entries"]] == ["paged"]
    assert dbx.rpc("files/list_folder", {"path": "/paged", "limit": 2001}).status_code == 400
    assert (
        dbx.rpc("files/list_folder", {"path": "/paged/f1.txt"})
        .json()["error_summary"]
        .startswith("path/not_folder")
    )
    reset = dbx.rpc("files/list_folder/continue", {"cursor": "bogus"})
    assert reset.status_code == 409 and reset.json()["error"][".tag"] == "reset"


def test_upload_modes_hash_and_download_ranges(dbx):
    data = os.urandom(BLOCK + 1234)
    up = dbx.content("files/upload", {"path": "/Data/blob.bin", "mode": "add"}, data)
    assert up.status_code == 200, up.text
    meta = up.json()
    assert meta["content_hash"] == content_hash(data) and meta["size"] == len(data)
    again = dbx.content("files/upload", {"path": "/data/BLOB.bin", "mode": {".tag": "add"}}, b"other")
    assert again.status_code == 409
    assert again.json()["error_summary"].startswith("path/conflict/file")
    auto = dbx.content("files/upload", {"path": "/data/blob.bin", "autorename": True}, b"other")
    assert auto.json()["name"] == "blob (1).bin"
    over = dbx.content("files/upload", {"path": "/data/blob.bin", "mode": "overwrite"}, b"new")
    assert over.json()["id"] == meta["id"] and over.json()["rev"] != meta["rev"]
    stale = dbx.content(
        "files/upload",
        {"path": "/data/blob.bin", "mode": {".tag": "update", "update": meta["rev"]}},
        b"stale",
    )
    assert stale.status_code == 409
    whole = dbx.content("files/download", {"path": "/data/blob.bin"})
    assert whole.content == b"new"
    result = json.loads(whole.headers["dropbox-api-result"])
    assert result["content_hash"] == content_hash(b"new")
    dbx.content("files/upload", {"path": "/data/big.bin", "mode": "overwrite"}, data)
    ranged = dbx.content("files/download", {"path": "/data/big.bin"}, Range="bytes=10-19")
    assert ranged.status_code == 206 and ranged.content == data[10:20]
    assert ranged.headers["content-range"] == f"bytes 10-19/{len(data)}"
    suffix = dbx.content("files/download", {"path": "/data/big.bin"}, Range="bytes=-5")
    assert suffix.content == data[-5:]
    folder = dbx.content("files/download", {"path": "/data"})
    assert folder.status_code == 409 and folder.json()["error_summary"].startswith("path/not_file")
    wrong = dbx.content("files/upload", {"path": "/data/x.bin", "content_hash": "0" * 64}, b"abc")
    assert wrong.status_code == 409 and wrong.json()["error_summary"].startswith("content_hash_mismatch")


def test_unicode_paths_in_dropbox_api_arg(dbx):
    path = "/Über/naïve 文件 \x7f.txt"
    arg = json.dumps({"path": path})
    assert "\\u00dc" in arg and "\\u007f" in arg
    up = dbx.content("files/upload", {"path": path}, "héllo".encode())
    assert up.status_code == 200 and up.json()["path_display"] == path
    down = dbx.content("files/download", {"path": path.upper()})
    assert down.content == "héllo".encode()
    header = down.headers["dropbox-api-result"]
    assert header.isascii() and json.loads(header)["name"] == "naïve 文件 \x7f.txt"
    unescaped = json.dumps({"path": path}, ensure_ascii=False).encode("utf-8")
    raw = dbx.http.post(CONTENT + "files/download", headers={"Dropbox-API-Arg": unescaped})
    assert raw.status_code == 400, "unescaped non-ASCII in Dropbox-API-Arg is rejected"


def test_upload_session_with_incorrect_offset(dbx):
    part1, part2, part3 = os.urandom(BLOCK), os.urandom(BLOCK), os.urandom(777)
    start = dbx.content("files/upload_session/start", {"close": False}, part1)
    session_id = start.json()["session_id"]
    append = dbx.content(
        "files/upload_session/append_v2", {"cursor": {"session_id": session_id, "offset": len(part1)}}, part2
    )
    assert append.status_code == 200 and append.json() is None
    wrong = dbx.content(
        "files/upload_session/append_v2", {"cursor": {"session_id": session_id, "offset": 5}}, b"x"
    )
    assert wrong.status_code == 409
    assert wrong.json()["error"] == {".tag": "incorrect_offset", "correct_offset": 2 * BLOCK}
    bad_finish = dbx.content(
        "files/upload_session/finish",
        {"cursor": {"session_id": session_id, "offset": 1}, "commit": {"path": "/s.bin"}},
        part3,
    )
    assert bad_finish.json()["error"] == {
        ".tag": "lookup_failed",
        "lookup_failed": {".tag": "incorrect_offset", "correct_offset": 2 * BLOCK},
    }
    finish = dbx.content(
        "files/upload_session/finish",
        {
            "cursor": {"session_id": session_id, "offset": 2 * BLOCK},
            "commit": {"path": "/s.bin", "mode": "add"},
        },
        part3,
    )
    assert finish.status_code == 200, finish.text
    data = part1 + part2 + part3
    assert finish.json()["content_hash"] == content_hash(data) and finish.json()["size"] == len(data)
    assert dbx.content("files/download", {"path": "/s.bin"}).content == data
    unknown = dbx.content(
        "files/upload_session/append_v2", {"cursor": {"session_id": session_id, "offset": 0}}
    )
    assert unknown.status_code == 409 and unknown.json()["error"][".tag"] == "not_found"


def test_select_user_and_path_root(fresh_emulator):
    url, client = fresh_emulator.url, fresh_emulator.client
    code = client.authorize("dropbox", seed.DEMO_DROPBOX_TEAM_CLIENT_ID, token_access_type="offline")
    token = httpx.post(
        url + DROPBOX_TOKEN,
        data={"grant_type": "authorization_code", "code": code},
        auth=(seed.DEMO_DROPBOX_TEAM_CLIENT_ID, seed.DEMO_DROPBOX_TEAM_CLIENT_SECRET),
    ).json()
    assert token["team_id"] == seed.DEMO_DROPBOX_TEAM_ID
    plain = Dropbox(url, token["access_token"])
    assert plain.rpc("users/get_current_account", None).status_code == 400
    member = Dropbox(
        url, token["access_token"], {"Dropbox-API-Select-User": seed.DEMO_DROPBOX_TEAM_MEMBER_MEMBER_ID}
    )
    account = member.rpc("users/get_current_account", None).json()
    assert account["account_id"] == seed.DEMO_DROPBOX_TEAM_MEMBER_ID
    member.content("files/upload", {"path": "/member.txt"}, b"m")
    admin = Dropbox(
        url, token["access_token"], {"Dropbox-API-Select-User": seed.DEMO_DROPBOX_TEAM_ADMIN_MEMBER_ID}
    )
    assert admin.rpc("files/get_metadata", {"path": "/member.txt"}).status_code == 409
    namespace = account["root_info"]["root_namespace_id"]
    rooted = Dropbox(
        url,
        token["access_token"],
        {
            "Dropbox-API-Select-User": seed.DEMO_DROPBOX_TEAM_ADMIN_MEMBER_ID,
            "Dropbox-API-Path-Root": json.dumps({".tag": "namespace_id", "namespace_id": namespace}),
        },
    )
    assert rooted.rpc("files/get_metadata", {"path": "/member.txt"}).status_code == 200
    personal = Dropbox(
        url,
        dropbox_tokens(url, client)["access_token"],
        {"Dropbox-API-Path-Root": json.dumps({".tag": "namespace_id", "namespace_id": namespace})},
    )
    denied = personal.rpc("files/list_folder", {"path": ""})
    assert denied.status_code == 422 and denied.json()["error"][".tag"] == "no_permission"
    bogus = Dropbox(url, token["access_token"], {"Dropbox-API-Select-User": "dbmid:nobody"})
    assert bogus.rpc("users/get_current_account", None).status_code == 401, "invalid_select_user"
