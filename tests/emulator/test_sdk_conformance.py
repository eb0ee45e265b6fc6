"""The official SDKs (dropbox, box-sdk-gen) work unchanged against the emulator."""

from __future__ import annotations

import hashlib
import io
import os
import re
import time
from typing import Any

import pytest
import requests

from dropbox_box_provider.emulator import seed
from tests.emulator.helpers import box_tokens, dropbox_tokens

dropbox = pytest.importorskip("dropbox")
box_sdk_gen = pytest.importorskip("box_sdk_gen")


class EmulatorSession(requests.Session):
    """A requests session that sends https://<host>/<path> to <emulator>/<host>/<path>."""

    def __init__(self, base_url: str) -> None:
        super().__init__()
        self.base_url = base_url.rstrip("/")

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        text = url.decode() if isinstance(url, bytes) else url
        if text.startswith("https://"):
            text = f"{self.base_url}/{text[len('https://') :]}"
        return super().request(method, text, *args, **kwargs)


def test_dropbox_sdk_refresh_account_list_upload_download(fresh_emulator):
    tokens = dropbox_tokens(fresh_emulator.url, fresh_emulator.client)
    client = dropbox.Dropbox(
        oauth2_refresh_token=tokens["refresh_token"],
        app_key=seed.DEMO_DROPBOX_CLIENT_ID,
        app_secret=seed.DEMO_DROPBOX_CLIENT_SECRET,
        session=EmulatorSession(fresh_emulator.url),
    )
    account = client.users_get_current_account()
    assert account.account_id == seed.DEMO_DROPBOX_ACCOUNT_ID
    assert fresh_emulator.client.stats()["dropbox"]["token"]["refresh_token"]["ok"] == 1
    data = os.urandom(5 * 1024 * 1024 + 17)
    meta = client.files_upload(data, "/SDK/Ünïcode.bin", mode=dropbox.files.WriteMode.overwrite)
    assert meta.size == len(data) and meta.path_display == "/SDK/Ünïcode.bin"
    from dropbox.content_hash import DropboxContentHasher

    expected = DropboxContentHasher()
    expected.update(data)
    assert meta.content_hash == expected.hexdigest(), "the SDK's own hasher agrees"
    listing = client.files_list_folder("/sdk", limit=1)
    assert [e.name for e in listing.entries] == ["Ünïcode.bin"] and not listing.has_more
    downloaded_meta, response = client.files_download("/sdk/ünïcode.bin")
    assert response.content == data and downloaded_meta.id == meta.id
    start = client.files_upload_session_start(data[: 4 * 1024 * 1024])
    cursor = dropbox.files.UploadSessionCursor(session_id=start.session_id, offset=4 * 1024 * 1024)
    commit = dropbox.files.CommitInfo(path="/sdk/session.bin")
    finished = client.files_upload_session_finish(data[4 * 1024 * 1024 :], cursor, commit)
    assert finished.content_hash == meta.content_hash
    with pytest.raises(dropbox.exceptions.ApiError) as caught:
        client.files_get_metadata("/sdk/missing")
    assert caught.value.error.is_path() and caught.value.error.get_path().is_not_found()
    fresh_emulator.client.expire_access_tokens(service="dropbox")
    assert client.users_get_current_account().account_id == seed.DEMO_DROPBOX_ACCOUNT_ID


def _box_network_session(url: str) -> Any:
    from box_sdk_gen import BaseUrls, NetworkSession

    return NetworkSession(
        base_urls=BaseUrls(
            base_url=f"{url}/api.box.com",
            upload_url=f"{url}/upload.box.com/api",
            oauth_2_url=f"{url}/account.box.com/api/oauth2",
        )
    )


