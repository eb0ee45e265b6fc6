"""The pending authorization of a connection: the ``state`` and PKCE verifier ``url`` handed out, kept
(encrypted) in the token store until ``exchange`` uses them once. Stored as a record of its own whose id
(``CONN_ID#pending-authorization``) no Airflow connection id can take, so it travels with
``export``/``import`` and never reaches Airflow as a connection."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from dropbox_box_provider.errors import TokenStoreError

if TYPE_CHECKING:
    from dropbox_box_provider.auth.config import AuthConfig
    from dropbox_box_provider.auth.flows import AuthorizationRequest
    from dropbox_box_provider.store.base import TokenStore

SUFFIX = "#pending-authorization"
_KEY = "pending_authorization"


def record_id(conn_id: str) -> str:
    """The store id holding ``conn_id``'s pending authorization."""
    return conn_id + SUFFIX


def is_pending_id(record: str) -> bool:
    """True for a pending-authorization record (not a connection)."""
    return record.endswith(SUFFIX)


def from_request(request: AuthorizationRequest) -> dict[str, Any]:
    """What ``exchange`` must repeat and check, as stored."""
    return {
        "state": request.state,
        "code_verifier": request.code_verifier,
        "redirect_uri": request.redirect_uri,
        "created_at": time.time(),
    }


def save(store: TokenStore, conn_id: str, config: AuthConfig | str, pending: dict[str, Any]) -> None:
    """Remember ``pending`` for ``conn_id`` (replacing an earlier one)."""
    conn_type = config if isinstance(config, str) else config.conn_type
    store.save_connection(record_id(conn_id), {"conn_type": conn_type, "extra": {}, _KEY: pending})


def load(store: TokenStore, conn_id: str) -> dict[str, Any] | None:
    """The pending authorization of ``conn_id``, or None (also when it cannot be decrypted)."""
    try:
        saved = store.get_connection(record_id(conn_id))
    except TokenStoreError:
        return None
    pending = saved.get(_KEY) if saved else None
    return pending if isinstance(pending, dict) and isinstance(pending.get("state"), str) else None


def discard(store: TokenStore, conn_id: str) -> None:
    """Forget the pending authorization (used once, or denied by the person)."""
    store.delete(record_id(conn_id))
