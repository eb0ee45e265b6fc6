"""Scenario ``watch_dagrun``: upload -> DAG-run start in a real Airflow, beside a poke sensor on that folder.

A scheduler, dag-processor, triggerer and api-server (LocalExecutor, sqlite, isolated AIRFLOW_HOME, free port,
stopped by PID) run two DAGs per service: one scheduled on an asset whose ``AssetWatcher`` is the service's
change trigger, and one whose only task is the file sensor (``poke_interval`` = ``watch_poke_interval``,
poke mode) waiting for the file named in its run's conf. Each of ``watch_uploads`` uploads lands at a random
moment after the sensor's run has started poking; the watcher figure is upload -> start of the DAG run the
watcher's asset event created, the sensor figure upload -> the sensor task's success (when work behind it
could start). Times come from Airflow's metastore and this machine's clock.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import connections
from bench.settings import Settings
from bench.watch import _figures
from demo.airflow import free_port
from demo.processes import ProcessSupervisor

FOLDER = "/bench-dagrun"
START_TIMEOUT = 300.0
SERVICES = ("dropbox", "box")

DAG_FILE = """
from airflow.sdk import DAG, Asset, AssetWatcher, task

from dropbox_box_provider.sensors.box import BoxFileSensor
from dropbox_box_provider.sensors.dropbox import DropboxFileSensor
from dropbox_box_provider.triggers.box_events import BoxEventTrigger
from dropbox_box_provider.triggers.dropbox_changes import DropboxChangeTrigger

for service, conn_id, trigger_class, sensor_class in (
    ("dropbox", "bench_dagrun_dropbox", DropboxChangeTrigger, DropboxFileSensor),
    ("box", "bench_dagrun_box", BoxEventTrigger, BoxFileSensor),
):
    asset = Asset(
        name=f"bench_{service}_inbox",
        uri=f"{service}://{conn_id}@FOLDER",
        watchers=[
            AssetWatcher(
                name=f"bench_{service}_csv",
                trigger=trigger_class(conn_id=conn_id, folder="FOLDER", pattern="*.csv"),
            )
        ],
    )
    with DAG(dag_id=f"bench_{service}_watch", schedule=[asset], catchup=False):

        @task
        def started() -> None:
            pass

        started()

    with DAG(dag_id=f"bench_{service}_poke", schedule=None, catchup=False, max_active_runs=16):
        sensor_class(
            task_id="wait",
            conn_id=conn_id,
            path="FOLDER/{{ dag_run.conf['name'] }}",
            poke_interval=POKE,
            timeout=3600,
            mode="poke",
            deferrable=False,
        )
"""


def _ts(value: Any) -> datetime:
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class Airflow:
    """The processes of one isolated Airflow installation, started and stopped by the demo's supervisor."""

    def __init__(self, home: Path, env: dict[str, str]) -> None:
        self.home, self.env = home, env
        self.supervisor = ProcessSupervisor()
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def cli(self, *args: str, timeout: float = 300) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "airflow", *args],
            env=self.env,
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"airflow {args[0]} exited {done.returncode}: {done.stderr[-2000:]}")
        return done.stdout

    def start(self, name: str, *args: str) -> None:
        self.processes[name] = self.supervisor.start(
            name,
            [sys.executable, "-m", "airflow", *args],
            env=self.env,
            log_path=self.home / f"{name}.log",
            cwd=self.home,
        )

    def alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                tail = (self.home / f"{name}.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{name} exited {process.returncode}:\n{tail}")

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.home / "airflow.db", timeout=30) as conn:
            return conn.execute(sql, params).fetchall()

    def wait(self, what: str, probe: Any, timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.alive()
            found = probe()
            if found:
                return found
            time.sleep(0.1)
        raise RuntimeError(f"timed out waiting for {what}")

    def stop(self) -> None:
        self.supervisor.stop_all()


def _deploy(settings: Settings, emulator: Any, workdir: Path) -> Airflow:
    home = workdir / "airflow-dagrun"
    (home / "dags").mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            "AIRFLOW__CORE__FERNET_KEY": connections.fernet_key(),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__API_AUTH__JWT_SECRET": "bench-dagrun-jwt-secret-0123456789abcdef",
            "AIRFLOW__API__SECRET_KEY": "bench-dagrun-jwt-secret-0123456789abcdef",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "PYTHONUNBUFFERED": "1",
        }
    )
    for service in SERVICES:
        conn_id = f"bench_dagrun_{service}"
        conn_json = connections.connection_json(service, emulator.url, f"sqlite:///{home / 'tokens.db'}")
        connections.set_connection(conn_id, conn_json)
        connections.store_grant(service, conn_id, conn_json, connections.raw_grant(service, emulator))
        env[f"AIRFLOW_CONN_{conn_id.upper()}"] = conn_json
    dag = DAG_FILE.replace("FOLDER", FOLDER).replace("POKE", repr(float(settings.watch_poke_interval)))
    (home / "dags" / "bench_dagrun.py").write_text(textwrap.dedent(dag))
    airflow = Airflow(home, env)
    airflow.cli("db", "migrate")
    airflow.start("api-server", "api-server", "--host", "127.0.0.1", "--port", str(port))
    airflow.start("scheduler", "scheduler")
    airflow.start("dag-processor", "dag-processor")
    airflow.start("triggerer", "triggerer", "--skip-serve-logs")
    return airflow


