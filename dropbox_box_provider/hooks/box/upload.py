"""Box uploads: multipart below 20 MB, an upload session (parts with SHA-1 digests, commit) above; the
SHA-1 Box stores is checked against the local one. A name conflict comes back as ``{"conflict": item}``.

With the hook's ``verify_checksums`` off, a multipart upload computes no SHA-1 and sends no ``Content-MD5``
(Box does not require it); an upload session still does, since Box requires its part and commit digests.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any

import httpx

from dropbox_box_provider.auth import services, transport
from dropbox_box_provider.auth.services import BOX
from dropbox_box_provider.errors import ChecksumMismatch, DropboxBoxError, ServiceError, SourceChanged

if TYPE_CHECKING:
    from dropbox_box_provider.hooks.box.hook import BoxHook

UPLOAD = BOX.content_base
# Box accepts chunked upload sessions only from 20 MB (file_size_too_small below); multipart up to there.
CHUNKED_THRESHOLD = 20_000_000
READ_SIZE = 1024 * 1024
# Upload commits may answer 202 + Retry-After while Box assembles the file.
MAX_NOT_READY_WAITS = 60
MAX_NOT_READY_WAIT = 10.0
# Right after the last part a commit may answer 400 ``parts_mismatch`` while Box still processes the parts:
# list them and commit again, a bounded number of times.
MAX_PARTS_MISMATCH_RETRIES = 5
PARTS_MISMATCH_WAIT = 0.5


def b64_sha1(digest: bytes) -> str:
    """A SHA-1 digest as the ``Digest: sha=`` header wants it."""
    return base64.b64encode(digest).decode("ascii")


def file_sha1(handle: IO[bytes], chunk: int = READ_SIZE) -> str:
    """Hex SHA-1 of a binary file object read from its start (Box's checksum of a file version)."""
    handle.seek(0)
    digest = hashlib.sha1(usedforsecurity=False)
    for block in iter(lambda: handle.read(chunk), b""):
        digest.update(block)
    handle.seek(0)
    return digest.hexdigest()


def size_of(handle: IO[bytes]) -> int:
    """Bytes in a seekable binary file object (left at its start)."""
    handle.seek(0, os.SEEK_END)
    size = handle.tell()
    handle.seek(0)
    return size


def conflict_of(response: httpx.Response) -> dict[str, Any] | None:
    """The existing item of a 409 ``item_name_in_use`` (``context_info.conflicts``: an object or a list)."""
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict) or body.get("code") != "item_name_in_use":
        return None
    conflicts = (body.get("context_info") or {}).get("conflicts")
    if isinstance(conflicts, list):
        conflicts = conflicts[0] if conflicts else None
    return conflicts if isinstance(conflicts, dict) and conflicts.get("id") else None


class FileRegion:
    """``length`` bytes at ``offset`` of a binary file as a re-iterable request body: streamed in blocks
    (never held whole, so a part's bytes cannot linger in httpx's request/response reference cycles) and
    re-readable when the request is resent."""

    def __init__(self, handle: IO[bytes], offset: int, length: int, name: str) -> None:
        self.handle = handle
        self.offset = offset
        self.length = length
        self.name = name

    def __iter__(self) -> Iterator[bytes]:
        self.handle.seek(self.offset)
        left = self.length
        while left:
            block = self.handle.read(min(READ_SIZE, left))
            if not block:
                raise SourceChanged(
                    f"the local file {self.name!r} shrank while it was being uploaded; upload it again"
                )
            left -= len(block)
            yield block

    def sha1(self, whole: Any) -> bytes:
        """SHA-1 of the region (the part's Digest), also fed into ``whole`` (the file's running SHA-1)."""
        digest = hashlib.sha1(usedforsecurity=False)
        for block in self:
            digest.update(block)
            whole.update(block)
        return digest.digest()


def send_content(  # noqa: PLR0917
    hook: BoxHook,
    handle: IO[bytes],
    size: int,
    folder_id: str,
    name: str,
    file_id: str | None,
    if_match: str | None = None,
) -> dict[str, Any]:
    """Upload as a new file (``file_id`` None) or a new version (only over the version whose etag is
    ``if_match``, when given: else 412 ``PreconditionFailed``); a name conflict comes back as
    ``{"conflict": item}``."""
    if size >= CHUNKED_THRESHOLD:
        return chunked_upload(hook, handle, size, folder_id, name, file_id, if_match)
    return multipart_upload(hook, handle, folder_id, name, file_id, if_match)


