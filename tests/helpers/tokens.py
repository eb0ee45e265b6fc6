"""Token-store test helpers shared by the manager, lease and reliability tests."""

from __future__ import annotations

from dropbox_box_provider.store.base import TokenStore


def expire_stored(store: TokenStore, conn_id: str) -> None:
    """Mark the stored access token of ``conn_id`` expired (a plain compare-and-swap write, no lease)."""
    record = store.read(conn_id)
    assert record is not None, f"{conn_id} has no stored tokens"
    store.write(
        conn_id,
        record.service,
        {**record.payload, "expires_at": 0.0},
        expected_version=record.version,
        expires_at=0.0,
        refresh_issued_at=record.refresh_issued_at,
        seed_fingerprint=record.seed_fingerprint,
    )