def _exercise_box(client: Any) -> None:
    from box_sdk_gen import UploadFileAttributes, UploadFileAttributesParentField

    data = os.urandom(200_000)
    uploaded = client.uploads.upload_file(
        UploadFileAttributes(name="sdk.bin", parent=UploadFileAttributesParentField(id="0")), io.BytesIO(data)
    )
    file = uploaded.entries[0]
    assert file.sha_1 == hashlib.sha1(data).hexdigest()
    items = client.folders.get_folder_items("0")
    assert [entry.name for entry in items.entries] == ["sdk.bin"]
    stream = client.downloads.download_file(file.id)
    assert stream.read() == data


def test_box_sdk_ccg(fresh_emulator):
    from box_sdk_gen import BoxCCGAuth, BoxClient, CCGConfig

    auth = BoxCCGAuth(
        CCGConfig(
            client_id=seed.DEMO_BOX_CCG_CLIENT_ID,
            client_secret=seed.DEMO_BOX_CCG_CLIENT_SECRET,
            enterprise_id=seed.DEMO_BOX_ENTERPRISE_ID,
        )
    )
    client = BoxClient(auth=auth, network_session=_box_network_session(fresh_emulator.url))
    assert client.users.get_user_me().id == seed.DEMO_BOX_CCG_SERVICE_ACCOUNT_ID
    _exercise_box(client)


def test_box_sdk_jwt_from_config_file(fresh_emulator):
    from box_sdk_gen import BoxClient, BoxJWTAuth, JWTConfig

    config = JWTConfig.from_config_file(str(fresh_emulator.box_jwt_config))
    client = BoxClient(
        auth=BoxJWTAuth(config=config), network_session=_box_network_session(fresh_emulator.url)
    )
    assert client.users.get_user_me().id == seed.DEMO_BOX_JWT_SERVICE_ACCOUNT_ID
    stats = fresh_emulator.client.stats()["box"]["token"]["urn:ietf:params:oauth:grant-type:jwt-bearer"]
    assert stats["ok"] == 1


def test_box_sdk_oauth_refreshes_after_401_and_chunked_upload(fresh_emulator):
    from box_sdk_gen import AccessToken, BoxClient, BoxOAuth, InMemoryTokenStorage, OAuthConfig

    tokens = box_tokens(fresh_emulator.url, fresh_emulator.client)
    storage = InMemoryTokenStorage(
        token=AccessToken(access_token=tokens["access_token"], refresh_token=tokens["refresh_token"])
    )
    auth = BoxOAuth(
        OAuthConfig(
            client_id=seed.DEMO_BOX_CLIENT_ID,
            client_secret=seed.DEMO_BOX_CLIENT_SECRET,
            token_storage=storage,
        )
    )
    client = BoxClient(auth=auth, network_session=_box_network_session(fresh_emulator.url))
    assert client.users.get_user_me().id == seed.DEMO_BOX_USER_ID
    fresh_emulator.client.expire_access_tokens(service="box")
    assert client.users.get_user_me().id == seed.DEMO_BOX_USER_ID
    stats = fresh_emulator.client.stats()["box"]
    assert stats["token"]["refresh_token"]["ok"] == 1
    assert stats["routes"]["/2.0/users/me"]["401"] == 1
    assert storage.get().refresh_token != tokens["refresh_token"], "the rotated refresh token was stored"
    _exercise_box(client)
    data = os.urandom(20_000_000 + 5)
    big = client.chunked_uploads.upload_big_file(io.BytesIO(data), "big.bin", len(data), "0")
    assert big.sha_1 == hashlib.sha1(data).hexdigest() and big.size == len(data)


# Failures the real services produce (issue 16), read by the official SDKs -------------------------------


def _dropbox_sdk(emulator: Any) -> Any:
    tokens = dropbox_tokens(emulator.url, emulator.client)
    return dropbox.Dropbox(oauth2_access_token=tokens["access_token"], session=EmulatorSession(emulator.url))


def _dropbox_team_sdk(emulator: Any) -> Any:
    code = emulator.client.authorize("dropbox", seed.DEMO_DROPBOX_TEAM_CLIENT_ID, token_access_type="offline")
    token = requests.post(
        emulator.url + "/api.dropboxapi.com/oauth2/token",
        data={"grant_type": "authorization_code", "code": code},
        auth=(seed.DEMO_DROPBOX_TEAM_CLIENT_ID, seed.DEMO_DROPBOX_TEAM_CLIENT_SECRET),
        timeout=30,
    ).json()["access_token"]
    return dropbox.DropboxTeam(oauth2_access_token=token, session=EmulatorSession(emulator.url))


