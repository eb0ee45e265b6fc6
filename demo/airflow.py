"""The demo's Airflow: one ``db migrate``, ``airflow dags test`` runs and their outcome read back from the
sqlite metastore (cheaper than another Airflow process), and the optional api-server."""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import time
from dataclasses import dataclass
from typing import Any

import httpx

from demo.console import StepFailed, log_tail
from demo.processes import ProcessSupervisor
from demo.workspace import Workspace, script

MIGRATE_TIMEOUT = 300.0
DAG_TEST_TIMEOUT = 300.0
API_SERVER_START_TIMEOUT = 120.0


@dataclass(frozen=True)
class DagRunResult:
    """A finished DAG run: its state and each task instance's state (mapped ones as ``task[i]``)."""

    dag_id: str
    state: str
    tasks: list[tuple[str, str]]

    def describe(self) -> str:
        return ", ".join(f"{task} {state}" for task, state in self.tasks)


def start_migrate(supervisor: ProcessSupervisor, workspace: Workspace) -> subprocess.Popen[bytes]:
    """Start ``airflow db migrate`` into the fresh sqlite metastore (in the background: it takes a while and
    nothing before the first DAG run needs the metastore)."""
    return supervisor.start(
        "airflow db migrate",
        [script("airflow"), "db", "migrate"],
        env=workspace.env(),
        log_path=workspace.logs / "airflow-db-migrate.log",
        cwd=workspace.airflow_home,
    )


def finish_migrate(
    supervisor: ProcessSupervisor, workspace: Workspace, process: subprocess.Popen[bytes]
) -> None:
    """Wait for ``airflow db migrate``; StepFailed with its log when it failed."""
    log = workspace.logs / "airflow-db-migrate.log"
    try:
        status = process.wait(timeout=MIGRATE_TIMEOUT)
    except subprocess.TimeoutExpired:
        supervisor.stop(process)
        status = -1
    if status != 0:
        raise StepFailed(f"`airflow db migrate` exited {status}; its log ({log}):\n{log_tail(log)}")


def dags_test(
    supervisor: ProcessSupervisor, workspace: Workspace, dag_id: str, conf: dict[str, Any]
) -> DagRunResult:
    """``airflow dags test DAG_ID -c CONF``: one run in this process, triggers included; fails unless the
    run succeeded."""
    log = workspace.logs / f"dags-test-{dag_id}.log"
    argv = [script("airflow"), "dags", "test", dag_id, "-c", json.dumps(conf)]
    status = supervisor.run(
        f"airflow dags test {dag_id}",
        argv,
        env=workspace.env(),
        log_path=log,
        cwd=workspace.airflow_home,
        timeout=DAG_TEST_TIMEOUT,
    )
    result = last_run(workspace, dag_id)
    if status != 0 or result is None or result.state != "success":
        state = result.describe() if result else "no run recorded"
        raise StepFailed(
            f"`airflow dags test {dag_id}` exited {status} ({state}); its log ({log}):\n{log_tail(log, 40)}"
        )
    return result


def last_run(workspace: Workspace, dag_id: str) -> DagRunResult | None:
    """The newest run of ``dag_id`` in the metastore, with its task states."""
    with sqlite3.connect(workspace.metastore) as db:
        row = db.execute(
            "SELECT run_id, state FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1", (dag_id,)
        ).fetchone()
        if row is None:
            return None
        tasks = db.execute(
            "SELECT task_id, map_index, state FROM task_instance WHERE dag_id = ? AND run_id = ? "
            "ORDER BY start_date IS NULL, start_date, task_id, map_index",
            (dag_id, row[0]),
        ).fetchall()
    return DagRunResult(
        dag_id,
        str(row[1]),
        [(task if index < 0 else f"{task}[{index}]", str(state)) for task, index, state in tasks],
    )


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


#: The UI's settings beyond the demo's: the connections' Test button is live (Airflow disables it by default).
UI_SETTINGS = {"AIRFLOW__CORE__TEST_CONNECTION": "Enabled"}


def start_api_server(
    supervisor: ProcessSupervisor, workspace: Workspace
) -> tuple[str, subprocess.Popen[bytes]]:
    """``airflow api-server`` on a free 127.0.0.1 port; its URL and process once its health check answers."""
    port = free_port()
    log = workspace.logs / "airflow-api-server.log"
    argv = [script("airflow"), "api-server", "--host", "127.0.0.1", "--port", str(port)]
    env = {**workspace.env(), **UI_SETTINGS}
    process = supervisor.start("airflow api-server", argv, env=env, log_path=log, cwd=workspace.airflow_home)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + API_SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StepFailed(
                f"airflow api-server exited {process.returncode}; its log ({log}):\n{log_tail(log)}"
            )
        try:
            if httpx.get(f"{url}/api/v2/monitor/health", timeout=2).status_code == 200:
                return url, process
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise StepFailed(f"airflow api-server not ready after {API_SERVER_START_TIMEOUT:g} s:\n{log_tail(log)}")


def import_connections(supervisor: ProcessSupervisor, workspace: Workspace) -> None:
    """Copy the demo connections into the metastore so the UI lists them (env-var connections are not
    listed there); the token-store backend and AIRFLOW_CONN_* still win on every lookup."""
    path = workspace.root / "connections.json"
    path.write_text(
        json.dumps({k: {**v, "extra": json.dumps(v["extra"])} for k, v in workspace.connections.items()})
    )
    path.chmod(0o600)
    log = workspace.logs / "airflow-connections-import.log"
    status = supervisor.run(
        "airflow connections import",
        [script("airflow"), "connections", "import", str(path), "--overwrite"],
        env=workspace.env(),
        log_path=log,
        cwd=workspace.airflow_home,
        timeout=MIGRATE_TIMEOUT,
    )
    if status != 0:
        raise StepFailed(f"`airflow connections import` exited {status}:\n{log_tail(log)}")