def _measure(airflow: Airflow, hooks: dict[str, Any], uploads: int, poke_interval: float) -> dict[str, Any]:
    watcher: dict[str, list[float]] = {s: [] for s in SERVICES}
    sensor: dict[str, list[float]] = {s: [] for s in SERVICES}
    for index in range(uploads):
        for service in SERVICES:
            name = f"up-{index:03}.csv"
            run_id = f"bench_{service}_{index:03}"
            airflow.cli(
                "dags", "trigger", f"bench_{service}_poke", "-r", run_id, "-c", json.dumps({"name": name})
            )
            airflow.wait(
                f"the sensor of {run_id} to poke",
                lambda run_id=run_id, service=service: airflow.query(
                    "SELECT 1 FROM task_instance WHERE dag_id = ? AND run_id = ? AND state = 'running'",
                    f"bench_{service}_poke",
                    run_id,
                ),
                START_TIMEOUT,
            )
            known = {
                r[0]
                for r in airflow.query(
                    "SELECT run_id FROM dag_run WHERE dag_id = ?", f"bench_{service}_watch"
                )
            }
            time.sleep(random.uniform(0.1, poke_interval))
            hooks[service].write_bytes(f"{FOLDER}/{name}", b"id\n1\n")
            uploaded = datetime.now(UTC)
            started = airflow.wait(
                f"a run of bench_{service}_watch",
                lambda service=service, known=known: [
                    r
                    for r in airflow.query(
                        "SELECT run_id, start_date FROM dag_run WHERE dag_id = ? AND start_date IS NOT NULL",
                        f"bench_{service}_watch",
                    )
                    if r[0] not in known
                ],
                120,
            )
            watcher[service].append((_ts(started[0][1]) - uploaded).total_seconds())
            ended = airflow.wait(
                f"the sensor of {run_id} to succeed",
                lambda run_id=run_id, service=service: airflow.query(
                    "SELECT end_date FROM task_instance "
                    "WHERE dag_id = ? AND run_id = ? AND state = 'success'",
                    f"bench_{service}_poke",
                    run_id,
                ),
                poke_interval * 2 + 120,
            )
            sensor[service].append((_ts(ended[0][0]) - uploaded).total_seconds())
    return {
        service: {
            "change_trigger_dag_run": _figures(watcher[service]),
            "poke_sensor_success": {**_figures(sensor[service]), "poke_interval_s": poke_interval},
        }
        for service in SERVICES
    }


def run(settings: Settings, *, emulator: Any, workdir: Path) -> dict[str, Any]:
    """Deploy Airflow, wait until both watchers stored their feed position, then time the uploads."""
    from dropbox_box_provider.hooks.box import BoxHook
    from dropbox_box_provider.hooks.dropbox import DropboxHook

    airflow = _deploy(settings, emulator, workdir)
    hooks: dict[str, Any] = {
        "dropbox": DropboxHook("bench_dagrun_dropbox"),
        "box": BoxHook("bench_dagrun_box"),
    }
    try:
        for hook in hooks.values():
            hook.mkdir(FOLDER)
        airflow.wait(
            "both watchers to store their feed position",
            lambda: (
                len(
                    airflow.query("SELECT key FROM asset_state_store WHERE key LIKE 'dropbox_box_provider.%'")
                )
                >= 2
            ),
            START_TIMEOUT,
        )
        figures = _measure(airflow, hooks, settings.watch_uploads, settings.watch_poke_interval)
    finally:
        airflow.stop()
        for hook in hooks.values():
            hook.close()
    return {"uploads": settings.watch_uploads, **figures}


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Per service: the watcher's DAG runs start within 10 s (p95) and sooner than the sensor succeeds."""
    out: list[dict[str, Any]] = []
    for service in SERVICES:
        runs, poke = result[service]["change_trigger_dag_run"], result[service]["poke_sensor_success"]
        out.append(
            {
                "target": f"watch_dagrun, {service}: upload -> DAG run start p95 ≤ 10 s, median below the "
                "poke sensor's",
                "measured": f"DAG run start {runs['median_s']} s (p95 {runs['p95_s']}), "
                f"sensor success {poke['median_s']} s (p95 {poke['p95_s']})",
                "met": runs["n"] == result["uploads"]
                and runs["p95_s"] is not None
                and runs["p95_s"] <= 10
                and poke["median_s"] is not None
                and runs["median_s"] < poke["median_s"],
            }
        )
    return out


def markdown(result: dict[str, Any] | None) -> list[str]:
    """The ``watch_dagrun`` section of latest.md."""
    if not result:
        return []
    lines = [
        "## 6b. Change feeds in Airflow: upload -> DAG run start",
        "",
        "Real scheduler, dag-processor, triggerer and api-server (LocalExecutor); the sensor figure is "
        "upload -> the poke sensor's success on the same file.",
        "",
        "| service | uploads | DAG run start median s | p95 s | sensor success median s | p95 s | "
        "poke interval s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for service in SERVICES:
        runs, poke = result[service]["change_trigger_dag_run"], result[service]["poke_sensor_success"]
        lines.append(
            f"| {service} | {runs['n']} | {runs['median_s']} | {runs['p95_s']} | {poke['median_s']} | "
            f"{poke['p95_s']} | {poke['poke_interval_s']:g} |"
        )
    return [*lines, ""]