def test_dropbox_sdk_recursive_listing_and_rev_paths(fresh_emulator):
    client = _dropbox_sdk(fresh_emulator)
    first = client.files_upload(b"one", "/Rev/file.txt")
    second = client.files_upload(b"two!", "/Rev/file.txt", mode=dropbox.files.WriteMode.overwrite)
    listing = client.files_list_folder("/rev", recursive=True)
    assert [entry.path_display for entry in listing.entries] == ["/Rev", "/Rev/file.txt"]
    assert isinstance(listing.entries[0], dropbox.files.FolderMetadata)
    old = client.files_get_metadata(f"rev:{first.rev}")
    assert isinstance(old, dropbox.files.FileMetadata) and old.rev == first.rev and old.size == 3
    meta, response = client.files_download(f"rev:{first.rev}")
    assert response.content == b"one" and meta.rev == first.rev
    assert client.files_download(f"rev:{second.rev}")[1].content == b"two!"


def test_dropbox_sdk_ns_paths_and_invalid_select_user(fresh_emulator):
    team = _dropbox_team_sdk(fresh_emulator)
    member = team.as_user(seed.DEMO_DROPBOX_TEAM_MEMBER_MEMBER_ID)
    admin = team.as_user(seed.DEMO_DROPBOX_TEAM_ADMIN_MEMBER_ID)
    namespace = member.users_get_current_account().root_info.root_namespace_id
    member.files_upload(b"in the member's namespace", "/ns.txt")
    meta = admin.files_get_metadata(f"ns:{namespace}/ns.txt")
    assert meta.path_display == "/ns.txt"
    assert admin.files_download(f"ns:{namespace}/ns.txt")[1].content == b"in the member's namespace"
    with pytest.raises(dropbox.exceptions.AuthError) as caught:
        team.as_user("dbmid:nobody").users_get_current_account()
    assert caught.value.error.is_invalid_select_user()
    with pytest.raises(dropbox.exceptions.AuthError) as refused:
        team.as_admin(seed.DEMO_DROPBOX_TEAM_MEMBER_MEMBER_ID).users_get_current_account()
    assert refused.value.error.is_invalid_select_admin()


def test_dropbox_sdk_reads_too_many_write_operations(fresh_emulator):
    client = _dropbox_sdk(fresh_emulator)
    faults = fresh_emulator.client
    faults.fault("*/files/upload", error="too_many_write_operations")
    with pytest.raises(dropbox.exceptions.ApiError) as upload:
        client.files_upload(b"x", "/busy.txt")
    assert upload.value.error.get_path().reason.is_too_many_write_operations()
    client.files_upload(b"x", "/busy.txt")
    faults.fault("*/files/delete_v2", error="too_many_write_operations")
    with pytest.raises(dropbox.exceptions.ApiError) as delete:
        client.files_delete_v2("/busy.txt")
    assert delete.value.error.get_path_write().is_too_many_write_operations()
    faults.fault("*/files/create_folder_v2", error="too_many_write_operations")
    with pytest.raises(dropbox.exceptions.ApiError) as create:
        client.files_create_folder_v2("/busy")
    assert create.value.error.get_path().is_too_many_write_operations()
    start = client.files_upload_session_start(b"abc")
    cursor = dropbox.files.UploadSessionCursor(session_id=start.session_id, offset=3)
    commit = dropbox.files.CommitInfo(path="/session.txt")
    faults.fault("*/files/upload_session/finish", error="too_many_write_operations")
    with pytest.raises(dropbox.exceptions.ApiError) as finish:
        client.files_upload_session_finish(b"", cursor, commit)
    assert finish.value.error.get_path().is_too_many_write_operations()
    assert client.files_upload_session_finish(b"", cursor, commit).size == 3


