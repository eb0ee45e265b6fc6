"""Dropbox uploads: one request up to 150 MiB, else an upload session; content_hash computed while sending and
checked against Dropbox's (skipped when the hook's ``verify_checksums`` is off: Dropbox does not require it).

Functions take the hook for its HTTP plumbing (``request``, ``error_for``); they hold no state of their own.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import httpx

from dropbox_box_provider.auth.services import DROPBOX
from dropbox_box_provider.content_hash import DROPBOX_BLOCK_SIZE, combine_block_digests, dropbox_content_hash
from dropbox_box_provider.errors import ChecksumMismatch, InvalidArgument, ServiceError, SourceChanged
from dropbox_box_provider.hooks.dropbox.limits import DEFAULT_CHUNK_SIZE, SINGLE_UPLOAD_LIMIT, MiB
from dropbox_box_provider.hooks.dropbox.paths import dropbox_api_arg
from dropbox_box_provider.hooks.hashing import OVERLAP_THRESHOLD, SerialWorker
from dropbox_box_provider.hooks.progress import DEFAULT_INTERVAL, TransferProgress

if TYPE_CHECKING:
    from dropbox_box_provider.hooks.dropbox.hook import DropboxHook

READ_SIZE = 1 * MiB
MAX_OFFSET_RECOVERIES = 5


def content_headers(arg: Any) -> dict[str, str]:
    """Headers of a content route: the JSON argument and an octet-stream body."""
    return {"Dropbox-API-Arg": dropbox_api_arg(arg), "Content-Type": "application/octet-stream"}


def commit_arg(path: str, overwrite: bool, autorename: bool = False) -> dict[str, Any]:
    """The ``CommitInfo`` of an upload: ``add`` (same content is not a conflict) or ``overwrite``."""
    return {
        "path": path,
        "mode": "overwrite" if overwrite else "add",
        "autorename": autorename,
        "mute": False,
    }


def verify(path: str, local_hash: str, metadata: dict[str, Any]) -> None:
    """Raise ChecksumMismatch when Dropbox's content_hash of the stored file differs from the local one."""
    remote = metadata.get("content_hash")
    if remote != local_hash:
        raise ChecksumMismatch(
            f"Dropbox stored {path!r} with content_hash {remote!r} but the local data hashes to "
            f"{local_hash!r}: the transfer was corrupted or the file changed meanwhile; upload it again"
        )


