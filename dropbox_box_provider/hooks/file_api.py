"""Argument rules shared by both hooks' search, shared-link and version calls (pure, no I/O)."""

from __future__ import annotations

from datetime import datetime

from dropbox_box_provider.errors import InvalidArgument
from dropbox_box_provider.hooks.files import SHARED_LINK_ACCESS, RemoteEntry, SharedLinkAccess
from dropbox_box_provider.hooks.matching import aware_time


def search_query(query: str) -> str:
    """``query`` stripped; InvalidArgument when it is not text or empty."""
    if not isinstance(query, str) or not query.strip():
        raise InvalidArgument(f"search needs a non-empty query (part of a name), got {query!r}")
    return query.strip()


def search_limit(limit: int | None) -> int | None:
    """``limit`` as a positive int, or None for every match."""
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InvalidArgument(f"search limit must be a positive integer or None, got {limit!r}")
    return limit


def name_contains(entry: RemoteEntry, query: str) -> bool:
    """True when the entry's name contains ``query``, ignoring case (the services' searches match words
    and more fields; this keeps the contract: names containing the query)."""
    return query.casefold() in entry.name.casefold()


def link_access(access: str) -> SharedLinkAccess:
    """``access`` checked against ``public`` / ``team`` / ``collaborators``."""
    for known in SHARED_LINK_ACCESS:
        if access == known:
            return known
    raise InvalidArgument(f"shared link access {access!r} is not one of {', '.join(SHARED_LINK_ACCESS)}")


def link_expiry(expires: datetime | str | None) -> datetime | None:
    """An aware expiry time (naive = UTC; ISO text from a template is accepted)."""
    return aware_time(expires)
