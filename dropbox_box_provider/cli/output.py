"""How the CLI words times and writes lines: results on stdout, guidance and warnings on stderr."""

from __future__ import annotations

import sys
import time

from dropbox_box_provider.wording import duration, iso

__all__ = ["duration", "iso", "note", "say", "since", "until"]


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


def say(text: str = "") -> None:
    """A result line (stdout)."""
    print(text, flush=True)


def note(text: str) -> None:
    """Guidance, prompts and warnings (stderr), so stdout stays machine-readable."""
    print(text, file=sys.stderr, flush=True)
