"""open_store: one cached TokenStore per (location, keys) in this process, from a URL or a plain path."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from dropbox_box_provider.errors import TokenStoreError

if TYPE_CHECKING:
    from dropbox_box_provider.store.base import TokenStore
    from dropbox_box_provider.store.crypto import TokenCipher

DEFAULT_STORE_FILENAME = "oauth_tokens.db"
SUPPORTED = (
    "sqlite:///PATH, a plain file path, postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB, or memory://NAME"
)

_CACHE: dict[tuple[str, tuple[str, ...]], TokenStore] = {}
_CACHE_MUTEX = threading.Lock()


def default_store_path() -> str:
    """``$AIRFLOW_HOME/oauth_tokens.db`` (AIRFLOW_HOME from the environment, else ``~/airflow``)."""
    home = os.environ.get("AIRFLOW_HOME") or os.path.join(os.path.expanduser("~"), "airflow")
    return os.path.join(os.path.expanduser(home), DEFAULT_STORE_FILENAME)


def normalize_store_url(url_or_path: str | None) -> str:
    """The canonical URL of a store location: a path becomes ``sqlite:///ABS``, postgres maps to psycopg."""
    location = (url_or_path or "").strip() or default_store_path()
    if location.startswith("memory:"):
        name = location[len("memory:") :].lstrip("/")
        return f"memory://{name or 'default'}"
    if "://" not in location:
        return "sqlite:///" + os.path.abspath(os.path.expanduser(location))
    scheme, rest = location.split("://", 1)
    scheme = scheme.lower()
    if scheme in ("postgres", "postgresql", "postgresql+psycopg"):
        return "postgresql+psycopg://" + rest
    if scheme == "sqlite":
        path = rest[1:] if rest.startswith("/") else rest
        if not path or path == ":memory:":
            raise TokenStoreError(
                "an in-memory sqlite token store would not be shared between connections: "
                "use memory://NAME (one process) or a sqlite file path"
            )
        return "sqlite:///" + os.path.abspath(os.path.expanduser(path))
    raise TokenStoreError(
        f"unsupported token store URL scheme {scheme!r}: use {SUPPORTED} "
        "(set it in the connection's oauth_settings_location or the secrets backend's `store` kwarg)"
    )


def open_store(url_or_path: str | None, key: str | Sequence[str] | None) -> TokenStore:
    """Open (or reuse) the token store at ``url_or_path``, encrypting with ``key`` (comma-separated keys).

    ``None`` or an empty string means the default sqlite file. Raises TokenStoreError with a what-to-do
    message (password masked) for a malformed URL, a missing driver or a bad key.
    """
    from dropbox_box_provider.store.crypto import TokenCipher, split_keys

    url = normalize_store_url(url_or_path)
    cache_key = (url, split_keys(key))
    with _CACHE_MUTEX:
        store = _CACHE.get(cache_key)
        if store is None:
            store = _CACHE[cache_key] = _create(url, TokenCipher(key))
        return store


def _create(url: str, cipher: TokenCipher) -> TokenStore:
    if url.startswith("memory://"):
        from dropbox_box_provider.store.memory import MemoryTokenStore

        return MemoryTokenStore(url[len("memory://") :], cipher)
    try:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError
    except ImportError:  # pragma: no cover - SQLAlchemy comes with Airflow
        raise TokenStoreError("SQLAlchemy is missing: install apache-airflow or SQLAlchemy>=2") from None
    try:
        make_url(url)
    except (ArgumentError, ValueError):
        raise TokenStoreError(f"malformed token store URL: use {SUPPORTED}") from None
    if url.startswith("postgresql"):
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise TokenStoreError(
                "the PostgreSQL driver psycopg is not installed: "
                "`pip install 'airflow-provider-dropbox-box[postgres]'`"
            ) from None
    from dropbox_box_provider.store.sql import SqlTokenStore

    return SqlTokenStore(url, cipher)


def forget_open_stores() -> None:
    """Close and forget every cached store (tests; after changing keys in a long-lived process)."""
    with _CACHE_MUTEX:
        stores = list(_CACHE.values())
        _CACHE.clear()
    for store in stores:
        store.close()


def _after_fork_in_child() -> None:
    # A forked child keeps its store objects but must not reuse the parent's pooled database connections,
    # nor a lock that a parent thread held at the moment of the fork.
    global _CACHE_MUTEX  # noqa: PLW0603
    _CACHE_MUTEX = threading.Lock()
    for store in _CACHE.values():
        store.after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
