"""Many small files into Dropbox at once: each file's bytes in one closed ``upload_session/start`` (several
at a time), then one ``upload_session/finish_batch_v2`` commits up to 1,000 of them.

Committing one file at a time from several workers is what earns Dropbox's ``too_many_write_operations``;
a batch is one write for the whole namespace. A resent batch whose first answer was lost finds its sessions
gone (``lookup_failed/not_found``): a file already at its path with the local content_hash counts as done.
With the hook's ``verify_checksums`` off, no content_hash is computed unless that rare case needs it.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dropbox_box_provider.auth.backoff import current_gate
from dropbox_box_provider.auth.services import DROPBOX
from dropbox_box_provider.errors import (
    AlreadyExists,
    ChecksumMismatch,
    DropboxBoxError,
    NotFound,
    ServiceError,
)
from dropbox_box_provider.hooks.dropbox.upload import FileSlice, commit_arg, content_headers, local_hash
from dropbox_box_provider.hooks.parallel import map_bounded

if TYPE_CHECKING:
    from dropbox_box_provider.hooks.dropbox.hook import DropboxHook

MiB = 1024 * 1024
#: Entries Dropbox takes in one finish_batch_v2.
MAX_BATCH_ENTRIES = 1000
#: Files up to this size are batched (their bytes go in one start request); larger ones upload alone.
BATCH_FILE_LIMIT = 32 * MiB
#: Rounds of re-committing entries refused with ``too_many_write_operations``.
MAX_CONTENTION_ROUNDS = 5
CONTENTION_BASE_DELAY = 0.5


@dataclass
class _Staged:
    """One file whose bytes Dropbox holds in a closed session, waiting for its commit."""

    index: int
    source: str
    path: str
    size: int
    session_id: str
    content_hash: str | None  # None: the hook does not verify checksums

    def local_content_hash(self) -> str:
        """The local file's content_hash: the one computed while sending, else read from disk now."""
        if self.content_hash is None:
            self.content_hash = local_hash(self.source, self.size, {})
        return self.content_hash


def stage(hook: DropboxHook, index: int, source: str, path: str) -> _Staged:
    """Send a file's bytes in one closed session (content_hash computed while sending, when verifying)."""
    size = os.path.getsize(source)
    verifying = hook.verify_checksums
    body = FileSlice(source, 0, size, size, hash_blocks=verifying)
    response = hook.request(
        "POST",
        f"{DROPBOX.content_base}/files/upload_session/start",
        content=body,
        headers={**content_headers({"close": True}), "Content-Length": str(size)},
    )
    session_id = str(response.json()["session_id"])
    content_hash = local_hash(source, size, dict(body.block_digests)) if verifying else None
    return _Staged(index, source, path, size, session_id, content_hash)


def _failure_tags(failure: Any) -> list[str]:
    """The ``.tag`` chain of a nested UploadSessionFinishError, e.g. ``lookup_failed``, ``not_found``."""
    tags: list[str] = []
    while isinstance(failure, dict) and isinstance(failure.get(".tag"), str):
        tag = failure[".tag"]
        tags.append(tag)
        inner = failure.get(tag)
        failure = inner if isinstance(inner, dict) else failure.get("reason")
    return tags