def _box_oauth_client(emulator: Any) -> Any:
    from box_sdk_gen import AccessToken, BoxClient, BoxOAuth, InMemoryTokenStorage, OAuthConfig

    tokens = box_tokens(emulator.url, emulator.client)
    storage = InMemoryTokenStorage(
        token=AccessToken(access_token=tokens["access_token"], refresh_token=tokens["refresh_token"])
    )
    auth = BoxOAuth(
        OAuthConfig(
            client_id=seed.DEMO_BOX_CLIENT_ID,
            client_secret=seed.DEMO_BOX_CLIENT_SECRET,
            token_storage=storage,
        )
    )
    return BoxClient(auth=auth, network_session=_box_network_session(emulator.url))


def test_box_sdk_trash_and_restore(fresh_emulator):
    from box_sdk_gen import (
        BoxAPIError,
        CreateFolderParent,
        UploadFileAttributes,
        UploadFileAttributesParentField,
    )

    client = _box_oauth_client(fresh_emulator)
    folder = client.folders.create_folder("Trashy", CreateFolderParent(id="0"))
    file = client.uploads.upload_file(
        UploadFileAttributes(name="t.txt", parent=UploadFileAttributesParentField(id=folder.id)),
        io.BytesIO(b"trash me"),
    ).entries[0]
    client.files.delete_file_by_id(file.id)
    with pytest.raises(BoxAPIError) as caught:
        client.files.get_file_by_id(file.id)
    assert caught.value.response_info.status_code == 404 and caught.value.response_info.code == "trashed"
    trashed = client.trashed_files.get_trashed_file_by_id(file.id)
    assert trashed.item_status.value == "trashed"
    restored = client.trashed_files.restore_file_from_trash(file.id)
    assert restored.id == file.id and client.files.get_file_by_id(file.id).name == "t.txt"
    client.folders.delete_folder_by_id(folder.id, recursive=True)
    with pytest.raises(BoxAPIError) as inside:
        client.files.get_file_by_id(file.id)
    assert inside.value.response_info.code == "trashed"
    client.trashed_folders.restore_folder_from_trash(folder.id)
    assert client.downloads.download_file(file.id).read() == b"trash me"


def test_box_sdk_download_link_expires(fresh_emulator):
    from box_sdk_gen import UploadFileAttributes, UploadFileAttributesParentField

    client = _box_oauth_client(fresh_emulator)
    file = client.uploads.upload_file(
        UploadFileAttributes(name="l.txt", parent=UploadFileAttributesParentField(id="0")),
        io.BytesIO(b"linked"),
    ).entries[0]
    fresh_emulator.client.configure(box_download_link_ttl=0.5)
    url = client.downloads.get_download_file_url(file.id)
    assert requests.get(url, timeout=30).content == b"linked"
    time.sleep(0.6)
    assert requests.get(url, timeout=30).status_code == 403
    assert client.downloads.download_file(file.id).read() == b"linked", "a new link works"


def test_box_sdk_follows_grown_part_size_and_reads_parts_mismatch(fresh_emulator):
    from box_sdk_gen import BoxAPIError

    client = _box_oauth_client(fresh_emulator)
    fresh_emulator.client.configure(box_part_size_threshold=20 * 1024 * 1024)
    session = client.chunked_uploads.create_file_upload_session("0", 60 * 1024 * 1024, "plan.bin")
    assert session.part_size == 16 * 1024 * 1024 and session.total_parts == 4
    data = os.urandom(21 * 1024 * 1024)
    big = client.chunked_uploads.upload_big_file(io.BytesIO(data), "grown.bin", len(data), "0")
    assert big.sha_1 == hashlib.sha1(data).hexdigest()
    routes = fresh_emulator.client.stats()["box"]["routes"]
    part_puts = [
        count["200"]
        for route, count in routes.items()
        if re.fullmatch(r"/2\.0/files/upload_sessions/\w+", route)
    ]
    assert part_puts == [2], "two 16 MiB parts, as the session said"
    fresh_emulator.client.fault("*/commit", error="parts_mismatch")
    with pytest.raises(BoxAPIError) as caught:
        client.chunked_uploads.upload_big_file(io.BytesIO(data), "mismatch.bin", len(data), "0")
    assert caught.value.response_info.status_code == 400
    assert caught.value.response_info.code == "parts_mismatch"


