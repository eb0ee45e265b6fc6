"""Dropbox ``content_hash``: SHA-256 over the SHA-256 digests of each 4 MiB block, computed incrementally.

Shared by the hook (and usable by the emulator); it imports nothing of the provider.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

DROPBOX_BLOCK_SIZE = 4 * 1024 * 1024


class DropboxContentHasher:
    """Feed bytes in any chunking with ``update``; ``hexdigest`` gives Dropbox's content_hash."""

    def __init__(self) -> None:
        self._overall = hashlib.sha256()
        self._block = hashlib.sha256()
        self._filled = 0

    def update(self, data: bytes | bytearray | memoryview) -> None:
        """Add the next bytes."""
        view = memoryview(data)
        while view:
            take = min(DROPBOX_BLOCK_SIZE - self._filled, len(view))
            self._block.update(view[:take])
            self._filled += take
            view = view[take:]
            if self._filled == DROPBOX_BLOCK_SIZE:
                self._overall.update(self._block.digest())
                self._block, self._filled = hashlib.sha256(), 0

    def hexdigest(self) -> str:
        """The content_hash of everything fed so far (the hasher stays usable)."""
        overall = self._overall.copy()
        if self._filled:
            overall.update(self._block.digest())
        return overall.hexdigest()


def combine_block_digests(digests: Iterable[bytes]) -> str:
    """The content_hash from the per-block SHA-256 digests in order."""
    overall = hashlib.sha256()
    for digest in digests:
        overall.update(digest)
    return overall.hexdigest()


def dropbox_content_hash(data: bytes | bytearray | memoryview) -> str:
    """The content_hash of ``data`` held in memory."""
    hasher = DropboxContentHasher()
    hasher.update(data)
    return hasher.hexdigest()
