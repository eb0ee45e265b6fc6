"""What the demo prints: numbered steps with a line of explanation, indented details, a summary table."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path

BOLD, GREEN, RED, DIM, RESET = "\033[1m", "\033[32m", "\033[31m", "\033[2m", "\033[0m"


class StepFailed(Exception):
    """A demo step did not do what it claims; the message says what to look at."""


class Console:
    """Writes the demo's narrative to stdout (colour only on a terminal) and remembers every line."""

    def __init__(self, total_steps: int) -> None:
        self.total_steps = total_steps
        self.number = 0
        self.lines: list[str] = []
        self._colour = sys.stdout.isatty()
        self._step_started = time.monotonic()

    def _style(self, text: str, style: str) -> str:
        return f"{style}{text}{RESET}" if self._colour else text

    def _emit(self, text: str) -> None:
        self.lines.append(text)
        print(text, flush=True)

    def step(self, title: str, why: str) -> None:
        """Start the next numbered step: its title and one line on what happens and why."""
        self.number += 1
        self._step_started = time.monotonic()
        self._emit("")
        self._emit(self._style(f"[{self.number}/{self.total_steps}] {title}", BOLD))
        self._emit(self._style(f"      {why}", DIM))

    def detail(self, text: str) -> None:
        """An indented line under the current step."""
        for line in text.splitlines() or [""]:
            self._emit(f"      {line}")

    def done(self, text: str = "done") -> None:
        """The current step succeeded (with its duration)."""
        seconds = time.monotonic() - self._step_started
        self._emit(self._style(f"      ok: {text} ({seconds:.1f} s)", GREEN))

    def error(self, text: str) -> None:
        """A failure line (stderr, so it stands out in logs too)."""
        self.lines.append(text)
        print(self._style(text, RED), file=sys.stderr, flush=True)

    def table(self, title: str, rows: Sequence[tuple[str, str]]) -> None:
        """A two-column table."""
        width = max(len(label) for label, _ in rows)
        rule = "-" * (width + 2 + max(len(value) for _, value in rows))
        self._emit("")
        self._emit(self._style(title, BOLD))
        self._emit(rule)
        for label, value in rows:
            self._emit(f"{label.ljust(width)}  {value}")
        self._emit(rule)


def log_tail(path: Path, lines: int = 25) -> str:
    """The last ``lines`` lines of a log file, for failure messages."""
    if not path.exists():
        return f"(no log at {path})"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
