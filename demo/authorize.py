"""Authorizing a connection through ``dropbox-box-auth authorize CONN --headless``.

The CLI prints the consent URL and waits for the person to paste what the browser showed. Here the
emulator's ``/_emulator/authorize`` stands in for the person clicking Allow: it issues the code for exactly
the URL's parameters, and the demo pastes the code (Dropbox, no-redirect flow) or the redirected address
(Box, with the state taken from the printed URL) into the CLI's stdin.
"""

from __future__ import annotations

import queue
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

from demo.console import StepFailed, log_tail
from demo.emulator import RunningEmulator
from demo.processes import ProcessSupervisor
from demo.workspace import Workspace, script

TIMEOUT = 180.0
SERVICE_OF_PATH = {"www.dropbox.com": "dropbox", "account.box.com": "box"}


@dataclass(frozen=True)
class Consent:
    """What the printed authorization URL asked for, and what the demo pasted back (not printed)."""

    service: str
    url: str
    answer: str


def consent_for(emulator: RunningEmulator, url: str) -> Consent:
    """Click Allow for ``url``: the code for its parameters, as the person would paste it."""
    parts = urlsplit(url)
    host = parts.path.lstrip("/").split("/", 1)[0]
    service = SERVICE_OF_PATH.get(host)
    if service is None:
        raise StepFailed(f"the CLI printed an authorization URL for an unexpected host {host!r}")
    params = dict(parse_qsl(parts.query))
    redirect_uri = params.get("redirect_uri")
    code = emulator.client.authorize(
        service,
        params["client_id"],
        redirect_uri=redirect_uri,
        code_challenge=params.get("code_challenge"),
        code_challenge_method=params.get("code_challenge_method"),
        scope=params.get("scope"),
        token_access_type=params.get("token_access_type"),
    )
    if not redirect_uri:  # Dropbox's no-redirect flow: the page shows the code
        return Consent(service, url, code)
    query = {"code": code, **({"state": params["state"]} if "state" in params else {})}
    return Consent(service, url, f"{redirect_uri}?{urlencode(query)}")


def _pump(stream: object, lines: queue.Queue[str | None]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        lines.put(line.decode(errors="replace") if isinstance(line, bytes) else line)
    lines.put(None)


def authorize_headless(
    supervisor: ProcessSupervisor,
    workspace: Workspace,
    emulator: RunningEmulator,
    conn_id: str,
) -> tuple[Consent, str]:
    """Run the CLI's headless authorization for ``conn_id``; the consent given and the CLI's result line."""
    log_path = workspace.logs / f"authorize-{conn_id}.log"
    argv = [script("dropbox-box-auth"), "authorize", conn_id, "--headless"]
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            argv,
            env=workspace.env(),
            cwd=workspace.root,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            start_new_session=True,
        )
    supervisor.adopt(f"dropbox-box-auth authorize {conn_id}", process)
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_pump, args=(process.stdout, lines), daemon=True).start()
    output: list[str] = []
    consent = None
    try:
        while consent is None:
            line = lines.get(timeout=TIMEOUT)
            if line is None:
                break
            output.append(line)
            if "oauth2/authorize?" in line:
                consent = consent_for(emulator, line.strip())
        if consent is None:
            process.wait(timeout=30)
            raise _failure(conn_id, process.returncode, output, log_path)
        assert process.stdin is not None
        process.stdin.write(consent.answer.encode() + b"\n")
        process.stdin.close()
        status = process.wait(timeout=TIMEOUT)
    except (queue.Empty, subprocess.TimeoutExpired):
        supervisor.stop(process)
        raise StepFailed(
            f"`dropbox-box-auth authorize {conn_id} --headless` did not finish within {TIMEOUT:g} s"
        ) from None
    while (line := lines.get(timeout=30)) is not None:
        output.append(line)
    if status != 0:
        raise _failure(conn_id, status, output, log_path)
    result = next((line.strip() for line in reversed(output) if line.startswith("Connected ")), "")
    return consent, result


def _failure(conn_id: str, status: int | None, output: list[str], log_path: Path) -> StepFailed:
    return StepFailed(
        f"`dropbox-box-auth authorize {conn_id} --headless` exited {status}:\n"
        f"{''.join(output[-10:])}{log_tail(log_path)}"
    )
