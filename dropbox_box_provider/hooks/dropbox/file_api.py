"""Dropbox search, temporary and shared links, and revisions (``DropboxHook``'s calls beyond transfers)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from dropbox_box_provider.auth.services import DROPBOX
from dropbox_box_provider.errors import AlreadyExists, InvalidArgument, NotFound, ServiceError
from dropbox_box_provider.hooks.base import mask_secrets
from dropbox_box_provider.hooks.dropbox.paths import entry_of, is_root, normalize_path
from dropbox_box_provider.hooks.file_api import (
    link_access,
    link_expiry,
    name_contains,
    search_limit,
    search_query,
)
from dropbox_box_provider.hooks.files import RemoteEntry, RemoteVersion, SharedLinkAccess
from dropbox_box_provider.hooks.matching import aware_time

if TYPE_CHECKING:
    from dropbox_box_provider.hooks.dropbox.hook import DropboxHook

#: Matches asked for per search page (Dropbox allows 1..1000).
SEARCH_PAGE = 1000
#: Revisions listed per file (Dropbox allows 1..100).
MAX_REVISIONS = 100
_RPC_HEADERS = {"Content-Type": "application/json"}
_REV = re.compile(r"[0-9a-f]{9,}")


def search(hook: DropboxHook, query: str, path: str | None, limit: int | None) -> Iterator[RemoteEntry]:
    """Arguments are checked now; the pages are fetched as the result is iterated."""
    text, wanted = search_query(query), search_limit(limit)
    options: dict[str, Any] = {"filename_only": True, "max_results": min(SEARCH_PAGE, wanted or SEARCH_PAGE)}
    if path is not None and not is_root(path):
        options["path"] = normalize_path(path)
    return _matches(hook, {"query": text, "options": options}, text, wanted)


def _matches(hook: DropboxHook, arg: dict[str, Any], text: str, wanted: int | None) -> Iterator[RemoteEntry]:
    found = 0
    page = hook.rpc("files/search_v2", arg)
    while True:
        for match in page.get("matches") or []:
            metadata = (match.get("metadata") or {}).get("metadata")
            if not isinstance(metadata, dict) or metadata.get(".tag") not in ("file", "folder"):
                continue
            entry = entry_of(metadata)
            if name_contains(entry, text):
                yield entry
                found += 1
                if wanted is not None and found >= wanted:
                    return
        if not page.get("has_more") or not page.get("cursor"):
            return
        page = hook.rpc("files/search/continue_v2", {"cursor": page["cursor"]})


def temporary_link(hook: DropboxHook, path: str) -> str:
    """``files/get_temporary_link``'s URL; a folder is refused with what to use instead."""
    try:
        result = hook.rpc("files/get_temporary_link", {"path": path})
    except ServiceError as exc:
        if "not_file" in (exc.code or ""):
            raise InvalidArgument(
                f"Dropbox path {path!r} is a folder: temporary links are for files; use shared_link() for "
                "a folder"
            ) from exc
        raise
    return str(result["link"])


def shared_link(
    hook: DropboxHook,
    path: str,
    access: SharedLinkAccess,
    password: str | None,
    expires: datetime | str | None,
) -> str:
    """A new link with these settings, or the item's existing one (409 ``shared_link_already_exists``)."""
    if link_access(access) == "collaborators":
        raise InvalidArgument(
            "Dropbox has no shared link limited to collaborators: a link is public or team-only. Use "
            "access='team' (team members), or share the file or folder with those people in Dropbox"
        )
    settings: dict[str, Any] = {
        "audience": {".tag": "public" if access == "public" else "team"},
        "access": {".tag": "viewer"},
    }
    if password:
        mask_secrets(password)
        settings.update({"require_password": True, "link_password": password})
    expiry = link_expiry(expires)
    if expiry is not None:
        settings["expires"] = expiry.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    response = hook.request(
        "POST",
        f"{DROPBOX.api_base}/sharing/create_shared_link_with_settings",
        content=json.dumps({"path": path, "settings": settings}).encode(),
        headers=_RPC_HEADERS,
        expected=(200, 409),
    )
    body = response.json()
    if response.status_code == 200:
        return str(body["url"])
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and error.get(".tag") == "shared_link_already_exists":
        existing = error.get("shared_link_already_exists") or {}
        url = (existing.get("metadata") or {}).get("url") if existing.get(".tag") == "metadata" else None
        if url:  # a repeated call, or a link made earlier: Dropbox keeps one per item
            return str(url)
        raise AlreadyExists(
            f"Dropbox already has a shared link for {path!r} but did not return it; copy it from the Dropbox "
            "web page (Share > Copy link)",
            status=409,
            code="shared_link_already_exists",
        )
    raise hook.error_for(response)


def versions(hook: DropboxHook, path: str) -> list[RemoteVersion]:
    """``files/list_revisions``: newest first, the first one current."""
    try:
        result = hook.rpc("files/list_revisions", {"path": path, "limit": MAX_REVISIONS})
    except ServiceError as exc:
        if "not_file" in (exc.code or ""):
            raise InvalidArgument(f"Dropbox path {path!r} is a folder: only files have versions") from exc
        raise
    return [
        RemoteVersion(
            id=str(raw["rev"]),
            size=raw.get("size") if isinstance(raw.get("size"), int) else None,
            modified=aware_time(raw.get("server_modified")),
            content_hash=raw.get("content_hash"),
            hash_algorithm="dropbox-content-hash",
            current=index == 0,
            raw=raw,
        )
        for index, raw in enumerate(result.get("entries") or [])
    ]


def revision_path(hook: DropboxHook, path: str, version: str) -> str:
    """``rev:<version>`` after checking the revision belongs to the file at ``path`` (NotFound if not)."""
    rev = version.removeprefix("rev:") if isinstance(version, str) else ""
    if not _REV.fullmatch(rev):
        raise InvalidArgument(
            f"{version!r} is not a Dropbox revision: give a rev from versions(), e.g. 'a1c10ce0dd78'"
        )
    revision, current = hook.info(f"rev:{rev}"), hook.info(path)
    if revision.id != current.id:
        raise NotFound(
            f"revision {rev} is not a version of {path!r}; list the file's versions with versions()",
            status=409,
            code="path/not_found",
        )
    return f"rev:{rev}"
