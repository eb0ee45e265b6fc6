"""TransferProgress: rate-limited progress lines (percent, MB/s) for long uploads and downloads."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

DEFAULT_INTERVAL = 5.0

log = logging.getLogger(__name__)


class TransferProgress:
    """Counts bytes of one transfer and logs at most once per ``interval`` seconds, plus once at the end.

    Small transfers (below ``min_size``) log nothing: a line per tiny file is noise.
    """

    def __init__(
        self,
        label: str,
        total: int | None,
        *,
        interval: float = DEFAULT_INTERVAL,
        min_size: int = 8 * 1024 * 1024,
        logger: logging.Logger | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label = label
        self.total = total
        self.interval = interval
        self.enabled = total is None or total >= min_size
        self.done = 0
        self._log = logger or log
        self._clock = clock
        self._start = clock()
        self._last = self._start

    def _line(self, now: float) -> str:
        elapsed = max(now - self._start, 1e-6)
        rate = self.done / elapsed / 1_000_000
        size = f"{self.done / 1_048_576:.1f} MiB"
        if self.total:
            size += f" of {self.total / 1_048_576:.1f} MiB ({100 * self.done / self.total:.0f}%)"
        return f"{self.label}: {size}, {rate:.1f} MB/s"

    def update(self, count: int) -> None:
        """Add ``count`` transferred bytes; log when ``interval`` has passed since the last line."""
        self.done += count
        if not self.enabled:
            return
        now = self._clock()
        if now - self._last >= self.interval:
            self._last = now
            self._log.info("%s", self._line(now))

    def reset_to(self, done: int) -> None:
        """Set the byte count back (a chunk is being resent)."""
        self.done = done

    def finish(self) -> None:
        """Log the closing line (only for transfers large enough to have logged progress)."""
        if self.enabled:
            self._log.info("%s, done in %.1f s", self._line(self._clock()), self._clock() - self._start)
