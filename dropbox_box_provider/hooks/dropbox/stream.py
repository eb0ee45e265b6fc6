"""Dropbox uploads fed block by block (fsspec writes): an upload session whose pieces are multiples of 4 MiB,
so a file of any size is written holding one piece in memory; content_hash computed while sending and checked
(unless the hook's ``verify_checksums`` is off).

A piece whose answer was lost is not resent when Dropbox's ``correct_offset`` shows it arrived; any other
offset cannot be recovered (earlier pieces are gone from memory) and fails with a clear error.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from dropbox_box_provider.auth.services import DROPBOX
from dropbox_box_provider.content_hash import DROPBOX_BLOCK_SIZE, DropboxContentHasher
from dropbox_box_provider.errors import InvalidArgument, ServiceError
from dropbox_box_provider.hooks.dropbox.limits import SINGLE_UPLOAD_LIMIT
from dropbox_box_provider.hooks.dropbox.upload import (
    READ_SIZE,
    commit_arg,
    content_headers,
    verify,
    write_small,
)

if TYPE_CHECKING:
    import httpx

    from dropbox_box_provider.hooks.dropbox.hook import DropboxHook


class _Piece:
    """A request body over bytes that lets go of them once the request is done: httpx keeps the request
    in a reference cycle (response <-> stream) until the garbage collector runs, which would otherwise
    keep every piece sent in memory until then. Re-iterable, for retries."""

    def __init__(self, data: bytes) -> None:
        self.data: bytes | None = data

    def __iter__(self) -> Iterator[bytes]:
        data = self.data or b""
        for start in range(0, len(data), READ_SIZE):
            yield data[start : start + READ_SIZE]

    def release(self) -> None:
        self.data = None


class StreamingUpload:
    """``append(piece)`` pieces (each a multiple of 4 MiB but the last), then ``finish()`` -> metadata.

    Nothing is sent before the first full piece; a file that ends before then goes in one request.
    """

    def __init__(self, hook: DropboxHook, path: str, overwrite: bool) -> None:
        self.hook, self.path, self.commit = hook, path, commit_arg(path, overwrite)
        self.hasher = DropboxContentHasher() if hook.verify_checksums else None
        self.session_id: str | None = None
        self.offset = 0

    def _send(
        self, route: str, arg: Any, piece: bytes, expected: tuple[int, ...] = (200, 409)
    ) -> httpx.Response:
        body = _Piece(piece)
        try:
            return self.hook.request(
                "POST",
                f"{DROPBOX.content_base}/files/upload_session/{route}",
                content=body,
                headers={**content_headers(arg), "Content-Length": str(len(piece))},
                expected=expected,
            )
        finally:
            body.release()

    def append(self, piece: bytes) -> None:
        """Send one piece (a multiple of 4 MiB) of the file."""
        if not piece:
            return
        if len(piece) % DROPBOX_BLOCK_SIZE:
            raise InvalidArgument("a streamed Dropbox upload piece must be a multiple of 4 MiB")
        if self.hasher is not None:
            self.hasher.update(piece)
        if self.session_id is None:
            started = self._send("start", {"close": False}, piece, expected=(200,))
            self.session_id = str(started.json()["session_id"])
        else:
            cursor = {"session_id": self.session_id, "offset": self.offset}
            response = self._send("append_v2", {"cursor": cursor, "close": False}, piece)
            if response.status_code != 200:
                self._arrived(response, self.offset + len(piece))
        self.offset += len(piece)

    def _arrived(self, response: httpx.Response, expected: int) -> None:
        """Accept an ``incorrect_offset`` that shows the piece arrived; anything else is an error."""
        try:
            error = response.json().get("error", {})
        except ValueError:
            error = {}
        if isinstance(error, dict) and error.get(".tag") == "lookup_failed":
            error = error.get("lookup_failed", {})
        if isinstance(error, dict) and error.get(".tag") == "incorrect_offset":
            if error.get("correct_offset") == expected:
                return
            raise ServiceError(
                f"Dropbox's upload session for {self.path!r} is at offset {error.get('correct_offset')}, "
                f"not {expected}; write the file again",
                409,
                "incorrect_offset",
            )
        raise self.hook.error_for(response)

    def finish(self, last: bytes = b"") -> dict[str, Any]:
        """Send the rest (any length) and commit; the content_hash Dropbox reports is verified (when the hook
        verifies checksums)."""
        if self.session_id is None and len(last) <= SINGLE_UPLOAD_LIMIT:
            return write_small(self.hook, self.path, last, self.commit["mode"] == "overwrite")
        if self.session_id is None:
            whole = len(last) - len(last) % DROPBOX_BLOCK_SIZE
            self.append(last[:whole])
            last = last[whole:]
        if self.hasher is not None:
            self.hasher.update(last)
        arg = {"cursor": {"session_id": self.session_id, "offset": self.offset}, "commit": self.commit}
        response = self._send("finish", arg, last)
        if response.status_code != 200:
            raise self.hook.error_for(response)
        metadata: dict[str, Any] = response.json()
        if self.hasher is not None:
            verify(self.path, self.hasher.hexdigest(), metadata)
        return metadata
