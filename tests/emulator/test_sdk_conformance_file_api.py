"""The emulator's search, temporary-link, shared-link and version routes, driven by the official SDKs."""

from __future__ import annotations

import base64
import hashlib
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.emulator.helpers import box_tokens, dropbox_tokens
from tests.emulator.test_sdk_conformance import EmulatorSession, _box_network_session

dropbox = pytest.importorskip("dropbox")
box_sdk_gen = pytest.importorskip("box_sdk_gen")


def _dropbox(emulator: Any) -> Any:
    tokens = dropbox_tokens(emulator.url, emulator.client)
    return dropbox.Dropbox(oauth2_access_token=tokens["access_token"], session=EmulatorSession(emulator.url))


def _box(emulator: Any) -> Any:
    from box_sdk_gen import BoxClient, BoxDeveloperTokenAuth

    token = box_tokens(emulator.url, emulator.client)["access_token"]
    return BoxClient(
        auth=BoxDeveloperTokenAuth(token=token), network_session=_box_network_session(emulator.url)
    )


def test_dropbox_sdk_search_v2_pages_through_continue(fresh_emulator):
    client = _dropbox(fresh_emulator)
    for index in range(5):
        client.files_upload(b"x", f"/Search/Ünïcode report {index}.csv")
    client.files_upload(b"y", "/Search/other.txt")
    client.files_upload(b"z", "/Elsewhere/report 9.csv")
    options = dropbox.files.SearchOptions(path="/search", max_results=2, filename_only=True)
    result = client.files_search_v2("ÜNÏCODE REPORT", options=options)
    names = [m.metadata.get_metadata().name for m in result.matches]
    assert len(names) == 2 and result.has_more and result.cursor
    assert result.matches[0].match_type.is_filename()
    while result.has_more:
        result = client.files_search_continue_v2(result.cursor)
        names += [m.metadata.get_metadata().name for m in result.matches]
    assert sorted(names) == [f"Ünïcode report {i}.csv" for i in range(5)]
    everywhere = client.files_search_v2("report")
    assert len(everywhere.matches) == 6 and not everywhere.has_more
    with pytest.raises(dropbox.exceptions.ApiError) as caught:
        client.files_search_v2("x", options=dropbox.files.SearchOptions(path="/missing"))
    assert caught.value.error.is_path() and caught.value.error.get_path().is_not_found()


def test_dropbox_sdk_temporary_link_and_revisions(fresh_emulator):
    client = _dropbox(fresh_emulator)
    first = client.files_upload(b"one", "/Rev/ä.txt")
    second = client.files_upload(b"two!", "/Rev/ä.txt", mode=dropbox.files.WriteMode.overwrite)
    link = client.files_get_temporary_link("/rev/Ä.txt")
    assert link.metadata.id == first.id and link.metadata.rev == second.rev
    assert httpx.get(link.link).content == b"two!", "a temporary link needs no authorization"
    assert httpx.get(link.link, headers={"Range": "bytes=1-2"}).content == b"wo"
    revisions = client.files_list_revisions("/Rev/ä.txt")
    assert [entry.rev for entry in revisions.entries] == [second.rev, first.rev]
    assert not revisions.is_deleted and not revisions.has_more
    assert client.files_list_revisions("/Rev/ä.txt", limit=1).has_more
    assert client.files_download(f"rev:{revisions.entries[1].rev}")[1].content == b"one"
    with pytest.raises(dropbox.exceptions.ApiError) as caught:
        client.files_get_temporary_link("/Rev/missing.txt")
    assert caught.value.error.is_path() and caught.value.error.get_path().is_not_found()


def test_dropbox_sdk_shared_link_and_already_exists(fresh_emulator):
    client = _dropbox(fresh_emulator)
    client.files_upload(b"share me", "/Share/a.txt")
    expires = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0, tzinfo=None)
    settings = dropbox.sharing.SharedLinkSettings(
        requested_visibility=dropbox.sharing.RequestedVisibility.team_only, expires=expires
    )
    made = client.sharing_create_shared_link_with_settings("/Share/a.txt", settings)
    assert isinstance(made, dropbox.sharing.FileLinkMetadata) and made.url.startswith("https://")
    assert made.link_permissions.resolved_visibility.is_team_only() and made.expires == expires
    with pytest.raises(dropbox.exceptions.ApiError) as caught:
        client.sharing_create_shared_link_with_settings("/share/A.TXT")
    error = caught.value.error
    assert error.is_shared_link_already_exists()
    existing = error.get_shared_link_already_exists()
    assert existing.is_metadata() and existing.get_metadata().url == made.url
    with pytest.raises(dropbox.exceptions.ApiError) as missing:
        client.sharing_create_shared_link_with_settings("/Share/none.txt")
    assert missing.value.error.is_path()