class BatchCommit:
    """Commit staged files with finish_batch_v2 (at most ``batch_size`` per call); results by index."""

    def __init__(self, hook: DropboxHook, overwrite: bool, batch_size: int) -> None:
        self.hook, self.overwrite, self.batch_size = hook, overwrite, batch_size
        self.results: dict[int, dict[str, Any]] = {}
        self.errors: dict[int, DropboxBoxError] = {}

    def run(self, staged: Sequence[_Staged]) -> None:
        """Commit every staged file; refusals for write contention are committed again a few times."""
        pending = list(staged)
        for round_ in range(MAX_CONTENTION_ROUNDS + 1):
            contended: list[_Staged] = []
            for start in range(0, len(pending), self.batch_size):
                contended += self._commit(pending[start : start + self.batch_size])
            if not contended:
                return
            pending = contended
            if round_ < MAX_CONTENTION_ROUNDS:
                self._pause(CONTENTION_BASE_DELAY * 2**round_)
        for item in pending:
            self.errors[item.index] = ServiceError(
                f"Dropbox kept refusing to commit {item.path!r} (too_many_write_operations: other writes "
                "are busy in this Dropbox); run the task again",
                409,
                "too_many_write_operations",
            )

    def _pause(self, seconds: float) -> None:
        gate = current_gate()
        if gate is not None:
            gate.hold(seconds)
            gate.wait()
        else:
            time.sleep(seconds)

    def _commit(self, chunk: Sequence[_Staged]) -> list[_Staged]:
        """One finish_batch_v2 call; returns the entries to commit again (write contention)."""
        arg = {
            "entries": [
                {
                    "cursor": {"session_id": item.session_id, "offset": item.size},
                    "commit": commit_arg(item.path, self.overwrite),
                }
                for item in chunk
            ]
        }
        answer = self.hook.request(
            "POST",
            f"{DROPBOX.api_base}/files/upload_session/finish_batch_v2",
            content=json.dumps(arg).encode(),
            headers={"Content-Type": "application/json"},
        ).json()
        entries = answer.get("entries") if isinstance(answer, dict) else None
        if not isinstance(entries, list) or len(entries) != len(chunk):
            raise ServiceError(
                f"Dropbox answered finish_batch_v2 for {len(chunk)} files with "
                f"{len(entries) if isinstance(entries, list) else 'no'} entries; run the task again",
                200,
                "unexpected_answer",
            )
        again: list[_Staged] = []
        for item, entry in zip(chunk, entries, strict=True):
            if entry.get(".tag") == "success":
                self._landed(item, {k: v for k, v in entry.items() if k != ".tag"})
                continue
            tags = _failure_tags(entry.get("failure"))
            if "too_many_write_operations" in tags:
                again.append(item)
            elif tags[:2] == ["lookup_failed", "not_found"]:
                self._maybe_landed(item)  # a resent batch: the lost first answer may have committed it
            elif "conflict" in tags:
                kind = "folder" if "folder" in tags else "file with different content"
                advice = "choose another path" if kind == "folder" else "pass overwrite=True to replace it"
                self.errors[item.index] = AlreadyExists(
                    f"Dropbox already has a {kind} at {item.path!r}; {advice}", 409, "/".join(tags)
                )
            elif "content_hash_mismatch" in tags:
                self.errors[item.index] = ChecksumMismatch(
                    f"Dropbox rejected {item.path!r}: the uploaded data does not match its content_hash; "
                    "upload it again",
                    status=409,
                )
            else:
                self.errors[item.index] = ServiceError(
                    f"Dropbox could not commit {item.path!r} ({'/'.join(tags) or 'unknown failure'}); "
                    "check the path, then run the task again",
                    409,
                    "/".join(tags) or None,
                )
        return again

    def _landed(self, item: _Staged, metadata: dict[str, Any]) -> None:
        if item.content_hash is not None and metadata.get("content_hash") != item.content_hash:
            self.errors[item.index] = ChecksumMismatch(
                f"Dropbox stored {item.path!r} with content_hash {metadata.get('content_hash')!r} but the "
                f"local data hashes to {item.content_hash!r}: upload it again"
            )
            return
        self.results[item.index] = metadata

    def _maybe_landed(self, item: _Staged) -> None:
        """The session is gone: done when the file at the path has our bytes, else it is sent alone."""
        try:
            metadata = self.hook.rpc("files/get_metadata", {"path": item.path})
        except NotFound:
            metadata = None
        if isinstance(metadata, dict) and metadata.get("content_hash") == item.local_content_hash():
            self.results[item.index] = metadata
            return
        try:
            self.results[item.index] = dict(self.hook.upload_file(item.source, item.path, self.overwrite).raw)
        except DropboxBoxError as exc:
            self.errors[item.index] = exc


def upload_batch(
    hook: DropboxHook,
    pairs: Sequence[tuple[str, str]],
    overwrite: bool,
    *,
    max_active: int,
    batch_size: int = MAX_BATCH_ENTRIES,
) -> tuple[dict[int, dict[str, Any]], dict[int, DropboxBoxError]]:
    """Upload ``(local file, Dropbox path)`` pairs through sessions and batch commits.

    Returns (metadata by index, error by index); every file is attempted, whatever another's fate.
    """
    commit = BatchCommit(hook, overwrite, max(1, min(batch_size, MAX_BATCH_ENTRIES)))

    def staged_or_error(index: int) -> _Staged | None:
        source, path = pairs[index]
        try:
            return stage(hook, index, source, path)
        except DropboxBoxError as exc:
            commit.errors[index] = exc
            return None

    staged = map_bounded(staged_or_error, range(len(pairs)), max_active)
    commit.run([item for item in staged if item is not None])
    return commit.results, commit.errors
