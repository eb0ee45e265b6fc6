"""TokenSet: one grant's tokens with the validity rules every caller shares."""

from __future__ import annotations

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