def _if_match(etag: str | None) -> dict[str, str]:
    return {"If-Match": etag} if etag is not None else {}


def multipart_upload(  # noqa: PLR0917
    hook: BoxHook,
    handle: IO[bytes],
    folder_id: str,
    name: str,
    file_id: str | None,
    if_match: str | None = None,
) -> dict[str, Any]:
    """One multipart request (attributes part first, as Box requires); the local SHA-1 is sent as
    ``Content-MD5`` (Box refuses a mismatch) and checked against Box's, unless the hook skips checksums."""
    sha1 = file_sha1(handle) if hook.verify_checksums else None
    attributes: dict[str, Any] = {"name": name}
    if file_id is None:
        attributes["parent"] = {"id": folder_id}
        url = f"{UPLOAD}/files/content"
    else:
        url = f"{UPLOAD}/files/{file_id}/content"
    # httpx sends ``data`` fields before ``files``: the attributes part precedes the file part, as Box
    # requires, and the file part is streamed from the handle (re-read from 0 if the request is resent).
    response = hook.request(
        "POST",
        url,
        data={"attributes": json.dumps(attributes)},
        files={"file": (name, handle, "application/octet-stream")},
        headers={**({"Content-MD5": sha1} if sha1 else {}), **_if_match(if_match)},
        expected=(201, 409),
    )
    if response.status_code == 409:
        return {"conflict": conflict_or_raise(hook, response)}
    return checked_entry(response, sha1, name)


def conflict_or_raise(hook: BoxHook, response: httpx.Response) -> dict[str, Any]:
    """The conflicting item of a 409, or the typed error of any other 409."""
    conflict = conflict_of(response)
    if conflict is None:
        raise services.error_from_response("box", response, hook.conn_id)
    return conflict


def _check_sha1(name: str, entry: dict[str, Any], sha1: str, status: int | None) -> None:
    if entry.get("sha1") != sha1:
        raise ChecksumMismatch(
            f"Box stored {name!r} with SHA-1 {entry.get('sha1')} but the local file's is {sha1}: the "
            "upload was corrupted on the way; upload it again",
            status,
        )


def checked_entry(response: httpx.Response, sha1: str | None, name: str) -> dict[str, Any]:
    """The file object of an upload answer, its SHA-1 checked against ``sha1`` (None: not checked)."""
    body = response.json()
    entries = body.get("entries") if isinstance(body, dict) else None
    if not entries or not isinstance(entries[0], dict):
        raise ServiceError(
            f"Box answered the upload of {name!r} without the file object; check the Host override",
            response.status_code,
            "malformed_response",
        )
    entry: dict[str, Any] = entries[0]
    if sha1 is not None:
        _check_sha1(name, entry, sha1, response.status_code)
    return entry


def chunked_upload(  # noqa: PLR0917
    hook: BoxHook,
    handle: IO[bytes],
    size: int,
    folder_id: str,
    name: str,
    file_id: str | None,
    if_match: str | None = None,
) -> dict[str, Any]:
    """Upload session: create, PUT parts aligned to ``part_size`` with per-part Digests, commit."""
    if file_id is None:
        response = hook.request(
            "POST",
            f"{UPLOAD}/files/upload_sessions",
            json={"folder_id": folder_id, "file_size": size, "file_name": name},
            expected=(201, 409),
        )
    else:
        response = hook.request(
            "POST",
            f"{UPLOAD}/files/{file_id}/upload_sessions",
            json={"file_size": size, "file_name": name},
            expected=(201,),
        )
    if response.status_code == 409:
        return {"conflict": conflict_or_raise(hook, response)}
    session = response.json()
    endpoints = session["session_endpoints"]
    part_size = int(session["part_size"])
    whole = hashlib.sha1(usedforsecurity=False)
    parts: list[dict[str, Any]] = []
    progress = hook.progress("upload", name, size)
    try:
        offset = 0
        while offset < size:
            part = FileRegion(handle, offset, min(part_size, size - offset), name)
            digest = part.sha1(whole)
            answer = hook.request(
                "PUT",
                hook.as_real_url(endpoints["upload_part"]),
                content=part,
                headers={
                    "Content-Type": "application/octet-stream",
                    "Content-Length": str(part.length),
                    "Content-Range": f"bytes {offset}-{offset + part.length - 1}/{size}",
                    "Digest": f"sha={b64_sha1(digest)}",
                },
            )
            parts.append(answer.json()["part"])
            offset += part.length
            progress.update(part.length)
        entry = commit(
            hook, endpoints["commit"], parts, whole.digest(), name, endpoints.get("list_parts"), if_match
        )
        if entry is None:  # resent after a lost answer: the first commit made the file
            entry = committed_file(hook, folder_id, name, file_id)
    except BaseException:
        abort_session(hook, endpoints.get("abort"))
        raise
    progress.finish()
    _check_sha1(name, entry, whole.hexdigest(), None)
    return entry