def test_box_sdk_search_with_ancestor_and_offset_paging(fresh_emulator):
    from box_sdk_gen import CreateFolderParent, UploadFileAttributes, UploadFileAttributesParentField

    client = _box(fresh_emulator)
    folder = client.folders.create_folder("Ünïcode", CreateFolderParent(id="0"))
    other = client.folders.create_folder("Other", CreateFolderParent(id="0"))
    for index in range(3):
        client.uploads.upload_file(
            UploadFileAttributes(
                name=f"Quarterly Report {index}.csv", parent=UploadFileAttributesParentField(id=folder.id)
            ),
            io.BytesIO(b"data"),
        )
    client.uploads.upload_file(
        UploadFileAttributes(
            name="quarterly report x.csv", parent=UploadFileAttributesParentField(id=other.id)
        ),
        io.BytesIO(b"data"),
    )
    found = client.search.search_for_content(
        query="quarterly report", ancestor_folder_ids=[folder.id], limit=2
    )
    assert found.total_count == 3 and len(found.entries) == 2
    rest = client.search.search_for_content(
        query="QUARTERLY REPORT", ancestor_folder_ids=[folder.id], limit=2, offset=2
    )
    names = sorted(e.name for e in [*found.entries, *rest.entries])
    assert names == [f"Quarterly Report {i}.csv" for i in range(3)]
    assert all(e.path_collection.entries[-1].id == folder.id for e in found.entries)
    assert client.search.search_for_content(query="quarterly").total_count == 4


def test_box_sdk_versions_download_url_and_shared_link(fresh_emulator):
    from box_sdk_gen import (
        AddShareLinkToFileSharedLink,
        AddShareLinkToFileSharedLinkAccessField,
        UploadFileAttributes,
        UploadFileAttributesParentField,
        UploadFileVersionAttributes,
    )

    client = _box(fresh_emulator)
    first = client.uploads.upload_file(
        UploadFileAttributes(name="vérsion.txt", parent=UploadFileAttributesParentField(id="0")),
        io.BytesIO(b"one"),
    ).entries[0]
    second = client.uploads.upload_file_version(
        first.id, UploadFileVersionAttributes(name="vérsion.txt"), io.BytesIO(b"two!")
    ).entries[0]
    versions = client.file_versions.get_file_versions(first.id)
    assert versions.total_count == 1 and versions.entries[0].id == first.file_version.id
    assert versions.entries[0].sha_1 == hashlib.sha1(b"one").hexdigest()
    assert second.file_version.id != first.file_version.id
    url = client.downloads.get_download_file_url(first.id)
    assert httpx.get(url).content == b"two!", "the pre-signed URL needs no authorization"
    old = client.downloads.download_file(first.id, version=versions.entries[0].id)
    assert old.read() == b"one"
    shared = client.shared_links_files.add_share_link_to_file(
        first.id,
        "shared_link",
        shared_link=AddShareLinkToFileSharedLink(access=AddShareLinkToFileSharedLinkAccessField.COMPANY),
    )
    assert shared.shared_link.url.startswith("https://") and shared.shared_link.access.value == "company"
    again = client.shared_links_files.add_share_link_to_file(
        first.id,
        "shared_link",
        shared_link=AddShareLinkToFileSharedLink(access=AddShareLinkToFileSharedLinkAccessField.OPEN),
    )
    assert again.shared_link.url == shared.shared_link.url, "changing the settings keeps the link"
    fetched = client.shared_links_files.get_shared_link_for_file(first.id, "shared_link")
    assert fetched.shared_link.effective_access.value == "open"


