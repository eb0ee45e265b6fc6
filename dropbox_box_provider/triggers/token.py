"""OAuthTokenTrigger: waits, in the triggerer, until a connection's token is due for refresh or authorized.

It reads only the token store's clear metadata (expiry, refresh-token issue time, version): no connection
lookup, no decryption, no network call to Dropbox or Box. Its serialized kwargs hold the connection id, the
store URL without any password, and thresholds; never a token or key. The rules (``due_reason``,
``is_authorized``) live in ``auth/policy.py``, shared with the sensor's poke and the refresh operator.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow.triggers.base import BaseTrigger, TriggerEvent

from dropbox_box_provider.auth.policy import (
    CONDITIONS,
    DEFAULT_MAX_REFRESH_TOKEN_AGE,
    DEFAULT_WINDOW,
    TokenCondition,
    TokenState,
    due_reason,
    is_authorized,
    meta_due,
)
from dropbox_box_provider.errors import DropboxBoxError, TokenStoreError

if TYPE_CHECKING:
    from dropbox_box_provider.store.base import RecordMeta, TokenStore

__all__ = [  # the policy's names, importable from here as before
    "CONDITIONS",
    "DEFAULT_MAX_REFRESH_TOKEN_AGE",
    "DEFAULT_WINDOW",
    "OAuthTokenTrigger",
    "TokenCondition",
    "TokenState",
    "due_reason",
    "is_authorized",
    "meta_due",
]

DEFAULT_POLL_INTERVAL = 60.0


def meta_payload(conn_id: str, meta: RecordMeta | None) -> dict[str, Any]:
    """The clear metadata an event or XCom carries (no token)."""
    return {
        "conn_id": conn_id,
        "service": meta.service if meta else None,
        "version": meta.version if meta else None,
        "expires_at": meta.expires_at if meta else None,
        "refresh_issued_at": meta.refresh_issued_at if meta else None,
    }


def read_meta(store: TokenStore, conn_id: str) -> RecordMeta | None:
    """The clear metadata of ``conn_id`` (``list_meta`` decrypts nothing)."""
    return next((meta for meta in store.list_meta() if meta.conn_id == conn_id), None)


_METADATA_ONLY_KEY: list[str] = []


def _has_password(url: str) -> bool:
    try:
        return urlsplit(url).password is not None
    except ValueError:
        return False


def open_metadata_store(store_url: str) -> TokenStore:
    """Open the store named by a password-free URL, in a process that holds no connection (the triggerer).

    A configured TokenStoreBackend whose store has that URL is used as is (it knows the password). Otherwise
    the URL is opened directly: only clear metadata is read, so any Fernet key will do.
    """
    from dropbox_box_provider.auth.config import redact_url_password
    from dropbox_box_provider.secrets import _airflow_config
    from dropbox_box_provider.secrets.token_store import TokenStoreBackend
    from dropbox_box_provider.store.factory import open_store

    keys: list[str] = []
    for worker_mode in (True, False):
        backend = TokenStoreBackend.from_config(worker_mode=worker_mode)
        if backend is None:
            continue
        try:
            store = backend.token_store()
        except TokenStoreError:
            continue
        if redact_url_password(store.url) == store_url:
            return store
        if backend.key:
            keys.append(backend.key)
    if _has_password(store_url):
        raise TokenStoreError(
            f"the token store {store_url} needs a password, which a trigger never carries: configure "
            "TokenStoreBackend with this store (`store` kwarg) for the triggerer too"
        )
    if not keys and _airflow_config.fernet_key():
        keys.append(_airflow_config.fernet_key())
    if not keys:
        if not _METADATA_ONLY_KEY:
            from cryptography.fernet import Fernet

            _METADATA_ONLY_KEY.append(Fernet.generate_key().decode())
        keys.append(_METADATA_ONLY_KEY[0])
    return open_store(store_url, keys[0])


class OAuthTokenTrigger(BaseTrigger):
    """Fires once ``conn_id``'s stored token is ``due`` for refresh (sleeping until the expiry window
    opens, re-reading the store at least every ``poll_interval`` s) or ``authorized`` (polling the store)."""

    def __init__(
        self,
        conn_id: str,
        store_url: str,
        *,
        mode: TokenCondition = "due",
        window: float = DEFAULT_WINDOW,
        max_refresh_token_age: float = DEFAULT_MAX_REFRESH_TOKEN_AGE,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        if mode not in CONDITIONS:
            raise ValueError(f"mode {mode!r} is not one of {', '.join(CONDITIONS)}")
        self.conn_id = conn_id
        self.store_url = store_url
        self.mode: TokenCondition = mode
        self.window = float(window)
        self.max_refresh_token_age = float(max_refresh_token_age)
        self.poll_interval = max(0.05, float(poll_interval))

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Class path and plain-JSON kwargs (no secrets: the URL carries no password)."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "conn_id": self.conn_id,
                "store_url": self.store_url,
                "mode": self.mode,
                "window": self.window,
                "max_refresh_token_age": self.max_refresh_token_age,
                "poll_interval": self.poll_interval,
            },
        )

    def evaluate(self, meta: RecordMeta | None, now: float) -> TokenState:
        """The trigger's condition on one metadata reading."""
        if self.mode == "authorized":
            return is_authorized(meta, now=now)
        return meta_due(meta, window=self.window, max_refresh_token_age=self.max_refresh_token_age, now=now)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Yield one event: ``status`` success with the metadata, or error with a what-to-do message."""
        try:
            store = await asyncio.to_thread(open_metadata_store, self.store_url)
            while True:
                meta = await asyncio.to_thread(read_meta, store, self.conn_id)
                state = self.evaluate(meta, time.time())
                if state.met:
                    self.log.info("Connection %r is %s: %s", self.conn_id, self.mode, state.reason)
                    yield TriggerEvent(  # type: ignore[no-untyped-call]
                        {"status": "success", "mode": self.mode, "reason": state.reason}
                        | meta_payload(self.conn_id, meta)
                    )
                    return
                delay = self.poll_interval
                if state.opens_in is not None:
                    delay = min(delay, max(state.opens_in, 0.0))
                await asyncio.sleep(delay)
        except DropboxBoxError as exc:
            yield TriggerEvent(  # type: ignore[no-untyped-call]
                {"status": "error", "mode": self.mode, "conn_id": self.conn_id, "message": str(exc)}
            )
