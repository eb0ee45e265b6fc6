"""End to end in real Airflow: scheduler, dag-processor, triggerer and api-server started here (isolated
AIRFLOW_HOME, sqlite, free ports, stopped by PID) run the example DAGs of
``dags_examples/inbox_change_feeds.py``. Once both watchers run and have stored their feed position, a file
put into the emulator's Dropbox (and Box) starts a DAG run within 10 s, and the run reads that file."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from dropbox_box_provider.emulator import seed
from tests.fixtures.airflow import AirflowEnv, ApiServer, start_api_server, stop_api_server
from tests.fixtures.emulator import RunningEmulator
from tests.fixtures.environment import free_port
from tests.helpers.box import box_oauth_tokens
from tests.helpers.dropbox import dropbox_tokens

pytestmark = [pytest.mark.airflow, pytest.mark.slow, pytest.mark.timeout(420)]

EXAMPLE = Path(__file__).parents[2] / "dags_examples" / "inbox_change_feeds.py"
START_TIMEOUT = 180.0
T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, alive: Callable[[], None]) -> T:
    """Poll ``probe`` until it returns something, checking the processes stay alive."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive()
        found = probe()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def tails(running: Deployment) -> str:
    """The end of every process log, for a failure message."""
    return "\n".join(
        f"--- {name} ---\n{running.log(name).read_text(errors='replace')[-3000:]}"
        for name in running.processes
    )