class FileSlice:
    """Re-iterable body of ``length`` bytes of a file from ``start``: read 1 MiB at a time, never whole.

    Each iteration (a retry resends it) records the SHA-256 of every 4 MiB content-hash block that lies
    wholly inside the slice (or ends the file), so the upload's content_hash costs no second read; with
    ``hash_blocks`` false nothing is hashed.
    """

    def __init__(  # noqa: PLR0917
        self,
        path: str,
        start: int,
        length: int,
        file_size: int,
        progress: TransferProgress | None = None,
        hash_blocks: bool = True,
    ) -> None:
        self.path = path
        self.start = start
        self.end = start + length
        self.file_size = file_size
        self.progress = progress
        self.hash_blocks = hash_blocks
        self.block_digests: dict[int, bytes] = {}

    def __len__(self) -> int:
        return self.end - self.start

    def __iter__(self) -> Iterator[bytes]:
        self.block_digests = {}
        if self.progress is not None:
            self.progress.reset_to(self.start)
        position = self.start
        block: Any = None
        # Hashing runs beside the sending (a worker thread) for large slices; digests are ready at the end.
        with open(self.path, "rb") as source, SerialWorker(len(self) >= OVERLAP_THRESHOLD) as hashing:
            source.seek(position)
            while position < self.end:
                if self.hash_blocks and position % DROPBOX_BLOCK_SIZE == 0:
                    block = hashlib.sha256()
                size = min(READ_SIZE, self.end - position, DROPBOX_BLOCK_SIZE - position % DROPBOX_BLOCK_SIZE)
                data = source.read(size)
                if len(data) != size:
                    raise SourceChanged(
                        f"{self.path} shrank while it was being uploaded; upload it again once it is whole"
                    )
                if block is not None:
                    hashing.submit(block.update, data)
                position += size
                if block is not None and (position % DROPBOX_BLOCK_SIZE == 0 or position == self.file_size):
                    hashing.submit(self._record, (position - 1) // DROPBOX_BLOCK_SIZE, block)
                    block = None
                if self.progress is not None:
                    self.progress.update(size)
                yield data
            hashing.wait()

    def _record(self, index: int, block: Any) -> None:
        self.block_digests[index] = block.digest()


def write_small(hook: DropboxHook, path: str, data: bytes, overwrite: bool) -> dict[str, Any]:
    """Upload ``data`` (at most 150 MiB) in one request; returns the metadata (content_hash checked when the
    hook verifies checksums)."""
    if len(data) > SINGLE_UPLOAD_LIMIT:
        raise InvalidArgument("write_bytes takes at most 150 MiB; use upload_file for larger data")
    response = hook.request(
        "POST",
        f"{DROPBOX.content_base}/files/upload",
        content=data,
        headers=content_headers(commit_arg(path, overwrite)),
    )
    metadata: dict[str, Any] = response.json()
    if hook.verify_checksums:
        verify(path, dropbox_content_hash(data), metadata)
    return metadata


def upload_local(
    hook: DropboxHook,
    source: str,
    path: str,
    overwrite: bool,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    autorename: bool = False,
    single_request_limit: int = SINGLE_UPLOAD_LIMIT,
    progress_interval: float = DEFAULT_INTERVAL,
) -> dict[str, Any]:
    """Upload a local file streamed from disk; returns its metadata, whose content_hash is checked against
    the one computed while sending when the hook verifies checksums."""
    if chunk_size <= 0 or chunk_size % DROPBOX_BLOCK_SIZE:
        raise InvalidArgument(f"chunk_size {chunk_size} must be a positive multiple of 4 MiB (4194304)")
    if single_request_limit > SINGLE_UPLOAD_LIMIT:
        raise InvalidArgument("single_request_limit cannot exceed Dropbox's 150 MiB for files/upload")
    size = os.path.getsize(source)
    commit = commit_arg(path, overwrite, autorename)
    progress = TransferProgress(f"upload {source} -> {path}", size, interval=progress_interval)
    verifying = hook.verify_checksums
    if size <= single_request_limit:
        body = FileSlice(source, 0, size, size, progress, hash_blocks=verifying)
        response = hook.request(
            "POST",
            f"{DROPBOX.content_base}/files/upload",
            content=body,
            headers={**content_headers(commit), "Content-Length": str(size)},
        )
        digests = dict(body.block_digests)
        metadata: dict[str, Any] = response.json()
    else:
        digests = {}
        metadata = _Session(hook, source, size, commit, chunk_size, digests, progress).run()
    if verifying:
        verify(path, local_hash(source, size, digests), metadata)
    progress.finish()
    return metadata


class _Session:
    """One upload session: start, append pieces, finish; resumes at Dropbox's offset after a lost answer."""

    def __init__(  # noqa: PLR0917
        self,
        hook: DropboxHook,
        source: str,
        size: int,
        commit: dict[str, Any],
        chunk_size: int,
        digests: dict[int, bytes],
        progress: TransferProgress,
    ) -> None:
        self.hook, self.source, self.size, self.commit = hook, source, size, commit
        self.chunk_size, self.digests, self.progress = chunk_size, digests, progress
        self.recoveries = 0
        self.hashing = hook.verify_checksums

    def piece(self, offset: int, length: int, progress: TransferProgress | None) -> FileSlice:
        """The body of ``length`` bytes from ``offset``, hashed while sent when the hook verifies."""
        return FileSlice(self.source, offset, length, self.size, progress, hash_blocks=self.hashing)

    def accept(self, piece: FileSlice, upto: int) -> None:
        """Keep the block digests of ``piece`` that Dropbox has received (up to byte ``upto``)."""
        for index, digest in piece.block_digests.items():
            if min((index + 1) * DROPBOX_BLOCK_SIZE, self.size) <= upto:
                self.digests[index] = digest

    def send(self, route: str, arg: Any, piece: FileSlice) -> httpx.Response:
        return self.hook.request(
            "POST",
            f"{DROPBOX.content_base}/files/upload_session/{route}",
            content=piece,
            headers={**content_headers(arg), "Content-Length": str(len(piece))},
            expected=(200, 409),
        )

    def run(self) -> dict[str, Any]:
        size = self.size
        first = self.piece(0, min(self.chunk_size, size), self.progress)
        started = self.hook.request(
            "POST",
            f"{DROPBOX.content_base}/files/upload_session/start",
            content=first,
            headers={**content_headers({"close": False}), "Content-Length": str(len(first))},
        )
        session_id = started.json()["session_id"]
        self.accept(first, first.end)
        offset = first.end
        while True:
            while offset < size:
                piece = self.piece(offset, min(self.chunk_size, size - offset), self.progress)
                cursor = {"session_id": session_id, "offset": offset}
                response = self.send("append_v2", {"cursor": cursor, "close": False}, piece)
                if response.status_code == 200:
                    self.accept(piece, piece.end)
                    offset = piece.end
                    continue
                offset = self.recover(response, piece)
            # No content_hash here: Dropbox reads it as the hash of this call's (empty) body only.
            arg = {"cursor": {"session_id": session_id, "offset": size}, "commit": self.commit}
            finish = self.piece(size, 0, None)
            response = self.send("finish", arg, finish)
            if response.status_code == 200:
                metadata: dict[str, Any] = response.json()
                return metadata
            if "content_hash_mismatch" in response.text:
                raise ChecksumMismatch(
                    f"Dropbox rejected {self.commit['path']!r}: the uploaded data does not match its "
                    "content_hash (corrupted in transit or the file changed meanwhile); upload it again",
                    status=409,
                )
            offset = self.recover(response, finish)

    def recover(self, response: httpx.Response, piece: FileSlice) -> int:
        """After ``incorrect_offset``: where to continue (the lost answer may have been a success)."""
        correct = self.correct_offset(response)
        if self.recoveries >= MAX_OFFSET_RECOVERIES or not 0 <= correct <= self.size:
            raise ServiceError(
                f"Dropbox's upload session for {piece.path} keeps reporting offset {correct} "
                f"(file size {self.size}); upload the file again",
                409,
                "incorrect_offset",
            )
        self.recoveries += 1
        self.accept(piece, correct)
        return correct

    def correct_offset(self, response: httpx.Response) -> int:
        """Dropbox's ``correct_offset`` from an ``incorrect_offset`` 409, else the typed error is raised."""
        try:
            error = response.json().get("error", {})
        except ValueError:
            error = {}
        if isinstance(error, dict) and error.get(".tag") == "lookup_failed":
            error = error.get("lookup_failed", {})
        if isinstance(error, dict) and error.get(".tag") == "incorrect_offset":
            offset = error.get("correct_offset")
            if isinstance(offset, int) and not isinstance(offset, bool):
                return offset
        raise self.hook.error_for(response)


def local_hash(source: str, size: int, digests: dict[int, bytes]) -> str:
    """The content_hash from the blocks hashed while sending; a block never seen whole is read again."""
    blocks = (size + DROPBOX_BLOCK_SIZE - 1) // DROPBOX_BLOCK_SIZE
    missing = [i for i in range(blocks) if i not in digests]
    if missing:
        with open(source, "rb") as handle:
            for index in missing:
                handle.seek(index * DROPBOX_BLOCK_SIZE)
                block = hashlib.sha256()
                left = min(DROPBOX_BLOCK_SIZE, size - index * DROPBOX_BLOCK_SIZE)
                while left:
                    data = handle.read(min(READ_SIZE, left))
                    if not data:
                        break
                    block.update(data)
                    left -= len(data)
                digests[index] = block.digest()
    return combine_block_digests(digests[i] for i in range(blocks))
