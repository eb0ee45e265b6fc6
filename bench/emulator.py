"""Start the emulator as a subprocess for one benchmark run and stop it by its PID."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from dropbox_box_provider.emulator.client import EmulatorClient

STARTUP_TIMEOUT = 60.0


@dataclass
class Emulator:
    """A running emulator: base ``url``, control ``client``, its ``process``."""

    url: str
    client: EmulatorClient
    process: subprocess.Popen[str]

    @property
    def pid(self) -> int:
        """The emulator process id."""
        return self.process.pid

    def stop(self) -> None:
        """SIGTERM by PID, then SIGKILL if it lingers."""
        self.client.close()
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=15)


def start_emulator(data_dir: Path) -> Emulator:
    """``python -m dropbox_box_provider.emulator --port 0 --seed demo``; waits for ``listening on URL``."""
    command = [
        sys.executable,
        "-m",
        "dropbox_box_provider.emulator",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--seed",
        "demo",
        "--data-dir",
        str(data_dir),
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    found = threading.Event()
    url: list[str] = []

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            if len(lines) < 200:
                lines.append(line.rstrip())
            if line.startswith("listening on ") and not url:
                url.append(line.split("listening on ", 1)[1].strip())
                found.set()
        found.set()

    threading.Thread(target=pump, daemon=True).start()
    if not found.wait(STARTUP_TIMEOUT) or not url:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(10)
        raise RuntimeError("the emulator did not start:\n" + "\n".join(lines))
    return Emulator(url=url[0], client=EmulatorClient(url[0], timeout=120.0), process=process)
