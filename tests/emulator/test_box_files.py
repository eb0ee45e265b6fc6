"""Box file routes: folders, items paging, uploads (multipart, versions, chunked), downloads."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from typing import Any

import httpx
import pytest

from dropbox_box_provider.emulator import seed
from tests.emulator.helpers import box_ccg_token, box_tokens

API = "/api.box.com/2.0"
UPLOAD = "/upload.box.com/api/2.0"


class Box:
    """A tiny raw-HTTP Box client for the tests."""

    def __init__(self, url: str, token: str, headers: dict[str, str] | None = None) -> None:
        self.http = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {token}", **(headers or {})}, timeout=60
        )

    def upload(
        self, name: str, data: bytes, parent: str = "0", attributes_first: bool = True
    ) -> httpx.Response:
        attributes = (
            "attributes",
            (None, json.dumps({"name": name, "parent": {"id": parent}}), "application/json"),
        )
        file_part = ("file", (name, data, "application/octet-stream"))
        parts: list[Any] = [attributes, file_part] if attributes_first else [file_part, attributes]
        return self.http.post(UPLOAD + "/files/content", files=parts)

    def folder(self, name: str, parent: str = "0") -> httpx.Response:
        return self.http.post(API + "/folders", json={"name": name, "parent": {"id": parent}})


@pytest.fixture
def box(fresh_emulator) -> Box:
    return Box(fresh_emulator.url, box_tokens(fresh_emulator.url, fresh_emulator.client)["access_token"])


def sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def test_users_me_and_missing_token(box, fresh_emulator):
    me = box.http.get(API + "/users/me")
    assert me.status_code == 200 and me.json()["id"] == seed.DEMO_BOX_USER_ID and me.json()["type"] == "user"
    missing = httpx.get(fresh_emulator.url + API + "/users/me")
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == 'Bearer realm="Service"'


def test_folders_create_get_conflict_delete(box):
    created = box.folder("Reports")
    assert created.status_code == 201
    folder = created.json()
    assert folder["type"] == "folder" and folder["parent"]["id"] == "0"
    assert folder["path_collection"]["entries"][0]["name"] == "All Files"
    conflict = box.folder("reports")
    assert conflict.status_code == 409
    body = conflict.json()
    assert body["type"] == "error" and body["code"] == "item_name_in_use" and body["status"] == 409
    assert body["context_info"]["conflicts"][0]["id"] == folder["id"]
    assert set(body) == {"type", "status", "code", "message", "context_info", "help_url", "request_id"}
    child = box.folder("2024", folder["id"]).json()
    fetched = box.http.get(f"{API}/folders/{folder['id']}").json()
    assert fetched["item_collection"]["entries"][0]["id"] == child["id"]
    assert box.http.delete(f"{API}/folders/{folder['id']}").json()["code"] == "folder_not_empty"
    assert box.http.delete(f"{API}/folders/{folder['id']}", params={"recursive": "true"}).status_code == 204
    missing = box.http.get(f"{API}/folders/{folder['id']}")
    assert missing.status_code == 404 and missing.json()["code"] == "trashed", "Box deletes go to the trash"
    assert box.folder("bad/name").json()["code"] == "item_name_invalid"


def test_items_offset_and_marker_paging(box):
    ids = {box.folder(f"folder-{i:02d}").json()["id"] for i in range(5)}
    ids |= {box.upload(f"file-{i:02d}.txt", b"x").json()["entries"][0]["id"] for i in range(6)}
    seen: list[str] = []
    offset = 0
    while True:
        page = box.http.get(f"{API}/folders/0/items", params={"offset": offset, "limit": 4}).json()
        assert page["total_count"] == 11 and page["limit"] == 4
        seen += [e["id"] for e in page["entries"]]
        offset += 4
        if offset >= page["total_count"]:
            break
    assert set(seen) == ids and len(seen) == 11
    first = box.http.get(f"{API}/folders/0/items", params={"limit": 4}).json()["entries"]
    assert [e["type"] for e in first] == ["folder"] * 4, "folders sort before files"
    marker_seen: list[str] = []
    params: dict[str, Any] = {"usemarker": "true", "limit": 5}
    while True:
        page = box.http.get(f"{API}/folders/0/items", params=params).json()
        marker_seen += [e["id"] for e in page["entries"]]
        if not page["next_marker"]:
            break
        params["marker"] = page["next_marker"]
    assert marker_seen == seen
    too_far = box.http.get(f"{API}/folders/0/items", params={"offset": 10001})
    assert too_far.status_code == 400 and too_far.json()["type"] == "error"
    clamped = box.http.get(f"{API}/folders/0/items", params={"limit": 5000}).json()
    assert clamped["limit"] == 1000


def test_multipart_upload_version_and_download(box):
    data = os.urandom(300_000)
    up = box.upload("photo.jpg", data)
    assert up.status_code == 201
    body = up.json()
    assert body["total_count"] == 1
    file = body["entries"][0]
    assert file["sha1"] == sha1(data) and file["size"] == len(data) and file["name"] == "photo.jpg"
    assert file["parent"]["id"] == "0" and file["etag"] and file["modified_at"]
    assert file["path_collection"]["total_count"] == 1
    conflict = box.upload("PHOTO.jpg", b"x")
    assert conflict.status_code == 409 and conflict.json()["context_info"]["conflicts"]["id"] == file["id"]
    wrong_order = box.upload("other.jpg", b"x", attributes_first=False)
    assert wrong_order.status_code == 400 and wrong_order.json()["code"] == "metadata_after_file_contents"
    new_data = b"version two"
    version = box.http.post(
        f"{UPLOAD}/files/{file['id']}/content",
        files=[("attributes", (None, "{}")), ("file", ("photo.jpg", new_data))],
    )
    assert version.status_code == 201
    assert version.json()["entries"][0]["sha1"] == sha1(new_data)
    assert version.json()["entries"][0]["file_version"]["id"] != file["file_version"]["id"]
    redirect = box.http.get(f"{API}/files/{file['id']}/content")
    assert redirect.status_code == 302 and "/dl.boxcloud.com/" in redirect.headers["location"]
    assert redirect.headers["location"].startswith(str(box.http.base_url).rstrip("/"))
    followed = box.http.get(f"{API}/files/{file['id']}/content", follow_redirects=True)
    assert followed.content == new_data
    ranged = httpx.get(redirect.headers["location"], headers={"Range": "bytes=8-"})
    assert ranged.status_code == 206 and ranged.content == b"two"
    assert ranged.headers["content-range"] == f"bytes 8-10/{len(new_data)}"
    assert httpx.get(redirect.headers["location"], headers={"Range": "bytes=50-60"}).status_code == 416
    info = box.http.get(f"{API}/files/{file['id']}").json()
    assert info["sha1"] == sha1(new_data)
    assert box.http.delete(f"{API}/files/{file['id']}").status_code == 204
    assert box.http.get(f"{API}/files/{file['id']}").status_code == 404


def test_chunked_upload_session(fresh_emulator):
    box = Box(fresh_emulator.url, box_ccg_token(fresh_emulator.url))
    small = box.http.post(
        UPLOAD + "/files/upload_sessions",
        json={"folder_id": "0", "file_size": 1000, "file_name": "small.bin"},
    )
    assert small.status_code == 400 and small.json()["code"] == "file_size_too_small"
    data = os.urandom(20_000_000 + 12345)
    session = box.http.post(
        UPLOAD + "/files/upload_sessions",
        json={"folder_id": "0", "file_size": len(data), "file_name": "big.bin"},
    ).json()
    part_size = session["part_size"]
    assert session["total_parts"] == -(-len(data) // part_size)
    upload_url = session["session_endpoints"]["upload_part"]
    assert upload_url.startswith(fresh_emulator.url + "/upload.box.com/api/2.0/files/upload_sessions/")
    parts = []
    for offset in range(0, len(data), part_size):
        chunk = data[offset : offset + part_size]
        digest = base64.b64encode(hashlib.sha1(chunk).digest()).decode()
        headers = {
            "Content-Range": f"bytes {offset}-{offset + len(chunk) - 1}/{len(data)}",
            "Digest": f"sha={digest}",
            "Content-Type": "application/octet-stream",
        }
        if offset == 0:
            bad = box.http.put(upload_url, content=chunk, headers={**headers, "Digest": "sha=AAAA"})
            assert bad.status_code == 400 and bad.json()["code"] == "bad_digest"
        answer = box.http.put(upload_url, content=chunk, headers=headers)
        assert answer.status_code == 200, answer.text
        parts.append(answer.json()["part"])
        assert parts[-1]["sha1"] == hashlib.sha1(chunk).hexdigest()
    misaligned = box.http.put(
        upload_url,
        content=b"x" * 10,
        headers={
            "Content-Range": f"bytes 5-14/{len(data)}",
            "Digest": "sha=" + base64.b64encode(hashlib.sha1(b"x" * 10).digest()).decode(),
        },
    )
    assert misaligned.status_code == 416
    listed = box.http.get(session["session_endpoints"]["list_parts"]).json()
    assert [p["part_id"] for p in listed["entries"]] == [p["part_id"] for p in parts]
    whole_digest = base64.b64encode(hashlib.sha1(data).digest()).decode()
    fresh_emulator.client.configure(box_commit_pending=1)
    commit_url = session["session_endpoints"]["commit"]
    pending = box.http.post(commit_url, json={"parts": parts}, headers={"Digest": f"sha={whole_digest}"})
    assert pending.status_code == 202 and pending.headers["retry-after"] == "1"
    wrong = box.http.post(commit_url, json={"parts": parts}, headers={"Digest": "sha=AAAA"})
    assert wrong.status_code == 400
    commit = box.http.post(commit_url, json={"parts": parts}, headers={"Digest": f"sha={whole_digest}"})
    assert commit.status_code == 201, commit.text
    file = commit.json()["entries"][0]
    assert file["sha1"] == hashlib.sha1(data).hexdigest() and file["size"] == len(data)
    download = box.http.get(f"{API}/files/{file['id']}/content", follow_redirects=True)
    assert download.content == data
    aborted = box.http.post(
        UPLOAD + "/files/upload_sessions",
        json={"folder_id": "0", "file_size": len(data), "file_name": "other.bin"},
    ).json()
    assert box.http.delete(aborted["session_endpoints"]["abort"]).status_code == 204
    assert box.http.get(aborted["session_endpoints"]["status"]).status_code == 404


def test_as_user_acts_on_that_users_tree(fresh_emulator):
    url = fresh_emulator.url
    admin = Box(url, box_ccg_token(url))
    as_second = Box(url, box_ccg_token(url), {"As-User": seed.DEMO_BOX_SECOND_USER_ID})
    assert as_second.http.get(API + "/users/me").json()["id"] == seed.DEMO_BOX_SECOND_USER_ID
    as_second.folder("Second's folder")
    names = [e["name"] for e in as_second.http.get(f"{API}/folders/0/items").json()["entries"]]
    assert names == ["Second's folder"]
    assert admin.http.get(f"{API}/folders/0/items").json()["entries"] == []
    regular = Box(
        url, box_ccg_token(url, "user", seed.DEMO_BOX_SECOND_USER_ID), {"As-User": seed.DEMO_BOX_USER_ID}
    )
    denied = regular.http.get(API + "/users/me")
    assert denied.status_code == 403 and denied.json()["code"] == "access_denied_insufficient_permissions"
