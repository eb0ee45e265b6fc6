"""--state FILE: load the model at start, save it atomically after changes and at shutdown."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from dropbox_box_provider.emulator.state import EmulatorState


def load_state(state: EmulatorState, path: Path) -> bool:
    """Load ``path`` into ``state`` if it exists; True when something was loaded."""
    if not path.exists():
        return False
    state.load_json(json.loads(path.read_text()))
    return True


def save_state(state: EmulatorState, path: Path) -> None:
    """Write the model to ``path`` atomically (tmp file + rename), mode 0600 (it holds tokens)."""
    document = state.to_json()
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(document, handle)
    os.replace(tmp, path)


class StateSaver:
    """A daemon thread that saves the state whenever its change counter moved (checked every second)."""

    def __init__(self, state: EmulatorState, path: Path, interval: float = 1.0) -> None:
        self.state = state
        self.path = path
        self.interval = interval
        self._stop = threading.Event()
        self._saved_changes = state.changes
        self._thread = threading.Thread(target=self._run, daemon=True, name="emulator-state-saver")

    def start(self) -> None:
        """Begin saving in the background."""
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.save_if_changed()

    def save_if_changed(self) -> None:
        """Save now if anything changed since the last save."""
        changes = self.state.changes
        if changes != self._saved_changes:
            save_state(self.state, self.path)
            self._saved_changes = changes

    def stop(self) -> None:
        """Stop the thread and save one last time."""
        self._stop.set()
        self._thread.join(timeout=5)
        save_state(self.state, self.path)