class Deployment:
    """The Airflow processes of one test, each in its own session so it can be stopped by its PID."""

    def __init__(self, airflow: AirflowEnv) -> None:
        self.airflow = airflow
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.api: ApiServer | None = None

    def log(self, name: str) -> Path:
        return self.airflow.home / f"{name}.log"

    def start(self, name: str, *args: str) -> None:
        with self.log(name).open("wb") as log:
            self.processes[name] = subprocess.Popen(
                [sys.executable, "-m", "airflow", *args],
                env=self.airflow.env,
                cwd=self.airflow.home,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                tail = self.log(name).read_text(errors="replace")[-4000:]
                raise AssertionError(f"{name} exited {process.returncode}:\n{tail}")

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.airflow.db_path, timeout=30) as conn:
            return conn.execute(sql, params).fetchall()

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(os.getpgid(process.pid), signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(os.getpgid(process.pid), signal.SIGKILL)
                process.wait(timeout=10)
        if self.api is not None:
            stop_api_server(self.api)


def connection(service: str, emulator: RunningEmulator, refresh_token: str | None, store: str) -> str:
    login, secret = (
        (seed.DEMO_DROPBOX_CLIENT_ID, seed.DEMO_DROPBOX_CLIENT_SECRET)
        if service == "dropbox"
        else (seed.DEMO_BOX_CLIENT_ID, seed.DEMO_BOX_CLIENT_SECRET)
    )
    extra = {"initiate_oauth": "REFRESH", "refresh_token": refresh_token, "oauth_settings_location": store}
    if service == "box":
        extra["auth_scheme"] = "oauth"
    return json.dumps(
        {"conn_type": service, "host": emulator.url, "login": login, "password": secret, "extra": extra}
    )


@pytest.fixture
def deployment(
    airflow_env: AirflowEnv, fresh_emulator: RunningEmulator, tmp_path: Path
) -> Iterator[tuple[Deployment, dict[str, str]]]:
    dbx, box = dropbox_tokens(fresh_emulator), box_oauth_tokens(fresh_emulator)
    store = f"sqlite:///{tmp_path / 'tokens.db'}"
    port = free_port()
    airflow_env.env.update(
        {
            "AIRFLOW_CONN_DBX_E2E": connection("dropbox", fresh_emulator, dbx.refresh_token, store),
            "AIRFLOW_CONN_BOX_E2E": connection("box", fresh_emulator, box.refresh_token, store),
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        }
    )
    example = EXAMPLE.read_text()
    example = example.replace('DROPBOX_CONN_ID = "dropbox_default"', 'DROPBOX_CONN_ID = "dbx_e2e"')
    example = example.replace('BOX_CONN_ID = "box_default"', 'BOX_CONN_ID = "box_e2e"')
    (airflow_env.home / "dags" / "inbox_change_feeds.py").write_text(example)
    running = Deployment(airflow_env)
    try:
        running.api = start_api_server_on(airflow_env, port)
        running.start("scheduler", "scheduler")
        running.start("dag-processor", "dag-processor")
        running.start("triggerer", "triggerer", "--skip-serve-logs")
        yield running, {"dropbox": str(dbx.access_token), "box": str(box.access_token)}
    finally:
        running.stop()


def start_api_server_on(airflow: AirflowEnv, port: int) -> ApiServer:
    """``start_api_server`` picks its own port; the execution API URL must be known first, so pin it."""
    import tests.fixtures.airflow as fixtures

    original = fixtures.free_port
    fixtures.free_port = lambda: port  # type: ignore[assignment]
    try:
        return start_api_server(airflow)
    finally:
        fixtures.free_port = original  # type: ignore[assignment]


def put(service: str, emulator: RunningEmulator, token: str, name: str, data: bytes) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    if service == "dropbox":
        arg = json.dumps({"path": f"/inbox/{name}", "mode": "add"})
        response = httpx.post(
            f"{emulator.url}/content.dropboxapi.com/2/files/upload",
            content=data,
            headers={**headers, "Content-Type": "application/octet-stream", "Dropbox-API-Arg": arg},
        )
        assert response.status_code == 200, response.text
        return
    folders = httpx.get(f"{emulator.url}/api.box.com/2.0/folders/0/items", headers=headers).json()["entries"]
    inbox = next(e["id"] for e in folders if e["name"] == "inbox")
    attributes = json.dumps({"name": name, "parent": {"id": inbox}})
    response = httpx.post(
        f"{emulator.url}/upload.box.com/api/2.0/files/content",
        headers=headers,
        files={"attributes": (None, attributes), "file": (name, data)},
    )
    assert response.status_code == 201, response.text


def _wait_for_watchers(running: Deployment) -> None:
    """Until both watchers run in the triggerer and have stored their first feed position ("now")."""
    wait_for(
        "both watchers to store their feed position",
        lambda: (
            len(running.query("SELECT key FROM asset_state_store WHERE key LIKE 'dropbox_box_provider.%'"))
            >= 2
        ),
        START_TIMEOUT,
        running.alive,
    )


def test_a_file_put_into_the_emulator_starts_a_dag_run_that_reads_it(
    deployment: tuple[Deployment, dict[str, str]], fresh_emulator: RunningEmulator
) -> None:
    running, tokens = deployment
    headers = {"Authorization": f"Bearer {tokens['box']}"}
    httpx.post(
        f"{fresh_emulator.url}/api.box.com/2.0/folders",
        headers=headers,
        json={"name": "inbox", "parent": {"id": "0"}},
    )
    try:
        _wait_for_watchers(running)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{tails(running)}") from None
    log = running.log("triggerer").read_text(errors="replace")
    assert log.count(" starting") >= 2, "both watchers run in the triggerer"
    for service, dag_id in (("dropbox", "dropbox_inbox_new_csv"), ("box", "box_inbox_new_csv")):
        name = f"{service}-report.csv"
        content = f"id,value\n1,{service}\n".encode()
        put(service, fresh_emulator, tokens[service], name, content)
        uploaded = datetime.now(UTC)
        started = wait_for(
            f"a run of {dag_id}",
            lambda dag_id=dag_id: running.query(
                "SELECT start_date FROM dag_run WHERE dag_id = ? AND start_date IS NOT NULL", dag_id
            ),
            30,
            running.alive,
        )
        start = datetime.fromisoformat(str(started[0][0])).replace(tzinfo=UTC)
        latency = (start - uploaded).total_seconds()
        print(f"{service}: upload -> DAG run start {latency:.2f} s")
        assert latency <= 10, (start, uploaded)
        values = wait_for(
            f"{dag_id}'s task result",
            lambda dag_id=dag_id: running.query(
                "SELECT value FROM xcom WHERE dag_id = ? AND key = 'return_value'", dag_id
            ),
            60,
            running.alive,
        )
        summary = json.loads(values[0][0])
        assert [(s["path"], s["rows"], s["text"]) for s in summary] == [
            (f"/inbox/{name}", 2, content.decode())
        ]
