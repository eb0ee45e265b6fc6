"""Box search, temporary and shared links, and file versions (``BoxHook``'s calls beyond transfers)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from dropbox_box_provider.auth.services import BOX
from dropbox_box_provider.errors import InvalidArgument, NotFound
from dropbox_box_provider.hooks.base import mask_secrets
from dropbox_box_provider.hooks.box.paths import ROOT_ID, entry_of
from dropbox_box_provider.hooks.file_api import (
    link_access,
    link_expiry,
    name_contains,
    search_limit,
    search_query,
)
from dropbox_box_provider.hooks.files import RemoteEntry, RemoteVersion, SharedLinkAccess
from dropbox_box_provider.hooks.matching import aware_time
from dropbox_box_provider.lazy import lazy_module

# ``download`` loads with the first call, not while a DAG file is parsed (dropbox_box_provider/lazy.py).
if TYPE_CHECKING:
    from dropbox_box_provider.hooks.box import download
    from dropbox_box_provider.hooks.box.hook import BoxHook
else:
    download = lazy_module("dropbox_box_provider.hooks.box.download", globals())

API = BOX.api_base
#: Results asked for per search page (Box allows up to 200) and the furthest offset Box accepts.
SEARCH_PAGE = 200
MAX_SEARCH_OFFSET = 10000
VERSIONS_PAGE = 1000
#: The provider's access names as Box spells them.
BOX_ACCESS = {"public": "open", "team": "company", "collaborators": "collaborators"}


def search(hook: BoxHook, query: str, path: str | None, limit: int | None) -> Iterator[RemoteEntry]:
    """Arguments (and the folder) are checked now; the pages are fetched as the result is iterated."""
    text, wanted = search_query(query), search_limit(limit)
    params: dict[str, Any] = {
        "query": text,
        "content_types": "name",
        "limit": min(SEARCH_PAGE, wanted or SEARCH_PAGE),
    }
    if path is not None:
        folder = hook._lookup(path, "folder")
        if folder.id != ROOT_ID:
            params["ancestor_folder_ids"] = folder.id
    return _results(hook, params, text, wanted)


def _results(hook: BoxHook, params: dict[str, Any], text: str, wanted: int | None) -> Iterator[RemoteEntry]:
    found = offset = 0
    while True:
        body = hook.request("GET", f"{API}/search", params={**params, "offset": offset}).json()
        entries = body.get("entries") or []
        for raw in entries:
            if raw.get("type") not in ("file", "folder"):
                continue  # web links have no content
            entry = entry_of(raw)
            if name_contains(entry, text):
                yield entry
                found += 1
                if wanted is not None and found >= wanted:
                    return
        offset += len(entries)
        if not entries or offset >= int(body.get("total_count") or 0) or offset > MAX_SEARCH_OFFSET:
            return


def temporary_link(hook: BoxHook, path: str) -> str:
    """The pre-signed URL Box redirects ``/files/{id}/content`` to (it expires within minutes)."""
    item = hook._lookup(path, "file")
    return download.download_url(hook, download.content_location(hook, item.id))


def shared_link(
    hook: BoxHook,
    path: str,
    access: SharedLinkAccess,
    password: str | None,
    expires: datetime | str | None,
) -> str:
    """Set the item's ``shared_link`` field (``PUT /files|folders/{id}?fields=shared_link``): a repeated
    call sets the same settings again and keeps the link's URL."""
    level = BOX_ACCESS[link_access(access)]
    link: dict[str, Any] = {"access": level}
    if password:
        if level != "open":
            raise InvalidArgument(
                "Box sets a password only on links anyone can open: use access='public' with a password"
            )
        mask_secrets(password)
        link["password"] = password
    expiry = link_expiry(expires)
    if expiry is not None:
        link["unshared_at"] = expiry.astimezone(UTC).isoformat(timespec="seconds")
    item = hook._lookup(path)
    if item.id == ROOT_ID and item.type == "folder":
        raise InvalidArgument("the Box root folder cannot be shared by link; share a folder inside it")
    response = hook.request(
        "PUT", f"{API}/{item.type}s/{item.id}", params={"fields": "shared_link"}, json={"shared_link": link}
    )
    return str(response.json()["shared_link"]["url"])


def _version_of(raw: dict[str, Any], current: bool) -> RemoteVersion:
    size = raw.get("size")
    return RemoteVersion(
        id=str(raw["id"]),
        size=size if isinstance(size, int) else None,
        modified=aware_time(raw.get("modified_at") or raw.get("created_at")),
        content_hash=raw.get("sha1"),
        hash_algorithm="sha1",
        current=current,
        raw=raw,
    )


def versions(hook: BoxHook, path: str) -> list[RemoteVersion]:
    """The current version (from the file object) then the earlier ones (``GET /files/{id}/versions``),
    newest first."""
    body = hook._object(path, "file")
    file_version = body.get("file_version") or {}
    current = _version_of(
        {**body, "id": file_version.get("id", ""), "sha1": file_version.get("sha1") or body.get("sha1")}, True
    )
    earlier: list[RemoteVersion] = []
    offset = 0
    while True:
        page = hook.request(
            "GET",
            f"{API}/files/{body['id']}/versions",
            params={"limit": VERSIONS_PAGE, "offset": offset},
        ).json()
        entries = page.get("entries") or []
        earlier += [_version_of(raw, False) for raw in entries if raw.get("id")]
        offset += len(entries)
        if not entries or offset >= int(page.get("total_count") or 0):
            break
    oldest = datetime.min.replace(tzinfo=UTC)
    earlier.sort(key=lambda v: v.modified or oldest, reverse=True)
    return [current, *earlier]


def version_info(hook: BoxHook, body: dict[str, Any], version: str) -> dict[str, Any]:
    """The file object as ``download.fetch_into`` needs it for ``version`` (its sha1 and size); NotFound
    when ``version`` is not one of the file's."""
    if str((body.get("file_version") or {}).get("id")) == str(version):
        return body
    for found in versions(hook, f"id:{body['id']}")[1:]:
        if found.id == str(version):
            return {**body, "sha1": found.content_hash, "size": found.size}
    raise NotFound(
        f"Box file {body.get('name')!r} ({body.get('id')}) has no version {version!r}; list its versions "
        "with versions()",
        status=404,
        code="not_found",
    )
