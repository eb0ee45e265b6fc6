"""Running ``dropbox-box-auth`` as a subprocess and playing the person at the emulator's consent page."""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
from cryptography.fernet import Fernet

from dropbox_box_provider.store.factory import open_store
from tests.fixtures.airflow import AirflowEnv, airflow_environment

CLI = [sys.executable, "-m", "dropbox_box_provider.cli"]
CLI_TIMEOUT = 120


@dataclass
class CliHome:
    """An isolated AIRFLOW_HOME (metastore not needed: connections come from AIRFLOW_CONN_* variables)."""

    airflow: AirflowEnv
    outputs: list[str] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        return self.airflow.env

    @property
    def store_path(self) -> Path:
        return self.airflow.home / "oauth_tokens.db"

    @property
    def key(self) -> str:
        return self.env["AIRFLOW__CORE__FERNET_KEY"]

    def add_connection(self, conn_id: str, definition: dict[str, Any]) -> None:
        self.env[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(definition)

    def run(
        self, *args: str, stdin: str | None = None, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [*CLI, *args],
            env={**self.env, **(env or {})},
            cwd=self.airflow.home,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT,
            check=False,
        )
        self.outputs += [proc.stdout, proc.stderr]
        return proc

    def start(self, *args: str, stdin: bool = False) -> subprocess.Popen[str]:
        """Start a command that waits (authorize); read its stdout with ``read_url``."""
        return subprocess.Popen(
            [*CLI, *args],
            env=self.env,
            cwd=self.airflow.home,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def finish(self, proc: subprocess.Popen[str], stdin: str | None = None) -> tuple[int, str, str]:
        out, err = proc.communicate(stdin, timeout=CLI_TIMEOUT)
        self.outputs += [out, err]
        return proc.returncode, out, err

    def stored_tokens(self, conn_id: str) -> dict[str, Any] | None:
        record = open_store(str(self.store_path), self.key).read(conn_id)
        return None if record is None else dict(record.payload)

    def assert_no_secret_printed(self, *secrets: str | None) -> None:
        text = "\n".join(self.outputs)
        for secret in secrets:
            if secret:
                assert secret not in text, "a token or secret reached the CLI's output"


def make_home(path: Path) -> CliHome:
    return CliHome(airflow_environment(path, Fernet.generate_key().decode(), Fernet.generate_key().decode()))


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def read_url(proc: subprocess.Popen[str], lines: list[str]) -> str:
    """Read the command's stdout until the authorization URL line (kept in ``lines``)."""
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("http"):
            return line.strip()
    raise AssertionError(f"no URL printed; stderr: {proc.stderr.read() if proc.stderr else ''}")


_HIDDEN = re.compile(r"<input type='hidden' name='([^']+)' value='([^']*)'>")
_ACTION = re.compile(r"<form method='post' action='([^']+)'>")


def consent(url: str, decision: str = "allow") -> httpx.Response:
    """GET the consent page, submit Allow/Deny; the emulator's answer (a redirect, or the code page)."""
    with httpx.Client(follow_redirects=False, timeout=30) as http:
        page = http.get(url)
        assert page.status_code == 200, page.text
        action = _ACTION.search(page.text)
        assert action is not None, page.text
        form = {name: html.unescape(value) for name, value in _HIDDEN.findall(page.text)}
        form["decision"] = decision
        return http.post(urljoin(url, html.unescape(action.group(1))), data=form)


def code_on_page(response: httpx.Response) -> str:
    match = re.search(r"<code id='code'>([^<]+)</code>", response.text)
    assert match is not None, response.text
    return html.unescape(match.group(1))


def follow(response: httpx.Response) -> httpx.Response:
    """Follow the emulator's redirect to the CLI's callback server, as the browser would."""
    assert response.status_code == 302, response.text
    return httpx.get(response.headers["location"], timeout=30)


def error_line(stderr: str) -> str:
    """The one ``dropbox-box-auth: error: ...`` line of a failed command (no traceback allowed)."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.startswith("dropbox-box-auth: error: ")]
    assert len(lines) == 1, stderr
    return lines[0]
