"""The demo driver end to end (``python -m demo --workdir TMP``), and its clean-up when it is stopped."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dropbox_box_provider.store import open_store

REPO = Path(__file__).resolve().parents[2]
PID_LINE = re.compile(r"listening on (http://127\.0\.0\.1:\d+) \(pid (\d+)\)")


def demo_process(workdir: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    return subprocess.Popen(
        [sys.executable, "-m", "demo", "--workdir", str(workdir)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def assert_gone(pid: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    raise AssertionError(f"process {pid} still runs after the demo ended")


def exported(env_file: Path, name: str) -> str:
    for line in env_file.read_text().splitlines():
        if line.startswith(f"export {name}="):
            return shlex.split(line.split("=", 1)[1])[0]
    raise AssertionError(f"{name} not in {env_file}")


@pytest.mark.slow
@pytest.mark.airflow
@pytest.mark.timeout(600)
def test_demo_runs_every_step_and_stops_the_emulator(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    (workdir / "stale").mkdir(parents=True)  # a previous run's leftovers are removed
    process = demo_process(workdir)
    output, _ = process.communicate(timeout=540)
    assert process.returncode == 0, output[-6000:]

    assert "Demo finished: every step succeeded." in output
    for number in range(1, 11):
        assert f"[{number}/10]" in output, output[-6000:]
    assert not (workdir / "stale").exists()
    summary = output[output.index("Summary") :]
    assert re.search(r"files moved\s+3 of 3", summary), summary
    assert re.search(r"refresh grants\s+Dropbox 1, Box 1", summary), summary
    assert re.search(r"failed token requests\s+none", summary), summary
    assert re.search(r"secrets in output/logs\s+none", summary), summary
    assert re.search(r"box_default v2, box_jwt v1, dropbox_default v2", summary), summary
    for conn_id in ("box_default", "box_jwt", "dropbox_default"):
        assert re.search(rf"│ {conn_id}\s+│.*│ ok\s+│", output), output[-6000:]

    match = PID_LINE.search(output)
    assert match is not None, output[:3000]
    assert_gone(int(match.group(2)))

    # The store the demo left behind: its tokens (read with the generated key) were never printed.
    kwargs = json.loads(exported(workdir / "env.sh", "AIRFLOW__SECRETS__BACKEND_KWARGS"))
    store = open_store(kwargs["store"], kwargs["key"])
    try:
        tokens = [
            str(value)
            for conn_id in ("dropbox_default", "box_default", "box_jwt")
            if (record := store.read(conn_id)) is not None
            for value in (record.payload.get("access_token"), record.payload.get("refresh_token"))
            if value
        ]
    finally:
        store.close()
    assert len(tokens) == 5  # two OAuth grants with refresh tokens, one service-account access token
    assert not any(token in output for token in tokens)
    assert kwargs["key"] not in output


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_sigterm_stops_the_demo_and_its_emulator(tmp_path: Path) -> None:
    process = demo_process(tmp_path / "demo")
    assert process.stdout is not None
    lines: list[str] = []
    pid = None
    for line in process.stdout:
        lines.append(line)
        if match := PID_LINE.search(line):
            pid = int(match.group(2))
            break
    assert pid is not None, "".join(lines)
    os.kill(pid, 0)  # the emulator runs
    process.send_signal(signal.SIGTERM)
    rest, _ = process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGTERM, "".join(lines) + rest
    assert "stopped by a signal" in rest
    assert_gone(pid)


@pytest.mark.slow
@pytest.mark.airflow
@pytest.mark.timeout(600)
def test_demo_ui_serves_the_connections_with_a_live_test_button(tmp_path: Path) -> None:
    """``make demo UI=1``: the api-server answers, and the connections' Test works (off by default)."""
    import httpx

    workdir = tmp_path / "demo"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    process = subprocess.Popen(
        [sys.executable, "-m", "demo", "--ui", "--workdir", str(workdir)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    lines: list[str] = []
    url = emulator = None
    try:
        for line in process.stdout:
            lines.append(line)
            if match := re.search(r"URL:\s+(http://127\.0\.0\.1:\d+)", line):
                url = match.group(1)
            if match := re.search(r"emulator still at (http://127\.0\.0\.1:\d+)", line):
                emulator = match.group(1)
                break
        assert url and emulator, "".join(lines)[-6000:]
        assert "Test button: enabled" in "".join(lines)
        body = {
            "connection_id": "box_jwt_probe",
            "conn_type": "box_oauth",
            "host": emulator,
            "extra": json.dumps(
                {
                    "auth_scheme": "jwt",
                    "jwt_cert": str(workdir / "emulator" / "box_jwt_config.json"),
                    "jwt_cert_type": "JSONFILE",
                }
            ),
        }
        answer = httpx.post(f"{url}/api/v2/connections/test", json=body, timeout=60)
        assert answer.status_code == 200, answer.text  # 403 "Testing connections is disabled" when off
        assert answer.json()["status"] is True, answer.text
        assert "Connected to Box as" in answer.json()["message"]
    finally:
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=60)
    assert "stopping the api-server and the emulator" in rest, "".join(lines)[-3000:] + rest
