"""OverlappedHash: the digest of a download's bytes, fed from the read loop and computed in a worker thread
(or inline for small files), equals hashlib's over the same bytes."""

from __future__ import annotations

import hashlib
import os
import threading

import pytest

from dropbox_box_provider.content_hash import DropboxContentHasher, dropbox_content_hash
from dropbox_box_provider.hooks.hashing import OVERLAP_THRESHOLD, OverlappedHash

MiB = 1024 * 1024


def pieces(data: bytes) -> list[bytes]:
    """Uneven chunks, as a socket hands them over."""
    out, start, step = [], 0, 1
    while start < len(data):
        out.append(data[start : start + step])
        start += step
        step = step * 7 % (3 * MiB) + 1
    return out


def hash_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "transfer-hash"]


@pytest.mark.parametrize("expected_size", [None, OVERLAP_THRESHOLD, 1])
def test_digests_match_hashlib_threaded_or_inline(expected_size: int | None) -> None:
    data = os.urandom(9 * MiB + 17)
    with OverlappedHash(hashlib.sha1(usedforsecurity=False), expected_size) as sha1:
        with OverlappedHash(DropboxContentHasher(), expected_size) as content:
            for piece in pieces(data):
                sha1.update(piece)
                content.update(piece)
                if expected_size == 1:
                    assert hash_threads() == []  # small files are hashed inline
            assert content.hexdigest() == dropbox_content_hash(data)
        assert sha1.hexdigest() == hashlib.sha1(data, usedforsecurity=False).hexdigest()
    assert hash_threads() == []


def test_restart_forgets_what_was_fed() -> None:
    with OverlappedHash(hashlib.sha256(), None) as digest:
        digest.update(os.urandom(3 * MiB))
        digest.restart(hashlib.sha256())
        digest.update(b"from byte zero again")
        assert digest.hexdigest() == hashlib.sha256(b"from byte zero again").hexdigest()


class Broken:
    def update(self, data: bytes) -> None:
        raise MemoryError("no room")

    def hexdigest(self) -> str:
        return "never"


def test_a_failure_in_the_worker_is_raised_to_the_caller_and_the_worker_ends() -> None:
    digest = OverlappedHash(Broken(), None)
    with digest:
        for _ in range(20):  # more than the queue holds: the worker keeps draining after the failure
            digest.update(b"x" * 4096)
        with pytest.raises(MemoryError, match="no room"):
            digest.hexdigest()
    assert hash_threads() == []


def test_leaving_early_stops_the_worker() -> None:
    with pytest.raises(RuntimeError), OverlappedHash(hashlib.sha1(usedforsecurity=False), None) as digest:
        digest.update(os.urandom(MiB))
        raise RuntimeError("the download broke off")
    assert hash_threads() == []
