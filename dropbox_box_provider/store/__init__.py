"""Token store: encrypted per-connection token records with CAS writes and per-connection refresh leases.

Importing this package is cheap; SQLAlchemy and the PostgreSQL driver load only when a SQL store opens.
"""

from dropbox_box_provider.store.base import KeyRotation, LeaseState, RecordMeta, TokenRecord, TokenStore
from dropbox_box_provider.store.factory import default_store_path, normalize_store_url, open_store

__all__ = [
    "KeyRotation",
    "LeaseState",
    "RecordMeta",
    "TokenRecord",
    "TokenStore",
    "default_store_path",
    "normalize_store_url",
    "open_store",
]