def test_box_sdk_if_match_answers_412_on_a_lost_update(fresh_emulator):
    from box_sdk_gen import (
        BoxAPIError,
        UpdateFileByIdParent,
        UploadFileAttributes,
        UploadFileAttributesParentField,
        UploadFileVersionAttributes,
    )

    client = _box(fresh_emulator)
    first = client.uploads.upload_file(
        UploadFileAttributes(name="etag.txt", parent=UploadFileAttributesParentField(id="0")),
        io.BytesIO(b"1"),
    ).entries[0]
    second = client.uploads.upload_file_version(
        first.id, UploadFileVersionAttributes(name="etag.txt"), io.BytesIO(b"2"), if_match=first.etag
    ).entries[0]
    assert second.etag != first.etag
    for stale in (
        lambda: client.uploads.upload_file_version(
            first.id, UploadFileVersionAttributes(name="etag.txt"), io.BytesIO(b"3"), if_match=first.etag
        ),
        lambda: client.files.update_file_by_id(first.id, name="renamed.txt", if_match=first.etag),
        lambda: client.files.delete_file_by_id(first.id, if_match=first.etag),
    ):
        with pytest.raises(BoxAPIError) as caught:
            stale()
        assert caught.value.response_info.status_code == 412
        assert caught.value.response_info.code == "precondition_failed"
    moved = client.files.update_file_by_id(
        first.id, name="renamed.txt", parent=UpdateFileByIdParent(id="0"), if_match=second.etag
    )
    assert moved.name == "renamed.txt"
    client.files.delete_file_by_id(first.id, if_match=moved.etag)


