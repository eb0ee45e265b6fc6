"""Dropbox content_hash: SHA-256 over the concatenated SHA-256 digests of each 4 MiB block."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

DROPBOX_BLOCK_SIZE = 4 * 1024 * 1024


def dropbox_content_hash(data: bytes | memoryview) -> str:
    """The hex ``content_hash`` Dropbox reports for ``data``."""
    view = memoryview(data)
    overall = hashlib.sha256()
    for start in range(0, len(view), DROPBOX_BLOCK_SIZE):
        overall.update(hashlib.sha256(view[start : start + DROPBOX_BLOCK_SIZE]).digest())
    return overall.hexdigest()


def dropbox_content_hash_of_chunks(chunks: Iterable[bytes]) -> str:
    """Same as :func:`dropbox_content_hash` for data given as consecutive chunks."""
    overall = hashlib.sha256()
    block = hashlib.sha256()
    filled = 0
    for chunk in chunks:
        view = memoryview(chunk)
        while view:
            take = min(DROPBOX_BLOCK_SIZE - filled, len(view))
            block.update(view[:take])
            filled += take
            view = view[take:]
            if filled == DROPBOX_BLOCK_SIZE:
                overall.update(block.digest())
                block, filled = hashlib.sha256(), 0
    if filled:
        overall.update(block.digest())
    return overall.hexdigest()
