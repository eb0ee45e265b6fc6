"""The TokenStore contract: encrypted token payloads per connection, CAS writes, a cross-process lock."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from dropbox_box_provider.store.crypto import TokenCipher


@dataclass(frozen=True)
class TokenRecord:
    """One connection's stored state. ``payload`` is decrypted; the other fields are stored in clear."""

    conn_id: str
    service: str
    version: int
    payload: dict[str, Any] = field(repr=False)
    expires_at: float | None = None
    refresh_issued_at: float | None = None
    updated_at: float | None = None
    seed_fingerprint: str | None = None


@dataclass(frozen=True)
class RecordMeta:
    """The clear metadata of a record, readable without the encryption key (for status displays)."""

    conn_id: str
    service: str
    version: int
    expires_at: float | None
    refresh_issued_at: float | None
    updated_at: float | None
    seed_fingerprint: str | None
    has_connection: bool


class LockedRecord(Protocol):
    """What ``TokenStore.locked`` yields: the record as re-read under the lock, and a write within it.

    ``record`` raises TokenStoreError when the stored payload cannot be decrypted; ``write`` then refuses
    unless ``force=True`` (a person re-seeding). Writes are compare-and-swap on ``version``.
    """

    @property
    def record(self) -> TokenRecord | None: ...

    def write(
        self,
        service: str,
        payload: dict[str, Any],
        *,
        expires_at: float | None,
        refresh_issued_at: float | None,
        seed_fingerprint: str | None,
        force: bool = False,
    ) -> TokenRecord: ...


class TokenStore(Protocol):
    """Implemented once over SQLAlchemy Core (sqlite, PostgreSQL) and once in memory.

    ``read`` returns None when a connection has no tokens (even if a saved connection exists). ``write`` is
    compare-and-swap: ``expected_version`` None means "no tokens stored yet"; a mismatch raises StoreConflict.
    ``url`` never shows a password. The payload the TokenManager writes is ``TokenSet.to_dict()`` plus
    bookkeeping keys, so ``TokenSet.from_dict(record.payload)`` gives the live tokens.
    """

    url: str

    def read(self, conn_id: str) -> TokenRecord | None: ...

    def locked(self, conn_id: str) -> AbstractContextManager[LockedRecord]: ...

    def write(
        self,
        conn_id: str,
        service: str,
        payload: dict[str, Any],
        *,
        expected_version: int | None,
        expires_at: float | None,
        refresh_issued_at: float | None,
        seed_fingerprint: str | None,
        force: bool = False,
    ) -> TokenRecord: ...

    def delete(self, conn_id: str) -> bool: ...

    def list_meta(self) -> list[RecordMeta]: ...

    def save_connection(self, conn_id: str, connection: dict[str, Any]) -> None: ...

    def get_connection(self, conn_id: str) -> dict[str, Any] | None: ...

    def rotate_keys(self) -> int: ...

    def iter_conn_ids(self) -> Iterator[str]: ...

    def close(self) -> None: ...


def decrypt_part(cipher: TokenCipher, ciphertext: str, *, conn_id: str, column: str, store_url: str) -> Any:
    """Decrypt one stored column; a key that does not fit becomes a TokenStoreError saying what to do."""
    from dropbox_box_provider.errors import TokenStoreError
    from dropbox_box_provider.store.crypto import UndecryptableError, undecryptable_message

    try:
        return cipher.decrypt(ciphertext)
    except UndecryptableError:
        raise TokenStoreError(undecryptable_message(conn_id, column, store_url)) from None


def record_from_row(conn_id: str, row: Any, cipher: TokenCipher, store_url: str) -> TokenRecord | None:
    """The TokenRecord of a stored row (SQL row or memory row alike), None when it holds no tokens."""
    if row is None or row.payload is None:
        return None
    return TokenRecord(
        conn_id=conn_id,
        service=row.service,
        version=row.version,
        payload=decrypt_part(
            cipher, row.payload, conn_id=conn_id, column="token payload", store_url=store_url
        ),
        expires_at=row.expires_at,
        refresh_issued_at=row.refresh_issued_at,
        updated_at=row.updated_at,
        seed_fingerprint=row.seed_fingerprint,
    )
