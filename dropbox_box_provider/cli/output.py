"""How the CLI words times and writes lines: results on stdout, guidance and warnings on stderr."""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime


def duration(seconds: float) -> str:
    """``2d 3h``, ``3h 59m``, ``4m 10s``, ``12s``: the two largest units of a non-negative span."""
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


def until(timestamp: float | None, now: float | None = None) -> str:
    """``in 3h 59m`` / ``expired 5m 02s ago`` / ``never`` for a Unix timestamp."""
    if timestamp is None:
        return "never"
    delta = timestamp - (time.time() if now is None else now)
    return f"in {duration(delta)}" if delta >= 0 else f"expired {duration(delta)} ago"


def since(timestamp: float | None, now: float | None = None) -> str:
    """``3h 02m ago`` for a Unix timestamp in the past, ``-`` when unknown."""
    if timestamp is None:
        return "-"
    return f"{duration((time.time() if now is None else now) - timestamp)} ago"


def iso(timestamp: float | None) -> str | None:
    """UTC ISO-8601 (seconds) of a Unix timestamp, None when unknown."""
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, tz=UTC).isoformat(timespec="seconds")


def say(text: str = "") -> None:
    """A result line (stdout)."""
    print(text, flush=True)


def note(text: str) -> None:
    """Guidance, prompts and warnings (stderr), so stdout stays machine-readable."""
    print(text, file=sys.stderr, flush=True)
