"""The emulator fails the way the real services do (issue 16): each behaviour the hooks must survive."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time

import httpx
import pytest

from dropbox_box_provider.emulator import seed
from dropbox_box_provider.emulator.client import EmulatorClient
from dropbox_box_provider.emulator.server import run_in_thread
from tests.emulator.helpers import DROPBOX_TOKEN, box_tokens, dropbox_tokens
from tests.emulator.test_box_files import API as BOX_API
from tests.emulator.test_box_files import UPLOAD as BOX_UPLOAD
from tests.emulator.test_box_files import Box
from tests.emulator.test_dropbox_files import API, Dropbox

MIB = 1024 * 1024


@pytest.fixture
def dbx(fresh_emulator) -> Dropbox:
    return Dropbox(
        fresh_emulator.url, dropbox_tokens(fresh_emulator.url, fresh_emulator.client)["access_token"]
    )


@pytest.fixture
def box(fresh_emulator) -> Box:
    return Box(fresh_emulator.url, box_tokens(fresh_emulator.url, fresh_emulator.client)["access_token"])


def _team_token(url: str, client: EmulatorClient) -> str:
    code = client.authorize("dropbox", seed.DEMO_DROPBOX_TEAM_CLIENT_ID, token_access_type="offline")
    answer = httpx.post(
        url + DROPBOX_TOKEN,
        data={"grant_type": "authorization_code", "code": code},
        auth=(seed.DEMO_DROPBOX_TEAM_CLIENT_ID, seed.DEMO_DROPBOX_TEAM_CLIENT_SECRET),
    )
    return str(answer.json()["access_token"])


# Dropbox ---------------------------------------------------------------------------------------------


def test_recursive_listing_includes_the_listed_folder_first(dbx):
    dbx.content("files/upload", {"path": "/Top/sub/deep.txt"}, b"deep")
    entries = dbx.rpc("files/list_folder", {"path": "/top", "recursive": True}).json()["entries"]
    assert [e["path_display"] for e in entries] == ["/Top", "/Top/sub", "/Top/sub/deep.txt"]
    assert entries[0][".tag"] == "folder"
    flat = dbx.rpc("files/list_folder", {"path": "/top"}).json()["entries"]
    assert [e["name"] for e in flat] == ["sub"], "a plain listing does not include the folder"
    root = dbx.rpc("files/list_folder", {"path": "", "recursive": True}).json()["entries"]
    assert [e["path_display"] for e in root] == ["/Top", "/Top/sub", "/Top/sub/deep.txt"], "no root entry"


def test_rev_paths_for_download_and_get_metadata(dbx):
    first = dbx.content("files/upload", {"path": "/r.txt"}, b"first").json()
    second = dbx.content("files/upload", {"path": "/r.txt", "mode": "overwrite"}, b"second!").json()
    assert first["rev"] != second["rev"]
    old = dbx.rpc("files/get_metadata", {"path": f"rev:{first['rev']}"})
    assert old.status_code == 200, old.text
    assert old.json()["rev"] == first["rev"] and old.json()["size"] == 5 and old.json()["id"] == first["id"]
    current = dbx.rpc("files/get_metadata", {"path": f"rev:{second['rev']}"}).json()
    assert current["content_hash"] == second["content_hash"]
    download = dbx.content("files/download", {"path": f"rev:{first['rev']}"})
    assert download.status_code == 200 and download.content == b"first"
    assert json.loads(download.headers["dropbox-api-result"])["rev"] == first["rev"]
    assert dbx.content("files/download", {"path": f"rev:{second['rev']}"}).content == b"second!"
    unknown = dbx.rpc("files/get_metadata", {"path": "rev:0123456789abcdef"})
    assert unknown.status_code == 409 and unknown.json()["error_summary"].startswith("path/not_found")
    malformed = dbx.rpc("files/get_metadata", {"path": "rev:xyz"})
    assert malformed.status_code == 400 and "did not match pattern" in malformed.text
    not_here = dbx.rpc("files/delete_v2", {"path": f"rev:{first['rev']}"})
    assert not_here.status_code == 400, "rev: paths are for reading only"


def test_ns_paths_resolve_against_that_namespace(fresh_emulator):
    url, client = fresh_emulator.url, fresh_emulator.client
    token = _team_token(url, client)
    member = Dropbox(url, token, {"Dropbox-API-Select-User": seed.DEMO_DROPBOX_TEAM_MEMBER_MEMBER_ID})
    admin = Dropbox(url, token, {"Dropbox-API-Select-User": seed.DEMO_DROPBOX_TEAM_ADMIN_MEMBER_ID})
    namespace = member.rpc("users/get_current_account", None).json()["root_info"]["root_namespace_id"]
    member.content("files/upload", {"path": "/shared/doc.txt"}, b"member's")
    assert admin.rpc("files/get_metadata", {"path": "/shared/doc.txt"}).status_code == 409
    meta = admin.rpc("files/get_metadata", {"path": f"ns:{namespace}/shared/doc.txt"})
    assert meta.status_code == 200 and meta.json()["path_display"] == "/shared/doc.txt"
    assert admin.content("files/download", {"path": f"ns:{namespace}/shared/doc.txt"}).content == b"member's"
    listed = admin.rpc("files/list_folder", {"path": f"ns:{namespace}"}).json()["entries"]
    assert [e["name"] for e in listed] == ["shared"]
    written = admin.content("files/upload", {"path": f"ns:{namespace}/shared/admin.txt"}, b"admin's")
    assert written.status_code == 200, written.text
    assert member.content("files/download", {"path": "/shared/admin.txt"}).content == b"admin's"
    personal = Dropbox(url, dropbox_tokens(url, client)["access_token"])
    denied = personal.rpc("files/get_metadata", {"path": f"ns:{namespace}/shared/doc.txt"})
    assert denied.status_code == 409 and denied.json()["error_summary"].startswith("path/not_found")
    own = personal.rpc("users/get_current_account", None).json()["root_info"]["root_namespace_id"]
    personal.content("files/upload", {"path": "/mine.txt"}, b"mine")
    assert personal.rpc("files/get_metadata", {"path": f"ns:{own}/mine.txt"}).status_code == 200


def test_rpc_with_an_empty_body_is_rejected(dbx):
    for route in ("files/list_folder", "files/get_metadata", "files/delete_v2"):
        answer = dbx.http.post(API + route, content=b"", headers={"Content-Type": "application/json"})
        assert answer.status_code == 400, route
        assert answer.headers["content-type"].startswith("text/plain")
        assert (
            answer.text
            == f'Error in call to API function "{route}": request body: could not decode input as JSON'
        )
        bare = dbx.http.post(API + route)
        assert bare.status_code == 400, route
    typed_but_empty = dbx.http.post(
        API + "users/get_current_account", content=b"", headers={"Content-Type": "application/json"}
    )
    assert typed_but_empty.status_code == 400
    assert dbx.http.post(API + "users/get_current_account").status_code == 200, "no body, no type: fine"


def test_bad_select_user_or_admin_is_401_invalid_select(fresh_emulator):
    url, client = fresh_emulator.url, fresh_emulator.client
    token = _team_token(url, client)
    bogus = Dropbox(url, token, {"Dropbox-API-Select-User": "dbmid:nobody"})
    answer = bogus.rpc("users/get_current_account", None)
    assert answer.status_code == 401
    assert answer.json() == {
        "error_summary": "invalid_select_user/..",
        "error": {".tag": "invalid_select_user"},
    }
    assert answer.headers["www-authenticate"] == 'Bearer realm="Dropbox-API"'
    not_admin = Dropbox(url, token, {"Dropbox-API-Select-Admin": seed.DEMO_DROPBOX_TEAM_MEMBER_MEMBER_ID})
    refused = not_admin.rpc("users/get_current_account", None)
    assert refused.status_code == 401 and refused.json()["error"] == {".tag": "invalid_select_admin"}
    admin = Dropbox(url, token, {"Dropbox-API-Select-Admin": seed.DEMO_DROPBOX_TEAM_ADMIN_MEMBER_ID})
    assert (
        admin.rpc("users/get_current_account", None).json()["account_id"] == seed.DEMO_DROPBOX_TEAM_ADMIN_ID
    )
    assert client.stats()["dropbox"]["token"]["refresh_token"]["ok"] == 0


@pytest.mark.parametrize(
    ("route", "arg", "summary", "error"),
    [
        (
            "files/upload",
            {"path": "/w.txt"},
            "path/too_many_write_operations/..",
            {".tag": "path", "reason": {".tag": "too_many_write_operations"}, "upload_session_id": ""},
        ),
        (
            "files/delete_v2",
            {"path": "/w.txt"},
            "path_write/too_many_write_operations/..",
            {".tag": "path_write", "path_write": {".tag": "too_many_write_operations"}},
        ),
        (
            "files/create_folder_v2",
            {"path": "/f"},
            "path/too_many_write_operations/..",
            {".tag": "path", "path": {".tag": "too_many_write_operations"}},
        ),
    ],
)
def test_fault_too_many_write_operations_in_each_routes_shape(
    fresh_emulator, dbx, route, arg, summary, error
):
    fresh_emulator.client.fault(f"*/2/{route}", error="too_many_write_operations")
    answer = dbx.content(route, arg, b"x") if route == "files/upload" else dbx.rpc(route, arg)
    assert answer.status_code == 409
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == {"error_summary": summary, "error": error}
    again = dbx.content(route, arg, b"x") if route == "files/upload" else dbx.rpc(route, arg)
    assert again.status_code in (200, 409) and "too_many_write_operations" not in again.text, "one use only"


def test_fault_too_many_write_operations_on_session_finish(fresh_emulator, dbx):
    session = dbx.content("files/upload_session/start", {}, b"abc").json()["session_id"]
    fresh_emulator.client.fault("*/files/upload_session/finish", error="too_many_write_operations")
    arg = {"cursor": {"session_id": session, "offset": 3}, "commit": {"path": "/s.txt"}}
    refused = dbx.content("files/upload_session/finish", arg)
    assert refused.status_code == 409
    assert refused.json()["error"] == {".tag": "path", "path": {".tag": "too_many_write_operations"}}
    finished = dbx.content("files/upload_session/finish", arg)
    assert finished.status_code == 200 and finished.json()["size"] == 3, "the session survived the refusal"


def test_unknown_fault_error_is_refused(fresh_emulator):
    answer = httpx.post(
        fresh_emulator.url + "/_emulator/faults", json={"route": "*", "error": "something_else"}
    )
    assert answer.status_code == 400 and "something_else" in answer.json()["error"]


# Box -------------------------------------------------------------------------------------------------


def test_box_delete_moves_to_trash_and_restore_brings_it_back(box):
    folder = box.folder("Kept").json()
    uploaded = box.upload("a.txt", b"alpha", parent=folder["id"]).json()["entries"][0]
    assert box.http.delete(f"{BOX_API}/files/{uploaded['id']}").status_code == 204
    gone = box.http.get(f"{BOX_API}/files/{uploaded['id']}")
    assert gone.status_code == 404 and gone.json()["code"] == "trashed" and gone.json()["type"] == "error"
    assert box.http.get(f"{BOX_API}/files/{uploaded['id']}/content").json()["code"] == "trashed"
    trashed = box.http.get(f"{BOX_API}/files/{uploaded['id']}/trash")
    assert trashed.status_code == 200 and trashed.json()["item_status"] == "trashed"
    assert trashed.json()["trashed_at"] is not None
    assert box.upload("a.txt", b"other", parent=folder["id"]).status_code == 201, "trash frees the name"
    clash = box.http.post(f"{BOX_API}/files/{uploaded['id']}", json={})
    assert clash.status_code == 409 and clash.json()["code"] == "item_name_in_use"
    restored = box.http.post(f"{BOX_API}/files/{uploaded['id']}", json={"name": "a-restored.txt"})
    assert restored.status_code == 201 and restored.json()["item_status"] == "active"
    assert restored.json()["parent"]["id"] == folder["id"]
    assert box.http.get(f"{BOX_API}/files/{uploaded['id']}").json()["name"] == "a-restored.txt"
    assert box.http.get(f"{BOX_API}/files/{uploaded['id']}/trash").status_code == 404

    assert (
        box.http.delete(f"{BOX_API}/folders/{folder['id']}", params={"recursive": "true"}).status_code == 204
    )
    assert box.http.get(f"{BOX_API}/folders/{folder['id']}").json()["code"] == "trashed"
    assert box.http.get(f"{BOX_API}/files/{uploaded['id']}").json()["code"] == "trashed", "contents too"
    back = box.http.post(f"{BOX_API}/folders/{folder['id']}", json={})
    assert back.status_code == 201
    assert box.http.get(f"{BOX_API}/files/{uploaded['id']}").status_code == 200
    box.http.delete(f"{BOX_API}/files/{uploaded['id']}")
    assert box.http.delete(f"{BOX_API}/files/{uploaded['id']}/trash").status_code == 204
    purged = box.http.get(f"{BOX_API}/files/{uploaded['id']}")
    assert purged.status_code == 404 and purged.json()["code"] == "not_found"


def test_box_download_links_expire(fresh_emulator, box):
    file_id = box.upload("d.txt", b"download me").json()["entries"][0]["id"]
    fresh_emulator.client.configure(box_download_link_ttl=0.5)
    link = box.http.get(f"{BOX_API}/files/{file_id}/content").headers["location"]
    fresh = httpx.get(link)
    assert fresh.status_code == 200 and fresh.content == b"download me"
    time.sleep(0.6)
    stale = httpx.get(link)
    assert stale.status_code == 403
    relinked = box.http.get(f"{BOX_API}/files/{file_id}/content").headers["location"]
    assert relinked != link and httpx.get(relinked).content == b"download me"
    assert fresh_emulator.client.configure()["box_download_link_ttl"] == 0.5


@pytest.mark.parametrize(
    ("file_size", "part_size"),
    [(20_000_000, 8 * MIB), (40 * MIB, 16 * MIB), (200 * MIB, 32 * MIB), (10_000 * MIB, 128 * MIB)],
)
def test_box_part_size_grows_with_the_file(fresh_emulator, box, file_size, part_size):
    fresh_emulator.client.configure(box_part_size_threshold=30 * MIB)
    session = box.http.post(
        f"{BOX_UPLOAD}/files/upload_sessions",
        json={"folder_id": "0", "file_size": file_size, "file_name": "b"},
    ).json()
    assert session["part_size"] == part_size
    assert session["total_parts"] == -(-file_size // part_size)


def test_box_default_part_size_matches_box_for_a_gigabyte(fresh_emulator, box):
    session = box.http.post(
        f"{BOX_UPLOAD}/files/upload_sessions",
        json={"folder_id": "0", "file_size": 1_000_000_000, "file_name": "g"},
    ).json()
    assert session["part_size"] == 32 * MIB
    small = box.http.post(
        f"{BOX_UPLOAD}/files/upload_sessions",
        json={"folder_id": "0", "file_size": 50_000_000, "file_name": "s"},
    ).json()
    assert small["part_size"] == 8 * MIB


def test_box_chunked_upload_with_grown_parts_and_parts_mismatch_fault(fresh_emulator, box):
    fresh_emulator.client.configure(box_part_size_threshold=20 * MIB)
    data = os.urandom(20 * MIB + 5)
    session = box.http.post(
        f"{BOX_UPLOAD}/files/upload_sessions",
        json={"folder_id": "0", "file_size": len(data), "file_name": "c"},
    ).json()
    size = session["part_size"]
    assert size == 16 * MIB and session["total_parts"] == 2
    parts = []
    for start in range(0, len(data), size):
        chunk = data[start : start + size]
        answer = box.http.put(
            session["session_endpoints"]["upload_part"],
            content=chunk,
            headers={
                "Content-Range": f"bytes {start}-{start + len(chunk) - 1}/{len(data)}",
                "Digest": "sha=" + base64.b64encode(hashlib.sha1(chunk).digest()).decode(),
                "Content-Type": "application/octet-stream",
            },
        )
        assert answer.status_code == 200, answer.text
        parts.append(answer.json()["part"])
    fresh_emulator.client.fault("*/upload_sessions/*/commit", error="parts_mismatch")
    commit = session["session_endpoints"]["commit"]
    headers = {"Digest": "sha=" + base64.b64encode(hashlib.sha1(data).digest()).decode()}
    refused = box.http.post(commit, json={"parts": parts}, headers=headers)
    assert refused.status_code == 400
    assert refused.json()["code"] == "parts_mismatch" and refused.json()["type"] == "error"
    listed = box.http.get(session["session_endpoints"]["list_parts"]).json()
    assert listed["total_count"] == 2
    committed = box.http.post(commit, json={"parts": listed["entries"]}, headers=headers)
    assert committed.status_code == 201 and committed.json()["entries"][0]["size"] == len(data)


# Control plane ---------------------------------------------------------------------------------------


def test_app_registered_without_users_gets_a_default_account():
    with run_in_thread(seed=None) as url, EmulatorClient(url) as client:
        box_app = client.register_app("box", "bare-box", client_secret="s")
        dropbox_app = client.register_app("dropbox", "bare-dropbox", client_secret="s")
        team_app = client.register_app("dropbox", "bare-team", client_secret="s", team=True)
        assert len(box_app["users"]) == len(dropbox_app["users"]) == len(team_app["users"]) == 1
        code = client.authorize("box", "bare-box")
        token = httpx.post(
            url + "/api.box.com/oauth2/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "client_id": "bare-box",
                "client_secret": "s",
            },
        ).json()["access_token"]
        me = httpx.get(url + "/api.box.com/2.0/users/me", headers={"Authorization": f"Bearer {token}"})
        assert me.json()["id"] == box_app["users"][0]
        code = client.authorize("dropbox", "bare-dropbox", token_access_type="offline")
        tokens = httpx.post(
            url + DROPBOX_TOKEN,
            data={"grant_type": "authorization_code", "code": code},
            auth=("bare-dropbox", "s"),
        ).json()
        assert tokens["account_id"] == dropbox_app["users"][0]
        code = client.authorize("dropbox", "bare-team", token_access_type="offline")
        team = httpx.post(
            url + DROPBOX_TOKEN,
            data={"grant_type": "authorization_code", "code": code},
            auth=("bare-team", "s"),
        ).json()
        assert team["team_id"] == team_app["team_id"]
        second = client.register_app("box", "second-box", client_secret="s")
        assert second["users"] == [], "an app that someone can already authorize gets no extra account"
        assert client.authorize("box", "second-box")


def test_earlier_revisions_are_bounded_in_count_and_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    from dropbox_box_provider.emulator import files

    tree = files.Tree("id:root")
    node = tree.add(tree.root, "f", False, "id:f")
    revs = []
    for index in range(files.MAX_REVISIONS + 3):
        node.set_content(b"v%d" % index)
        revs.append(node.rev)
    assert list(node.revisions) == revs[-files.MAX_REVISIONS - 1 : -1], "the newest earlier revisions"
    assert tree.find_revision(revs[0]) is None and tree.find_revision(revs[-2]) is not None
    monkeypatch.setattr(files, "MAX_REVISION_BYTES", 6)
    node.set_content(b"123456")
    node.set_content(b"abcdef")
    assert [r.content for r in node.revisions.values()] == [b"123456"], "older bytes dropped past the budget"
