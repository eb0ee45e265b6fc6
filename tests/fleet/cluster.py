"""The fleet: a real multi-worker Airflow (CeleryExecutor) on this machine, started and stopped by PID.

Components, each on free loopback ports with an isolated home under the work directory: a fresh PostgreSQL
database for the metastore and another for the token store (the machine's server), a free logical database of
the machine's Redis as the Celery broker, the emulator for Dropbox and Box, the api-server (``[api] workers =
1``), scheduler, dag-processor, triggerer and two Celery workers, each with its own queue, hostname, TMPDIR
and working folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from cryptography.fernet import Fernet

from demo.processes import ProcessSupervisor
from dropbox_box_provider.emulator import seed
from dropbox_box_provider.emulator.client import EmulatorClient
from tests.fixtures.databases import admin_execute, database_url
from tests.fixtures.emulator import RunningEmulator
from tests.fixtures.environment import free_port
from tests.fleet.hostname import HOSTNAME_ENV
from tests.fleet.work import BOX_CONN, DROPBOX_CONN
from tests.helpers.box import box_oauth_tokens
from tests.helpers.dropbox import dropbox_tokens

REPO = Path(__file__).resolve().parents[2]
DAGS_FOLDER = Path(__file__).resolve().parent / "dags"
EXAMPLE_SYNC_DAG = Path(__file__).resolve().parents[2] / "dags_examples" / "dropbox_to_box_sync.py"
BACKEND_PATH = "dropbox_box_provider.secrets.token_store.TokenStoreBackend"
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
CONCURRENCY = 4
HEARTBEAT_TIMEOUT = 20
START_TIMEOUT = 180.0
FLEET_DAGS = ("fleet_refresh_economy", "fleet_worker_dies", "fleet_handoff", "dropbox_to_box_sync")
# Claims a Redis logical database only if it is empty, atomically (other runs may be choosing at once).
_CLAIM_SCRIPT = (
    "if redis.call('DBSIZE') == 0 then redis.call('SET', KEYS[1], ARGV[1], 'EX', 7200) return 1 end return 0"
)
_CLAIM_KEY = "dropbox_box_fleet:claim"


class FleetError(RuntimeError):
    """The fleet could not be started or driven (not a scenario's assertion)."""


@dataclass(frozen=True)
class Worker:
    """One Celery worker: its queue, Celery hostname, the hostname tasks record, and its own folder."""

    name: str
    root: Path

    @property
    def queue(self) -> str:
        return self.name

    @property
    def celery_hostname(self) -> str:
        return f"{self.name}@fleet"

    @property
    def hostname(self) -> str:
        """What ``task_instance.hostname`` shows for tasks this worker ran (``tests.fleet.hostname``)."""
        return f"{self.name}.fleet"

    @property
    def log(self) -> Path:
        return self.root / "worker.log"


@dataclass(frozen=True)
class TaskTry:
    """One try of a task instance, from ``task_instance`` or ``task_instance_history``."""

    task_id: str
    map_index: int
    try_number: int
    state: str | None
    hostname: str | None
    queue: str | None
    start: float | None
    end: float | None

    @property
    def key(self) -> tuple[str, int]:
        return (self.task_id, self.map_index)


@dataclass
class Fleet:
    """Paths, keys, names of the databases and the running processes of one fleet run."""

    root: Path
    supervisor: ProcessSupervisor
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    fernet_key: str = field(default_factory=lambda: Fernet.generate_key().decode(), repr=False)
    store_key: str = field(default_factory=lambda: Fernet.generate_key().decode(), repr=False)
    api_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)
    api_port: int = field(default_factory=free_port)
    redis_db: int | None = None
    databases: list[str] = field(default_factory=list)
    connections: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)
    emulator: RunningEmulator | None = None
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _api_token: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.workers = {name: Worker(name, self.root / name) for name in ("worker_a", "worker_b")}

    # -- names -------------------------------------------------------------------------------------

    @property
    def airflow_home(self) -> Path:
        return self.root / "airflow"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def metastore_db(self) -> str:
        return f"fleet_{self.tag}"

    @property
    def token_db(self) -> str:
        return f"fleet_{self.tag}_tokens"

    @property
    def metastore_url(self) -> str:
        return database_url(self.metastore_db)

    @property
    def store_url(self) -> str:
        return database_url(self.token_db)

    @property
    def broker_url(self) -> str:
        return f"redis://{REDIS_HOST}:{REDIS_PORT}/{self.redis_db}"

    @property
    def dags_folder(self) -> Path:
        return self.airflow_home / "dags"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    # -- shared resources --------------------------------------------------------------------------

    def prepare(self) -> None:
        """Fresh work directory, a claimed Redis database, the two PostgreSQL databases."""
        if self.root.exists():
            shutil.rmtree(self.root)
        for path in (self.root, self.airflow_home, self.logs, *(w.root for w in self.workers.values())):
            path.mkdir(parents=True, exist_ok=True, mode=0o700)
        for worker in self.workers.values():
            (worker.root / "tmp").mkdir(mode=0o700, exist_ok=True)
        # The fleet's own DAGs plus the example DAG exactly as shipped, and the policy that places it.
        shutil.copytree(DAGS_FOLDER, self.dags_folder, ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy2(EXAMPLE_SYNC_DAG, self.dags_folder / EXAMPLE_SYNC_DAG.name)
        (self.airflow_home / "config").mkdir(mode=0o700, exist_ok=True)
        (self.airflow_home / "config" / "airflow_local_settings.py").write_text(
            "from tests.fleet.policy import task_policy  # noqa: F401\n"
        )
        self.redis_db = claim_redis_database(self.tag)
        for name in (self.metastore_db, self.token_db):
            admin_execute(f'CREATE DATABASE "{name}"')
            self.databases.append(name)

    def release(self) -> None:
        """Drop the databases and empty the claimed Redis database (after every process has stopped)."""
        from dropbox_box_provider.store.factory import forget_open_stores

        forget_open_stores()
        while self.databases:
            name = self.databases.pop()
            try:
                admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            except Exception as exc:
                print(f"      could not drop database {name}: {exc}", file=sys.stderr)
        if self.redis_db is not None:
            release_redis_database(self.redis_db, self.tag)
            self.redis_db = None

    # -- environment -------------------------------------------------------------------------------

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment of every Airflow process: CeleryExecutor over Redis, PostgreSQL metastore, the
        token-store secrets backend on the PostgreSQL token database, the connections as AIRFLOW_CONN_*."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        home = self.airflow_home
        env.update(
            {
                "AIRFLOW_HOME": str(home),
                "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                # The shipped example DAG is deployed as is (paused at creation by default elsewhere).
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
                "AIRFLOW__CORE__FERNET_KEY": self.fernet_key,
                "AIRFLOW__CORE__PARALLELISM": "32",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__CORE__HOSTNAME_CALLABLE": "tests.fleet.hostname.worker_hostname",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.metastore_url,
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": self.metastore_url,
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.api_port),
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__API__BASE_URL": self.api_url,
                "AIRFLOW__API__SECRET_KEY": self.api_secret,
                "AIRFLOW__API_AUTH__JWT_SECRET": self.api_secret,
                "AIRFLOW__CELERY__BROKER_URL": self.broker_url,
                "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + self.metastore_url,
                "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(CONCURRENCY),
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT),
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
                "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "300",
                "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
                "AIRFLOW__SECRETS__BACKEND": BACKEND_PATH,
                "AIRFLOW__SECRETS__BACKEND_KWARGS": json.dumps(
                    {"store": self.store_url, "key": self.store_key}
                ),
                "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p),
                "PYTHONUNBUFFERED": "1",
                "PYTHONWARNINGS": "ignore",
                "NO_COLOR": "1",
            }
        )
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        for conn_id, definition in self.connections.items():
            env[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(definition)
        env.update(extra or {})
        return env

    def worker_env(self, worker: Worker) -> dict[str, str]:
        """A worker's environment: its own hostname, TMPDIR and task-log folder."""
        return self.env(
            {
                HOSTNAME_ENV: worker.hostname,
                "TMPDIR": str(worker.root / "tmp"),
                "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(worker.root / "logs"),
            }
        )

    # -- processes ---------------------------------------------------------------------------------

    def start_emulator(self) -> RunningEmulator:
        """The emulator (``--port 0 --seed demo``), ready once it prints its URL."""
        data = self.root / "emulator"
        data.mkdir(mode=0o700, exist_ok=True)
        argv = [
            sys.executable, "-m", "dropbox_box_provider.emulator", "--host", "127.0.0.1", "--port", "0",
            "--seed", "demo", "--data-dir", str(data),
        ]  # fmt: skip
        log = self.logs / "emulator.log"
        process = self._start("emulator", argv, self.env(), log, self.root)
        line = wait_for_text(log, "listening on ", process, 60.0)
        url = line.split("listening on ", 1)[1].strip()
        self.emulator = RunningEmulator(url=url, client=EmulatorClient(url), data_dir=data, pid=process.pid)
        return self.emulator

    def define_connections(self) -> None:
        """Authorize the demo apps once (the emulator's consent, the real code exchange) and define the two
        connections as a user would on every machine: refresh only, seeded refresh token, margin 0."""
        assert self.emulator is not None
        box = box_oauth_tokens(self.emulator)
        dropbox = dropbox_tokens(self.emulator)
        common = {"host": self.emulator.url}
        self.connections = {
            BOX_CONN: {
                "conn_type": "box_oauth",
                "login": seed.DEMO_BOX_CLIENT_ID,
                "password": seed.DEMO_BOX_CLIENT_SECRET,
                "extra": {
                    "initiate_oauth": "REFRESH",
                    "refresh_token": box.refresh_token,
                    "refresh_margin": 0,
                },
                **common,
            },
            DROPBOX_CONN: {
                "conn_type": "dropbox",
                "login": seed.DEMO_DROPBOX_CLIENT_ID,
                "password": seed.DEMO_DROPBOX_CLIENT_SECRET,
                "extra": {
                    "initiate_oauth": "REFRESH",
                    "refresh_token": dropbox.refresh_token,
                    "refresh_margin": 0,
                },
                **common,
            },
        }

    def migrate(self) -> None:
        """``airflow db migrate`` into the fresh PostgreSQL metastore."""
        self.run("airflow-db-migrate", ["airflow", "db", "migrate"], timeout=400)

    def start_airflow(self) -> None:
        """api-server, scheduler, dag-processor, triggerer and the two workers; returns once all are ready."""
        home = self.airflow_home
        env = self.env()
        api = self._start("api-server", ["airflow", "api-server"], env, self.logs / "api-server.log", home)
        for name, argv in (
            ("scheduler", ["airflow", "scheduler"]),
            ("dag-processor", ["airflow", "dag-processor"]),
            ("triggerer", ["airflow", "triggerer", "--skip-serve-logs"]),
        ):
            self._start(name, argv, env, self.logs / f"{name}.log", home)
        for worker in self.workers.values():
            argv = [
                "airflow", "celery", "worker", "--queues", worker.queue, "--concurrency", str(CONCURRENCY),
                "--celery-hostname", worker.celery_hostname, "--skip-serve-logs",
            ]  # fmt: skip
            self._start(worker.name, argv, self.worker_env(worker), worker.log, worker.root)
        self._wait_api(api)
        for worker in self.workers.values():
            wait_for_text(
                worker.log, f"{worker.celery_hostname} ready", self.processes[worker.name], START_TIMEOUT
            )
        self.wait_for_dags(FLEET_DAGS)

    def _start(
        self, name: str, argv: list[str], env: Mapping[str, str], log: Path, cwd: Path
    ) -> subprocess.Popen[bytes]:
        process = self.supervisor.start(name, argv, env=env, log_path=log, cwd=cwd)
        self.processes[name] = process
        return process

    def _wait_api(self, process: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                if httpx.get(f"{self.api_url}/api/v2/monitor/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise FleetError(f"the api-server did not answer within {START_TIMEOUT:g} s")

    def check_alive(self, skip: Iterable[str] = ()) -> None:
        """FleetError naming any Airflow process that exited (except those in ``skip``)."""
        for name, process in self.processes.items():
            if name not in skip and process.poll() is not None:
                log = self.workers[name].log if name in self.workers else self.logs / f"{name}.log"
                raise FleetError(f"{name} exited {process.returncode}; its log ({log}):\n{tail(log)}")

    def run(self, name: str, argv: list[str], timeout: float, env: Mapping[str, str] | None = None) -> str:
        """Run a command to completion under the supervisor; its output, or FleetError with its log."""
        log = self.logs / f"{name}.log"
        status = self.supervisor.run(
            name, argv, env=env or self.env(), log_path=log, cwd=self.airflow_home, timeout=timeout
        )
        if status != 0:
            raise FleetError(f"`{' '.join(argv[:4])}` exited {status}; its log ({log}):\n{tail(log)}")
        return log.read_text(errors="replace")

    def kill_worker(self, worker: Worker) -> list[int]:
        """SIGKILL the worker and every process below it (pool children, task supervisors, tasks), by PID."""
        process = self.processes[worker.name]
        pids = [process.pid, *descendants(process.pid)]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        process.wait(timeout=30)
        return pids

    def stop_serving_queue(self, worker: Worker, queue: str) -> None:
        """``airflow celery remove-queue``: ``worker`` no longer consumes ``queue``."""
        self.run(
            f"remove-queue-{queue}-{worker.name}",
            [
                "airflow",
                "celery",
                "remove-queue",
                "--queues",
                queue,
                "--celery-hostname",
                worker.celery_hostname,
            ],
            timeout=120,
        )

    def serve_queue(self, worker: Worker, queue: str) -> None:
        """``airflow celery add-queue``: ``worker`` consumes ``queue`` too (failover of a lost worker)."""
        self.run(
            f"add-queue-{queue}-{worker.name}",
            [
                "airflow",
                "celery",
                "add-queue",
                "--queues",
                queue,
                "--celery-hostname",
                worker.celery_hostname,
            ],
            timeout=120,
        )

    # -- the metastore and the REST API ------------------------------------------------------------

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Rows of ``sql`` on the metastore (read only)."""
        import psycopg

        with psycopg.connect(self.metastore_url.replace("+psycopg", ""), connect_timeout=10) as conn:
            return list(conn.execute(sql, params).fetchall())

    def wait_for_dags(self, dag_ids: Iterable[str], timeout: float = START_TIMEOUT) -> None:
        """Until the dag-processor has serialized every DAG in ``dag_ids``."""
        wanted = set(dag_ids)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            rows = self.query("SELECT dag_id FROM serialized_dag WHERE dag_id = ANY(%s)", (list(wanted),))
            if {row[0] for row in rows} >= wanted:
                return
            time.sleep(1)
        raise FleetError(f"the dag-processor did not serialize {sorted(wanted)} within {timeout:g} s")

    def trigger(self, dag_id: str, conf: Mapping[str, Any]) -> str:
        """Trigger a run through the REST API, as a user would; its run id."""
        if self._api_token is None:
            answer = httpx.get(f"{self.api_url}/auth/token", timeout=30)
            answer.raise_for_status()
            self._api_token = str(answer.json()["access_token"])
        run_id = f"fleet__{dag_id}__{uuid.uuid4().hex[:8]}"
        answer = httpx.post(
            f"{self.api_url}/api/v2/dags/{dag_id}/dagRuns",
            json={"dag_run_id": run_id, "logical_date": None, "conf": dict(conf)},
            headers={"Authorization": f"Bearer {self._api_token}"},
            timeout=60,
        )
        if answer.status_code >= 300:
            raise FleetError(f"triggering {dag_id} answered {answer.status_code}: {answer.text[:500]}")
        return run_id

    def run_state(self, dag_id: str, run_id: str) -> str | None:
        rows = self.query("SELECT state FROM dag_run WHERE dag_id = %s AND run_id = %s", (dag_id, run_id))
        return str(rows[0][0]) if rows else None

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float, skip: Iterable[str] = ()) -> str:
        """Until the run is finished; its final state (FleetError after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive(skip)
            state = self.run_state(dag_id, run_id)
            if state in ("success", "failed"):
                return state
            time.sleep(1)
        raise FleetError(
            f"{dag_id} run {run_id} did not finish within {timeout:g} s: {self.describe(run_id)}"
        )

    def tries(self, run_id: str) -> list[TaskTry]:
        """Every try of every task instance of the run: earlier tries from the history, then the current."""
        columns = (
            "task_id, map_index, try_number, state, hostname, queue, "
            "EXTRACT(EPOCH FROM start_date), EXTRACT(EPOCH FROM end_date)"
        )
        rows = self.query(f"SELECT {columns} FROM task_instance_history WHERE run_id = %s", (run_id,))
        rows += self.query(f"SELECT {columns} FROM task_instance WHERE run_id = %s", (run_id,))
        return [
            TaskTry(
                str(r[0]), int(r[1]), int(r[2]), r[3], r[4], r[5],
                float(r[6]) if r[6] is not None else None, float(r[7]) if r[7] is not None else None,
            )
            for r in rows
        ]  # fmt: skip

    def current(self, run_id: str) -> list[TaskTry]:
        """The current try of each task instance of the run."""
        latest: dict[tuple[str, int], TaskTry] = {}
        for attempt in self.tries(run_id):
            if attempt.key not in latest or attempt.try_number >= latest[attempt.key].try_number:
                latest[attempt.key] = attempt
        return sorted(latest.values(), key=lambda t: t.key)

    def describe(self, run_id: str) -> str:
        """The run's task instances in one line: ``task[i] state@host (try n)``."""
        return ", ".join(
            f"{t.task_id}[{t.map_index}] {t.state}@{t.hostname} (try {t.try_number})"
            for t in self.current(run_id)
        )

    def task_log_tail(self, run_id: str, chars: int = 3000) -> str:
        """The end of the task logs the workers wrote for ``run_id`` (to explain a failure)."""
        texts = []
        for worker in self.workers.values():
            for path in sorted((worker.root / "logs").rglob("*.log")):
                if run_id in str(path):
                    texts.append(f"--- {path}\n{tail(path, chars)}")
        return "\n".join(texts[-6:])


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (from /proc), children first."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(entry.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def claim_redis_database(tag: str) -> int:
    """The first empty logical database of the machine's Redis (1-15), claimed for this run."""
    import redis

    for number in range(1, 16):
        client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=number, socket_timeout=5)
        try:
            if client.eval(_CLAIM_SCRIPT, 1, _CLAIM_KEY, tag) == 1:
                return number
        finally:
            client.close()
    raise FleetError("every Redis logical database 1-15 holds keys: no free one for the Celery broker")


def release_redis_database(number: int, tag: str) -> None:
    """Empty the claimed database, if the claim is still this run's."""
    import redis

    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=number, socket_timeout=5)
    try:
        claim = client.get(_CLAIM_KEY)
        if claim is None or claim.decode() == tag:
            client.flushdb()
    finally:
        client.close()


def wait_for_text(log: Path, text: str, process: subprocess.Popen[bytes], timeout: float) -> str:
    """The first line of ``log`` containing ``text``; FleetError if the process ends or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists():
            for line in log.read_text(errors="replace").splitlines():
                if text in line:
                    return line
        if process.poll() is not None:
            raise FleetError(f"{log.stem} exited {process.returncode} before {text!r}:\n{tail(log)}")
        time.sleep(0.25)
    raise FleetError(f"{log} shows no {text!r} after {timeout:g} s:\n{tail(log)}")


def tail(path: Path, chars: int = 3000) -> str:
    """The end of a log file ("" if it does not exist)."""
    return path.read_text(errors="replace")[-chars:] if path.exists() else ""
