"""Dropbox downloads: streamed into a temporary file beside the target, size and content_hash checked (the
hash unless the hook's ``verify_checksums`` is off), renamed."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import httpx

from dropbox_box_provider.auth.services import DROPBOX
from dropbox_box_provider.content_hash import DropboxContentHasher, dropbox_content_hash
from dropbox_box_provider.errors import ChecksumMismatch, TransportError
from dropbox_box_provider.hooks.dropbox.paths import dropbox_api_arg
from dropbox_box_provider.hooks.hashing import OverlappedHash
from dropbox_box_provider.hooks.progress import DEFAULT_INTERVAL, TransferProgress

if TYPE_CHECKING:
    from dropbox_box_provider.hooks.dropbox.hook import DropboxHook


def read_small(hook: DropboxHook, path: str) -> bytes:
    """A small file's content in memory, content_hash checked (when the hook verifies checksums)."""
    with hook.stream(
        "POST",
        f"{DROPBOX.content_base}/files/download",
        headers={"Dropbox-API-Arg": dropbox_api_arg({"path": path})},
    ) as response:
        try:
            data = response.read()
        except httpx.HTTPError as exc:
            raise hook.read_error(exc, f"download of {path}", 0) from exc
        metadata = json.loads(response.headers.get("Dropbox-API-Result", "{}"))
    size = metadata.get("size")
    if isinstance(size, int) and len(data) != size:
        raise TransportError(
            f"download of {path!r} ended after {len(data)} of {size} bytes; nothing was kept. Run again",
            code="interrupted",
        )
    expected = metadata.get("content_hash")
    if expected and hook.verify_checksums and dropbox_content_hash(data) != expected:
        raise ChecksumMismatch(f"download of {path!r}: content_hash differs; nothing was kept. Run again")
    return data


def download_to(
    hook: DropboxHook, path: str, destination: Path, *, progress_interval: float = DEFAULT_INTERVAL
) -> dict[str, Any]:
    """Download to ``destination`` through a temporary file beside it, check its size and (when the hook
    verifies checksums) its content_hash, then rename atomically; on any failure the temporary file is removed
    and ``destination`` is untouched. Returns the file's metadata."""
    handle, temp_name = tempfile.mkstemp(
        dir=destination.parent, prefix=f".{destination.name}.", suffix=".part"
    )
    try:
        with (
            os.fdopen(handle, "wb") as target,
            hook.stream(
                "POST",
                f"{DROPBOX.content_base}/files/download",
                headers={"Dropbox-API-Arg": dropbox_api_arg({"path": path})},
            ) as response,
        ):
            metadata: dict[str, Any] = json.loads(response.headers.get("Dropbox-API-Result", "{}"))
            size = metadata.get("size")
            total = size if isinstance(size, int) else None
            label = f"download {path} -> {destination}"
            progress = TransferProgress(label, total, interval=progress_interval)
            digest = _stream_into(hook, response, target, progress, path)
        if total is not None and progress.done != total:
            raise TransportError(
                f"download of {path!r} ended after {progress.done} of {total} bytes; nothing was kept. "
                "Run the task again",
                code="interrupted",
            )
        expected = metadata.get("content_hash")
        if expected and digest is not None and digest != expected:
            raise ChecksumMismatch(
                f"download of {path!r} does not match Dropbox's content_hash (corrupted in transit); nothing "
                "was kept. Run the task again"
            )
        os.replace(temp_name, destination)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise
    progress.finish()
    return metadata


def _stream_into(
    hook: DropboxHook,
    response: httpx.Response,
    target: IO[bytes],
    progress: TransferProgress,
    path: str,
) -> str | None:
    """Write the response body to ``target``; its content_hash when the hook verifies checksums, else None."""
    hasher = DropboxContentHasher() if hook.verify_checksums else None
    with OverlappedHash(hasher, progress.total) as digest:
        try:
            # The transport's own chunks (1 MiB): a chunk size here would re-chunk in Python.
            for chunk in response.iter_bytes():
                target.write(chunk)
                digest.update(chunk)
                progress.update(len(chunk))
        except httpx.HTTPError as exc:
            raise hook.read_error(exc, f"download of {path!r}", progress.done) from exc
        return digest.hexdigest()


def read_range(hook: DropboxHook, path: str, start: int, end: int) -> bytes:
    """Bytes ``start`` to ``end`` (exclusive) of a file: one ranged ``files/download`` (fsspec reads)."""
    if end <= start:
        return b""
    headers = {"Dropbox-API-Arg": dropbox_api_arg({"path": path}), "Range": f"bytes={start}-{end - 1}"}
    url = f"{DROPBOX.content_base}/files/download"
    with hook.stream("POST", url, headers=headers, expected=(200, 206)) as response:
        try:
            data = b"".join(response.iter_bytes())  # not kept on the response
        except httpx.HTTPError as exc:
            raise hook.read_error(exc, f"ranged download of {path}", 0) from exc
        whole = response.status_code == 200
    return data[start:end] if whole else data