def test_box_sdk_if_match_on_folders_chunked_commits_and_moves(fresh_emulator):
    """Folder update/delete and an upload session's commit answer 412 to a stale If-Match; a move into
    another folder (and a copy) goes ahead whatever If-Match says, as Box documents."""
    from box_sdk_gen import (
        BoxAPIError,
        CopyFileParent,
        CreateFolderParent,
        UpdateFileByIdParent,
        UploadFileAttributes,
        UploadFileAttributesParentField,
        UploadPart,
    )

    client = _box(fresh_emulator)
    folder = client.folders.create_folder("Étag folder", CreateFolderParent(id="0"))
    other = client.folders.create_folder("Other", CreateFolderParent(id="0"))
    for stale in (
        lambda: client.folders.update_folder_by_id(folder.id, name="renamed", if_match="999"),
        lambda: client.folders.delete_folder_by_id(folder.id, if_match="999"),
    ):
        with pytest.raises(BoxAPIError) as caught:
            stale()
        assert caught.value.response_info.status_code == 412
    renamed = client.folders.update_folder_by_id(folder.id, name="renamed", if_match=folder.etag)
    assert renamed.name == "renamed"

    small = client.uploads.upload_file(
        UploadFileAttributes(name="big.bin", parent=UploadFileAttributesParentField(id=folder.id)),
        io.BytesIO(b"small"),
    ).entries[0]
    data = bytes(range(256)) * (20_000_000 // 256 + 1)
    session = client.chunked_uploads.create_file_upload_session_for_existing_file(small.id, len(data))
    parts = []
    for start in range(0, len(data), session.part_size):
        chunk = data[start : start + session.part_size]
        digest = "sha=" + base64.b64encode(hashlib.sha1(chunk).digest()).decode()
        content_range = f"bytes {start}-{start + len(chunk) - 1}/{len(data)}"
        part = client.chunked_uploads.upload_file_part(session.id, io.BytesIO(chunk), digest, content_range)
        parts.append(
            UploadPart(part_id=part.part.part_id, offset=start, size=len(chunk), sha_1=part.part.sha_1)
        )
    whole = "sha=" + base64.b64encode(hashlib.sha1(data).digest()).decode()
    with pytest.raises(BoxAPIError) as caught:
        client.chunked_uploads.create_file_upload_session_commit(session.id, parts, whole, if_match="999")
    assert caught.value.response_info.status_code == 412
    assert client.downloads.download_file(small.id).read() == b"small", "the stale commit changed nothing"
    committed = client.chunked_uploads.create_file_upload_session_commit(
        session.id, parts, whole, if_match=small.etag
    )
    assert committed.entries[0].id == small.id and committed.entries[0].size == len(data)

    moved = client.files.update_file_by_id(
        small.id, parent=UpdateFileByIdParent(id=other.id), if_match=small.etag
    )
    assert moved.parent.id == other.id, "If-Match cannot prevent a move"
    copied = client.files.copy_file(small.id, CopyFileParent(id=folder.id), name="copy.bin")
    assert copied.id != small.id
    client.folders.delete_folder_by_id(folder.id, recursive=True, if_match=renamed.etag)


def test_box_sdk_folder_shared_link_password_expiry_and_version_pages(fresh_emulator):
    from box_sdk_gen import (
        AddShareLinkToFileSharedLink,
        AddShareLinkToFileSharedLinkAccessField,
        AddShareLinkToFolderSharedLink,
        AddShareLinkToFolderSharedLinkAccessField,
        BoxAPIError,
        CreateFolderParent,
        UploadFileAttributes,
        UploadFileAttributesParentField,
        UploadFileVersionAttributes,
    )

    client = _box(fresh_emulator)
    folder = client.folders.create_folder("Pårtage", CreateFolderParent(id="0"))
    until = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    shared = client.shared_links_folders.add_share_link_to_folder(
        folder.id,
        "shared_link",
        shared_link=AddShareLinkToFolderSharedLink(
            access=AddShareLinkToFolderSharedLinkAccessField.COMPANY, unshared_at=until
        ),
    )
    assert shared.shared_link.access.value == "company" and shared.shared_link.unshared_at == until
    with pytest.raises(BoxAPIError) as caught:
        client.shared_links_folders.add_share_link_to_folder(
            folder.id,
            "shared_link",
            shared_link=AddShareLinkToFolderSharedLink(
                access=AddShareLinkToFolderSharedLinkAccessField.COLLABORATORS, password="s3cret-pass"
            ),
        )
    assert caught.value.response_info.status_code == 400, "a password needs access 'open'"

    file = client.uploads.upload_file(
        UploadFileAttributes(name="v.txt", parent=UploadFileAttributesParentField(id=folder.id)),
        io.BytesIO(b"0"),
    ).entries[0]
    for index in range(1, 4):
        client.uploads.upload_file_version(
            file.id, UploadFileVersionAttributes(name="v.txt"), io.BytesIO(b"%d" % index)
        )
    protected = client.shared_links_files.add_share_link_to_file(
        file.id,
        "shared_link",
        shared_link=AddShareLinkToFileSharedLink(
            access=AddShareLinkToFileSharedLinkAccessField.OPEN, password="s3cret-pass"
        ),
    )
    assert protected.shared_link.is_password_enabled
    first = client.file_versions.get_file_versions(file.id, limit=2)
    rest = client.file_versions.get_file_versions(file.id, limit=2, offset=2)
    assert first.total_count == 3 and len(first.entries) == 2 and len(rest.entries) == 1
    assert [v.sha_1 for v in [*first.entries, *rest.entries]] == [
        hashlib.sha1(b"%d" % i).hexdigest() for i in (2, 1, 0)
    ]


def test_dropbox_sdk_shared_link_with_the_settings_the_hook_sends(fresh_emulator):
    """audience, access, require_password/link_password and expires (what DropboxHook.shared_link sends),
    on a file and on a folder."""
    client = _dropbox(fresh_emulator)
    client.files_upload(b"secret", "/Lïnks/a.txt")
    expires = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0, tzinfo=None)
    settings = dropbox.sharing.SharedLinkSettings(
        audience=dropbox.sharing.LinkAudience.public,
        access=dropbox.sharing.RequestedLinkAccessLevel.viewer,
        require_password=True,
        link_password="s3cret-pass",
        expires=expires,
    )
    made = client.sharing_create_shared_link_with_settings("/Lïnks/a.txt", settings)
    assert made.link_permissions.require_password and made.expires == expires
    folder = client.sharing_create_shared_link_with_settings(
        "/Lïnks",
        dropbox.sharing.SharedLinkSettings(
            audience=dropbox.sharing.LinkAudience.team, access=dropbox.sharing.RequestedLinkAccessLevel.viewer
        ),
    )
    assert isinstance(folder, dropbox.sharing.FolderLinkMetadata)
    assert folder.link_permissions.effective_audience.is_team() and folder.url != made.url
    with pytest.raises(dropbox.exceptions.ApiError) as caught:
        client.sharing_create_shared_link_with_settings("/lïnks")
    assert caught.value.error.get_shared_link_already_exists().get_metadata().url == folder.url
    with pytest.raises(dropbox.exceptions.ApiError) as past:
        client.files_upload(b"x", "/Lïnks/b.txt")
        client.sharing_create_shared_link_with_settings(
            "/Lïnks/b.txt", dropbox.sharing.SharedLinkSettings(expires=datetime(2000, 1, 1))
        )
    assert past.value.error.is_settings_error()
    with pytest.raises(dropbox.exceptions.ApiError) as folder_link:
        client.files_get_temporary_link("/Lïnks")
    assert folder_link.value.error.is_path()
