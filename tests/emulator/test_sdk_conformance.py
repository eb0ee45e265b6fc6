"""The official SDKs (dropbox, box-sdk-gen) work unchanged against the emulator."""

from __future__ import annotations

import hashlib
import io
import os
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
