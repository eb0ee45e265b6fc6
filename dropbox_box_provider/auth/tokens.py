"""TokenSet: one grant's tokens with the validity rules every caller shares."""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class TokenSet:
    """Access token (and refresh token where the grant gives one) with expiry and account metadata.

    ``expires_at``, ``refresh_issued_at`` and ``obtained_at`` (when the grant was received) are Unix
    timestamps. The repr never shows a token.
    """

    access_token: str = field(repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    expires_at: float | None = None
    refresh_issued_at: float | None = None
    scope: str | None = None
    account_id: str | None = None
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type, not a secret
    extra: dict[str, Any] = field(default_factory=dict, compare=False)
    obtained_at: float | None = None

    def expires_in(self, now: float | None = None) -> float | None:
        """Seconds until the access token expires (negative once expired); None when it never expires."""
        if self.expires_at is None:
            return None
        return self.expires_at - (time.time() if now is None else now)

    def lifetime(self) -> float | None:
        """Seconds the access token was granted for, when both ends are known."""
        if self.expires_at is None or self.obtained_at is None:
            return None
        return max(self.expires_at - self.obtained_at, 0.0)

    def effective_margin(self, margin: float) -> float:
        """``margin`` capped at half the token's lifetime: a margin at or above the lifetime would
        otherwise refresh on every call."""
        lifetime = self.lifetime()
        return margin if lifetime is None else min(margin, lifetime / 2)

    def is_valid(self, margin: float = 300.0, now: float | None = None) -> bool:
        """True when the access token stays valid for more than the effective ``margin`` seconds."""
        remaining = self.expires_in(now)
        return bool(self.access_token) and (remaining is None or remaining > self.effective_margin(margin))

    def trusted_for(self, margin: float, now: float | None = None) -> float:
        """Seconds from ``now`` during which the token may be handed out without asking again: until its
        expiry minus the effective ``margin`` (infinite for a token without expiry)."""
        remaining = self.expires_in(now)
        return math.inf if remaining is None else remaining - self.effective_margin(margin)

    def with_refresh_fallback(self, previous_refresh_token: str | None) -> TokenSet:
        """Keep the previous refresh token when the grant returned none (Dropbox refreshes do not rotate)."""
        if self.refresh_token or not previous_refresh_token:
            return self
        return replace(self, refresh_token=previous_refresh_token)

    def to_dict(self) -> dict[str, Any]:
        """Serialize for the token store's encrypted payload."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TokenSet:
        """Inverse of ``to_dict``; unknown keys are ignored so newer payloads still load."""
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


class CachedToken:
    """An access token as the hooks' hot path trusts it: until ``deadline`` on the ``time.monotonic`` clock
    (its expiry minus the effective margin), so handing it out is one compare. ``expire()`` sends every
    holder back to the token manager at once (after a 401, a refresh or ``forget``)."""

    __slots__ = ("access_token", "deadline", "seed", "tokens")

    def __init__(self, tokens: TokenSet, deadline: float, seed: str | None = None) -> None:
        self.tokens = tokens
        self.access_token = tokens.access_token
        self.deadline = deadline
        self.seed = seed

    @classmethod
    def trusted(cls, tokens: TokenSet, margin: float, now: float, seed: str | None = None) -> CachedToken:
        """``tokens`` trusted until their expiry minus the effective ``margin`` (``now``: wall clock)."""
        return cls(tokens, time.monotonic() + tokens.trusted_for(margin, now), seed)

    def expire(self) -> None:
        """Stop trusting this token: the next ``get_access_token`` of every holder goes the full path."""
        self.deadline = -math.inf

    def __repr__(self) -> str:
        return f"CachedToken(deadline={self.deadline!r})"
