"""The TokenStore contract: encrypted token payloads per connection, CAS writes, per-connection leases."""

from __future__ import annotations

from collections.abc import Iterator
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


@dataclass(frozen=True)
class LeaseState:
    """A connection's refresh lease as one short transaction saw it.

    ``acquired`` is True when the claim that produced this state now holds the lease. ``holder`` is the
    owner id of the live lease (None when free), ``remaining`` its seconds left by the database's clock,
    ``version`` the record's version (None while it holds no tokens): waiters watch it to see a refresh land.
    """

    acquired: bool
    holder: str | None
    remaining: float | None
    version: int | None


@dataclass(frozen=True)
class KeyRotation:
    """What ``rotate_keys`` did: records re-encrypted, and ids it had to skip because they kept changing."""

    rotated: int
    skipped: tuple[str, ...] = ()


class TokenStore(Protocol):
    """Implemented once over SQLAlchemy Core (sqlite, PostgreSQL) and once in memory.

    ``read`` returns None when a connection has no tokens (even if a saved connection exists). ``write`` is
    compare-and-swap: ``expected_version`` None means "no tokens stored yet"; a mismatch raises StoreConflict.
    With ``lease_owner`` the write is also fenced by that owner's lease (LeaseLost when another owner holds
    it) and releases the lease in the same transaction.

    Leases replace held locks: ``claim_lease``, ``renew_lease`` and ``release_lease`` are each one short
    committed transaction, so no transaction stays open while a token request is in flight and one slow
    connection never delays another. Lease times are measured by the database's clock.

    ``url`` never shows a password. The payload the TokenManager writes is ``TokenSet.to_dict()`` plus
    bookkeeping keys, so ``TokenSet.from_dict(record.payload)`` gives the live tokens.
    """

    url: str

    def read(self, conn_id: str) -> TokenRecord | None: ...

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
        lease_owner: str | None = None,
    ) -> TokenRecord: ...

    def lease_state(self, conn_id: str) -> LeaseState: ...

    def claim_lease(self, conn_id: str, owner: str, seconds: float, *, service: str) -> LeaseState: ...

    def renew_lease(self, conn_id: str, owner: str, seconds: float) -> bool: ...

    def release_lease(self, conn_id: str, owner: str) -> None: ...

    def delete(self, conn_id: str) -> bool: ...

    def list_meta(self) -> list[RecordMeta]: ...

    def save_connection(self, conn_id: str, connection: dict[str, Any]) -> None: ...

    def get_connection(self, conn_id: str) -> dict[str, Any] | None: ...

    def rotate_keys(self) -> KeyRotation: ...

    def iter_conn_ids(self) -> Iterator[str]: ...

    def after_fork(self) -> None: ...

    def close(self) -> None: ...


def service_of_connection(connection: dict[str, Any]) -> str:
    """The service ("dropbox"/"box") of a saved connection definition, from its conn_type."""
    conn_type = str(connection.get("conn_type") or connection.get("service") or "")
    return "box" if conn_type.startswith("box") else conn_type


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