def test_dropbox_sdk_move_and_copy(fresh_emulator):
    """files/move_v2 and files/copy_v2, which the hook's move/copy use, as the SDK calls them."""
    tokens = dropbox_tokens(fresh_emulator.url, fresh_emulator.client)
    client = dropbox.Dropbox(
        oauth2_access_token=tokens["access_token"], session=EmulatorSession(fresh_emulator.url)
    )
    original = client.files_upload(b"move me", "/Rel/a.txt")
    moved = client.files_move_v2("/rel/A.TXT", "/Rel/Sub/b.txt").metadata
    assert (moved.path_display, moved.id) == ("/Rel/Sub/b.txt", original.id)
    copied = client.files_copy_v2("/Rel/Sub/b.txt", "/Rel/c.txt").metadata
    assert copied.id != original.id and copied.content_hash == original.content_hash
    with pytest.raises(dropbox.exceptions.ApiError) as caught:
        client.files_move_v2("/Rel/c.txt", "/Rel/Sub/b.txt")
    assert caught.value.error.is_to() and caught.value.error.get_to().is_conflict()
    with pytest.raises(dropbox.exceptions.ApiError) as missing:
        client.files_copy_v2("/Rel/none.txt", "/Rel/d.txt")
    assert missing.value.error.is_from_lookup() and missing.value.error.get_from_lookup().is_not_found()


def test_box_sdk_move_copy_and_listing_fields(fresh_emulator):
    """PUT files/{id} and folders/{id}, POST …/copy, and items listings with ``fields``."""
    from box_sdk_gen import (
        BoxClient,
        BoxDeveloperTokenAuth,
        CopyFileParent,
        CopyFolderParent,
        CreateFolderParent,
        UpdateFileByIdParent,
        UploadFileAttributes,
        UploadFileAttributesParentField,
    )
    from box_sdk_gen.box.errors import BoxAPIError

    tokens = box_tokens(fresh_emulator.url, fresh_emulator.client)
    client = BoxClient(
        auth=BoxDeveloperTokenAuth(token=tokens["access_token"]),
        network_session=_box_network_session(fresh_emulator.url),
    )
    folder = client.folders.create_folder("rel", CreateFolderParent(id="0"))
    data = b"box move me"
    file = client.uploads.upload_file(
        UploadFileAttributes(name="a.txt", parent=UploadFileAttributesParentField(id="0")), io.BytesIO(data)
    ).entries[0]
    moved = client.files.update_file_by_id(file.id, name="b.txt", parent=UpdateFileByIdParent(id=folder.id))
    assert (moved.id, moved.name, moved.parent.id) == (file.id, "b.txt", folder.id)
    copied = client.files.copy_file(file.id, CopyFileParent(id="0"), name="c.txt")
    assert copied.id != file.id and copied.sha_1 == hashlib.sha1(data).hexdigest()
    with pytest.raises(BoxAPIError) as caught:
        client.files.copy_file(file.id, CopyFileParent(id="0"), name="c.txt")
    assert caught.value.response_info.status_code == 409
    assert caught.value.response_info.code == "item_name_in_use"
    folder_copy = client.folders.copy_folder(folder.id, CopyFolderParent(id="0"), name="rel2")
    assert [e.name for e in client.folders.get_folder_items(folder_copy.id).entries] == ["b.txt"]
    listed = client.folders.get_folder_items("0", fields=["name", "size", "modified_at", "sha1"]).entries
    sizes = {entry.name: entry.size for entry in listed}
    assert sizes["c.txt"] == len(data)
    assert all(entry.modified_at is not None for entry in listed)
