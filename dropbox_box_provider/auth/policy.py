"""When a connection's token is due for refresh, and when it counts as authorized: the rules the token
sensor, its trigger and the refresh operator share. Pure functions of times and store metadata."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from dropbox_box_provider.store.base import RecordMeta

TokenCondition = Literal["due", "authorized"]
CONDITIONS: tuple[TokenCondition, ...] = ("due", "authorized")
DEFAULT_WINDOW = 30 * 60.0
# Box refresh tokens die after 60 unused days; refreshing at 30 keeps a wide safety margin.
DEFAULT_MAX_REFRESH_TOKEN_AGE = 30 * 86400.0


@dataclass(frozen=True)
class TokenState:
    """Whether a condition holds now, why, and (when not) how many seconds until it will by the clock."""

    met: bool
    reason: str
    opens_in: float | None = None


def due_reason(
    service: str | None,
    expires_at: float | None,
    refresh_issued_at: float | None,
    *,
    window: float,
    max_refresh_token_age: float,
    now: float,
) -> TokenState:
    """The refresh rule: due when the access token expires within ``window`` seconds, or (Box only) when
    the refresh token is older than ``max_refresh_token_age`` seconds."""
    waits: list[float] = []
    if expires_at is not None:
        remaining = expires_at - now
        if remaining <= window:
            return TokenState(True, f"the access token expires in {max(0, int(remaining))} s")
        waits.append(remaining - window)
    if service == "box" and refresh_issued_at is not None:
        age = now - refresh_issued_at
        if age >= max_refresh_token_age:
            return TokenState(True, f"the Box refresh token is {int(age // 86400)} days old")
        waits.append(max_refresh_token_age - age)
    if not waits:
        return TokenState(False, "the token never expires")
    return TokenState(False, "the token is not due yet", min(waits))


def meta_due(
    meta: RecordMeta | None, *, window: float, max_refresh_token_age: float, now: float
) -> TokenState:
    """``due_reason`` of a store record; no record means the store must be seeded, which is due."""
    if meta is None:
        return TokenState(True, "the token store holds no tokens for it yet")
    return due_reason(
        meta.service,
        meta.expires_at,
        meta.refresh_issued_at,
        window=window,
        max_refresh_token_age=max_refresh_token_age,
        now=now,
    )


def is_authorized(meta: RecordMeta | None, *, now: float) -> TokenState:
    """Usable tokens are stored: a refresh token (its issue time is set) or an access token still valid."""
    if meta is None:
        return TokenState(False, "the token store holds no tokens for it yet")
    if meta.refresh_issued_at is not None:
        return TokenState(True, "a refresh token is stored")
    if meta.expires_at is None or meta.expires_at > now:
        return TokenState(True, "a valid access token is stored")
    return TokenState(False, "only an expired access token is stored")
