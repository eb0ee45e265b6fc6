"""Token-store test helpers shared by the manager, lease and reliability tests."""

from __future__ import annotations

from dropbox_box_provider.store.base import TokenStore
from dropbox_box_provider.testing import mark_expired


def expire_stored(store: TokenStore, conn_id: str) -> None:
    """Mark the stored access token of ``conn_id`` expired (the testing kit's compare-and-swap write)."""
    assert mark_expired(store, conn_id), f"{conn_id} has no stored tokens"