def commit(  # noqa: PLR0917
    hook: BoxHook,
    commit_url: str,
    parts: list[dict[str, Any]],
    digest: bytes,
    name: str,
    list_parts_url: str | None = None,
    if_match: str | None = None,
) -> dict[str, Any] | None:
    """Commit the session's parts, waiting out 202 + Retry-After while Box assembles the file, and
    retrying a transient 400 ``parts_mismatch`` after listing the parts Box holds (as rclone does).

    A whole-file Digest Box does not agree with is its ``digest_mismatch``: ``ChecksumMismatch``. None when a
    commit resent after a lost answer finds the session gone (404): the first attempt committed it.
    """
    mismatches = 0
    for _ in range(MAX_NOT_READY_WAITS):
        response = hook.request(
            "POST",
            hook.as_real_url(commit_url),
            json={"parts": parts, "attributes": {"name": name}},
            headers={"Digest": f"sha={b64_sha1(digest)}", **_if_match(if_match)},
            expected=(201, 202, 400, 404),
        )
        if response.status_code == 404:
            if transport.may_have_acted(response):
                return None
            raise services.error_from_response("box", response, hook.conn_id)
        if response.status_code == 400:
            code = services.box_error_details(response).code
            if code == "digest_mismatch":
                raise ChecksumMismatch(
                    f"Box computed a different SHA-1 for the assembled {name!r} than the local file's: the "
                    "upload was corrupted on the way; upload it again",
                    400,
                    "digest_mismatch",
                )
            if code != "parts_mismatch" or mismatches >= MAX_PARTS_MISMATCH_RETRIES:
                raise services.error_from_response("box", response, hook.conn_id)
            mismatches += 1
            if list_parts_url:
                listed_parts(hook, list_parts_url)
            time.sleep(PARTS_MISMATCH_WAIT * mismatches)
            continue
        if response.status_code == 201:
            entries = response.json().get("entries") or []
            if not entries:
                raise ServiceError(
                    f"Box committed {name!r} without returning the file object", 201, "malformed_response"
                )
            entry: dict[str, Any] = entries[0]
            return entry
        time.sleep(min(services.retry_after_seconds(response) or 1.0, MAX_NOT_READY_WAIT))
    raise ServiceError(
        f"Box kept answering 202 (still processing) to the commit of {name!r}; run the task again later",
        202,
        "commit_not_ready",
    )


def committed_file(hook: BoxHook, folder_id: str, name: str, file_id: str | None) -> dict[str, Any]:
    """The file a commit whose answer was lost made: the new version of ``file_id``, or ``name`` in the
    folder (its SHA-1 is checked by the caller)."""
    if file_id is None:
        found = next(
            (e for e in hook.list(f"id:{folder_id}") if e.is_file and e.name.lower() == name.lower()), None
        )
        if found is None:
            raise ServiceError(
                f"Box lost the answer to the commit of {name!r} and the file is not there; upload it again",
                404,
                "commit_lost",
            )
        file_id = found.id
    return hook._object(f"id:{file_id}", "file")


def listed_parts(hook: BoxHook, list_parts_url: str) -> list[dict[str, Any]]:
    """The parts Box holds for a session (``GET …/parts``, every page)."""
    found: list[dict[str, Any]] = []
    offset = 0
    while True:
        page = hook.request(
            "GET", hook.as_real_url(list_parts_url), params={"offset": offset, "limit": 1000}
        ).json()
        entries = page.get("entries") or []
        found.extend(entries)
        offset += len(entries)
        if not entries or offset >= int(page.get("total_count") or 0):
            return found


def abort_session(hook: BoxHook, abort_url: str | None) -> None:
    """Best effort: drop an unfinished session's parts at Box."""
    if not abort_url:
        return
    try:
        hook.request("DELETE", hook.as_real_url(abort_url), expected=(204, 404))
    except DropboxBoxError as exc:
        hook.log.warning("Could not abort the Box upload session: %s", exc)
