"""Child processes of the demo: each in its own process group, stopped by PID on every exit path."""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType

STOP_GRACE_SECONDS = 10.0


class ProcessSupervisor:
    """Starts children in new sessions and stops every one still running (SIGTERM, then SIGKILL).

    ``stop_all`` runs from ``finally``, from ``atexit`` and after SIGTERM/SIGHUP (turned into SystemExit),
    so no emulator or api-server outlives the demo.
    """

    def __init__(self) -> None:
        self._children: list[tuple[str, subprocess.Popen[bytes]]] = []
        atexit.register(self.stop_all)
        for signum in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, self._exit_on_signal)

    @staticmethod
    def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        log_path: Path,
        cwd: Path,
        stdin: int | None = subprocess.DEVNULL,
    ) -> subprocess.Popen[bytes]:
        """Start ``argv`` with stdout and stderr appended to ``log_path``."""
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                list(argv),
                env=dict(env),
                cwd=cwd,
                stdin=stdin,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._children.append((name, process))
        return process

    def adopt(self, name: str, process: subprocess.Popen[bytes]) -> None:
        """Stop ``process`` (started elsewhere, in its own session) with the others."""
        self._children.append((name, process))

    def run(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        log_path: Path,
        cwd: Path,
        timeout: float,
    ) -> int:
        """Run ``argv`` to completion (output to ``log_path``); its exit status, or -1 after ``timeout``."""
        process = self.start(name, argv, env=env, log_path=log_path, cwd=cwd)
        try:
            return process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop(process)
            return -1

    def stop(self, process: subprocess.Popen[bytes]) -> None:
        """Stop ``process`` and its process group by its PID."""
        if process.poll() is not None:
            return
        for signum, grace in ((signal.SIGTERM, STOP_GRACE_SECONDS), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(process.pid, signum)
            except ProcessLookupError:
                return
            try:
                process.wait(timeout=grace)
                return
            except subprocess.TimeoutExpired:
                continue

    def stop_all(self) -> None:
        """Stop every child still running, newest first."""
        while self._children:
            name, process = self._children.pop()
            if process.poll() is None:
                print(f"      stopping {name} (pid {process.pid})", file=sys.stderr, flush=True)
                self.stop(process)


def wait_for_line(
    log_path: Path, prefix: str, process: subprocess.Popen[bytes], timeout: float
) -> str | None:
    """The first line of ``log_path`` starting with ``prefix``; None if the process ends or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log_path.exists():
            for line in log_path.read_text(errors="replace").splitlines():
                if line.startswith(prefix):
                    return line
        if process.poll() is not None:
            return None
        time.sleep(0.1)
    return None
