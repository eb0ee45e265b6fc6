"""How the provider words times for people (hooks' connection test, operators' logs, the CLI): one place."""

from __future__ import annotations

from datetime import UTC, datetime


def duration(seconds: float) -> str:
    """``2d 3h``, ``3h 59m``, ``4m 10s``, ``12s``: the two largest units of a span (its sign ignored)."""
    whole = int(abs(seconds))
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def iso(timestamp: float | None) -> str | None:
    """UTC ISO-8601 (seconds) of a Unix timestamp, None when unknown."""
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, tz=UTC).isoformat(timespec="seconds")
