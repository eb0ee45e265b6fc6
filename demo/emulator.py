"""Starting the local Dropbox/Box emulator with the demo seed, and reading its counters."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from typing import Any

from demo.console import StepFailed, log_tail
from demo.processes import ProcessSupervisor, wait_for_line
from demo.workspace import Workspace
from dropbox_box_provider.emulator.client import EmulatorClient

READY_PREFIX = "listening on "
START_TIMEOUT = 60.0
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


@dataclass
class RunningEmulator:
    """The emulator process's base URL, PID and control-plane client."""

    url: str
    process: subprocess.Popen[bytes]
    client: EmulatorClient

    @property
    def pid(self) -> int:
        return self.process.pid

    def grants(self, service: str, grant: str) -> int:
        """How many token requests of ``grant`` the emulator answered successfully."""
        counts: dict[str, int] = self.client.stats()[service]["token"].get(grant, {})
        return int(counts.get("ok", 0))

    def failed_grants(self) -> dict[str, int]:
        """Token-endpoint answers other than "ok", per ``service/grant/outcome`` (e.g. invalid_grant)."""
        failures: dict[str, int] = {}
        stats: dict[str, Any] = self.client.stats()
        for service in ("dropbox", "box"):
            for grant, outcomes in stats[service]["token"].items():
                for outcome, count in outcomes.items():
                    if outcome != "ok" and count:
                        failures[f"{service}/{grant}/{outcome}"] = int(count)
        return failures


def start_emulator(supervisor: ProcessSupervisor, workspace: Workspace) -> RunningEmulator:
    """Start the emulator (``--port 0 --seed demo``); ready once it prints ``listening on``."""
    log = workspace.logs / "emulator.log"
    argv = [
        sys.executable, "-m", "dropbox_box_provider.emulator", "--host", "127.0.0.1", "--port", "0",
        "--seed", "demo", "--data-dir", str(workspace.emulator_data),
    ]  # fmt: skip
    process = supervisor.start("emulator", argv, env=workspace.env(), log_path=log, cwd=workspace.root)
    line = wait_for_line(log, READY_PREFIX, process, START_TIMEOUT)
    if line is None:
        supervisor.stop(process)
        raise StepFailed(f"the emulator did not start; its log ({log}):\n{log_tail(log)}")
    url = line[len(READY_PREFIX) :].strip()
    return RunningEmulator(url=url, process=process, client=EmulatorClient(url))
