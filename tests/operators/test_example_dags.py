"""The example DAGs (and a deferral DAG) under real Airflow: isolated AIRFLOW_HOME, connections in
AIRFLOW_CONN_* variables pointing at the emulator, token state in the store of the configured
TokenStoreBackend, ``airflow dags test``."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dropbox_box_provider.auth.config import AuthConfig
from dropbox_box_provider.auth.manager import TokenManager
from dropbox_box_provider.auth.tokens import TokenSet
from dropbox_box_provider.emulator import seed
from dropbox_box_provider.store.base import TokenStore
from dropbox_box_provider.testing import EmulatedServices
from tests.fixtures.airflow import AirflowEnv
from tests.operators.conftest import (
    CALLBACK,
    Connections,
    box_connection,
    box_jwt_connection,
    box_tokens,
    dropbox_connection,
    dropbox_tokens,
    grants,
    meta_of,
)

pytestmark = [pytest.mark.airflow, pytest.mark.slow, pytest.mark.timeout(300)]

EXAMPLES = Path(__file__).parents[2] / "dags_examples"
TEST_DAGS = Path(__file__).parent / "dags"


def json_output(text: str) -> Any:
    """The JSON a ``-o json`` command printed (warnings may precede it on stdout)."""
    start = min(i for i in (text.find("\n["), text.find("\n{")) if i >= 0) + 1 if text[:1] not in "[{" else 0
    return json.loads(text[start:])


@dataclass
class Deployment:
    """An Airflow home whose secrets backend keeps token state in the testing kit's store."""

    airflow: AirflowEnv
    emulator: EmulatedServices

    @property
    def store(self) -> TokenStore:
        return self.emulator.token_store

    def connection(self, conn_id: str, definition: dict[str, Any]) -> str:
        self.airflow.env[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(definition)
        return conn_id

    def seed(self, conn_id: str, config: AuthConfig, tokens: TokenSet) -> None:
        """Tokens a person obtained a minute ago, saved as the CLI does."""
        TokenManager(self.store, clock=lambda: time.time() - 60).store_tokens(conn_id, config, tokens)

    def dags_test(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        args = ["dags", "test", dag_id]
        if conf is not None:
            args += ["-c", json.dumps(conf)]
        proc = self.airflow.run(*args, timeout=240)
        return proc.stdout + proc.stderr

    def last_run_state(self, dag_id: str) -> str:
        runs = json_output(self.airflow.run("dags", "list-runs", dag_id, "-o", "json").stdout)
        return str(runs[0]["state"])


@pytest.fixture
def deployment(airflow_env: AirflowEnv, emulated_services: EmulatedServices) -> Deployment:
    """Example DAGs run by real Airflow commands, with the kit's secrets backend configuration."""
    airflow_env.env["AIRFLOW__CORE__DAGS_FOLDER"] = str(EXAMPLES)
    airflow_env.env.update(emulated_services.environ())
    return Deployment(airflow_env, emulated_services)


def oauth_config(service: str, emulator: EmulatedServices, refresh_token: str | None) -> AuthConfig:
    demo = {
        "dropbox": (seed.DEMO_DROPBOX_CLIENT_ID, seed.DEMO_DROPBOX_CLIENT_SECRET),
        "box": (seed.DEMO_BOX_CLIENT_ID, seed.DEMO_BOX_CLIENT_SECRET),
    }[service]
    return AuthConfig(
        service=service,  # type: ignore[arg-type]
        client_id=demo[0],
        client_secret=demo[1],
        endpoint=emulator.url,
        callback_url=CALLBACK,
        initiate_oauth="REFRESH",
        refresh_token=refresh_token,
    )


def test_example_dags_import_cleanly(deployment: Deployment) -> None:
    deployment.airflow.run("dags", "reserialize", timeout=240)
    errors = json_output(deployment.airflow.run("dags", "list-import-errors", "-o", "json").stdout)
    assert errors == []
    listed = json_output(deployment.airflow.run("dags", "list", "-o", "json").stdout)
    assert {d["dag_id"] for d in listed} >= {
        "oauth_token_refresh",
        "dropbox_to_box_sync",
        "box_service_account_report",
        "object_storage_csv_summary",
        "dropbox_inbox_new_csv",
        "box_inbox_new_csv",
    }


def test_oauth_token_refresh_refreshes_every_listed_connection(deployment: Deployment) -> None:
    emu = deployment.emulator
    emu.client.configure(access_token_ttl=600)  # beyond the 5 min margin, inside the 30 min window
    dbx, box = dropbox_tokens(emu), box_tokens(emu)
    emu.client.configure(access_token_ttl=3600)
    for conn_id, service, tokens in (("dbx", "dropbox", dbx), ("box", "box", box)):
        factory = dropbox_connection if service == "dropbox" else box_connection
        deployment.connection(conn_id, factory(emu, tokens.refresh_token))
        deployment.seed(conn_id, oauth_config(service, emu, tokens.refresh_token), tokens)
    versions = {c: meta_of(deployment.store, c).version for c in ("dbx", "box")}  # type: ignore[union-attr]

    output = deployment.dags_test("oauth_token_refresh", {"conn_ids": ["dbx", "box"]})
    assert deployment.last_run_state("oauth_token_refresh") == "success", output[-4000:]
    assert grants(emu, "dropbox") == {"ok": 1} and grants(emu, "box") == {"ok": 1}
    for conn_id, before in versions.items():
        after = meta_of(deployment.store, conn_id)
        assert after is not None and after.version > before
        assert after.expires_at is not None and after.expires_at - time.time() > 3000
    rotated = deployment.store.read("box")
    assert rotated is not None and rotated.payload["refresh_token"] != box.refresh_token
    for secret in (dbx.refresh_token, rotated.payload["refresh_token"], rotated.payload["access_token"]):
        assert str(secret) not in output


def test_dropbox_to_box_sync_copies_new_files(
    deployment: Deployment, connections: Connections, tmp_path: Path
) -> None:
    from dropbox_box_provider.hooks.box import BoxHook
    from dropbox_box_provider.hooks.dropbox import DropboxHook

    emu = deployment.emulator
    dbx = dropbox_tokens(emu)
    deployment.connection("dbx", dropbox_connection(emu, dbx.refresh_token))
    deployment.connection("box_sa", box_jwt_connection(emu))
    connections.add("dbx", dropbox_connection(emu, dbx.refresh_token))  # this process's own view of both
    connections.add("box_sa", box_jwt_connection(emu))
    dropbox, box = DropboxHook("dbx"), BoxHook("box_sa")
    dropbox.write_bytes("/inbox/a.csv", b"a,1\n")
    dropbox.write_bytes("/inbox/b.csv", b"b,2\n")
    conf = {
        "dropbox_conn_id": "dbx",
        "box_conn_id": "box_sa",
        "dropbox_folder": "/inbox",
        "pattern": "*.csv",
        "box_folder": "/from-dropbox",
    }
    time.sleep(1)  # the emulator's times have whole seconds: the run must start after these files

    output = deployment.dags_test("dropbox_to_box_sync", conf)
    assert deployment.last_run_state("dropbox_to_box_sync") == "success", output[-4000:]
    assert {e["name"] for e in box.list_folder("/from-dropbox")} == {"a.csv", "b.csv"}
    assert box.read_bytes("/from-dropbox/b.csv") == b"b,2\n"
    assert "staging" not in (EXAMPLES / "dropbox_to_box_sync.py").read_text()  # nothing staged between tasks

    time.sleep(1)
    dropbox.write_bytes("/inbox/c.csv", b"c,3\n")
    downloads = emu.client.stats()["dropbox"]["routes"].get("/2/files/download", {}).get("200", 0)
    output = deployment.dags_test("dropbox_to_box_sync", conf)
    assert "Copied Dropbox /inbox/c.csv to Box" in output and "/inbox/a.csv" not in output, output[-4000:]
    assert emu.client.stats()["dropbox"]["routes"]["/2/files/download"]["200"] == downloads + 1
    assert {e["name"] for e in box.list_folder("/from-dropbox")} == {"a.csv", "b.csv", "c.csv"}

    time.sleep(1)  # nothing new: the run succeeds and moves nothing
    uploads = emu.client.stats()["box"]["routes"]
    output = deployment.dags_test("dropbox_to_box_sync", conf)
    assert deployment.last_run_state("dropbox_to_box_sync") == "success", output[-4000:]
    assert "nothing to transfer" in output, output[-4000:]
    assert emu.client.stats()["dropbox"]["routes"]["/2/files/download"]["200"] == downloads + 1
    assert emu.client.stats()["box"]["routes"] == uploads


def test_dropbox_to_box_sync_skips_identical_content(
    deployment: Deployment, connections: Connections
) -> None:
    """Without a previous run every file is read, but one Box already holds unchanged is not uploaded."""
    from dropbox_box_provider.hooks.box import BoxHook
    from dropbox_box_provider.hooks.dropbox import DropboxHook

    emu = deployment.emulator
    dbx = dropbox_tokens(emu)
    for add in (deployment.connection, connections.add):
        add("dbx", dropbox_connection(emu, dbx.refresh_token))
        add("box_sa", box_jwt_connection(emu))
    dropbox, box = DropboxHook("dbx"), BoxHook("box_sa")
    dropbox.write_bytes("/inbox/same.csv", b"same\n")
    dropbox.write_bytes("/inbox/new.csv", b"new\n")
    box.write_bytes("/from-dropbox/same.csv", b"same\n")
    before = box.info("/from-dropbox/same.csv")
    conf = {"dropbox_conn_id": "dbx", "box_conn_id": "box_sa", "dropbox_folder": "/inbox", "pattern": "*"}

    output = deployment.dags_test("dropbox_to_box_sync", conf)
    assert deployment.last_run_state("dropbox_to_box_sync") == "success", output[-4000:]
    assert "Kept Dropbox /inbox/same.csv" in output and "Copied Dropbox /inbox/new.csv" in output
    after = box.info("/from-dropbox/same.csv")
    assert after.raw.get("file_version") == before.raw.get("file_version")  # no new version uploaded
    assert box.read_bytes("/from-dropbox/new.csv") == b"new\n"


def test_box_service_account_report_round_trip(deployment: Deployment, connections: Connections) -> None:
    from dropbox_box_provider.hooks.box import BoxHook

    emu = deployment.emulator
    deployment.connection("box_sa", box_jwt_connection(emu))
    conf = {"box_conn_id": "box_sa", "folder": "/reports"}
    output = deployment.dags_test("box_service_account_report", conf)
    assert deployment.last_run_state("box_service_account_report") == "success", output[-4000:]
    assert grants(emu, "box", "urn:ietf:params:oauth:grant-type:jwt-bearer") == {"ok": 1}  # one token, shared
    connections.add("box_sa", box_jwt_connection(emu))  # this process's own view (its own token)
    reports = list(BoxHook("box_sa").list("/reports", pattern="report-*.csv"))
    assert len(reports) == 1
    assert BoxHook("box_sa").read_bytes(reports[0].ref).endswith(b",42\n")  # written straight to box://


def test_object_storage_csv_summary_maps_over_dropbox_files(
    deployment: Deployment, connections: Connections
) -> None:
    from dropbox_box_provider.hooks.box import BoxHook
    from dropbox_box_provider.hooks.dropbox import DropboxHook

    emu = deployment.emulator
    dbx = dropbox_tokens(emu)
    for add in (deployment.connection, connections.add):
        add("dbx", dropbox_connection(emu, dbx.refresh_token))
        add("box_sa", box_jwt_connection(emu))
    dropbox = DropboxHook("dbx")
    dropbox.write_bytes("/inbox/a.csv", b"x,1\ny,2\n")
    dropbox.write_bytes("/inbox/é.csv", b"z,3\n")
    dropbox.write_bytes("/inbox/skip.txt", b"not a csv\n")
    conf = {"dropbox_conn_id": "dbx", "box_conn_id": "box_sa", "dropbox_folder": "/inbox"}

    output = deployment.dags_test("object_storage_csv_summary", conf)
    assert deployment.last_run_state("object_storage_csv_summary") == "success", output[-4000:]
    summary = BoxHook("box_sa").read_bytes("/summaries/summary.csv").decode()
    assert summary == "file,rows\ndropbox://dbx@/inbox/a.csv,2\ndropbox://dbx@/inbox/é.csv,1\n"


def test_deferrable_sensor_defers_and_resumes_once_authorized(deployment: Deployment) -> None:
    emu = deployment.emulator
    airflow = deployment.airflow
    dags = airflow.home / "dags"
    shutil.copy(TEST_DAGS / "token_authorized_dag.py", dags / "token_authorized_dag.py")
    airflow.env["AIRFLOW__CORE__DAGS_FOLDER"] = str(dags)
    airflow.env["OPERATORS_TEST_CONN_ID"] = deployment.connection("box_person", box_connection(emu, None))

    process = subprocess.Popen(
        [sys.executable, "-m", "airflow", "dags", "test", "token_authorized"],
        env=airflow.env,
        cwd=airflow.home,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    deferred = threading.Event()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if "running trigger in line" in line:
                deferred.set()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        assert deferred.wait(180), "".join(lines)[-4000:]
        time.sleep(0.5)  # the trigger polls the store and finds nothing yet
        assert process.poll() is None
        tokens = box_tokens(emu)  # a person completes the authorization (the CLI stores the tokens)
        deployment.seed("box_person", oauth_config("box", emu, None), tokens)
        assert process.wait(timeout=120) == 0, "".join(lines)[-4000:]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    reader.join(timeout=10)
    output = "".join(lines)
    assert "is not authorized" in output and "deferring" in output, output[-4000:]
    assert "Trigger completed" in output, output[-4000:]
    assert deployment.last_run_state("token_authorized") == "success", output[-4000:]
    assert tokens.access_token not in output and str(tokens.refresh_token) not in output


def test_upload_with_no_match_fails_the_task_unless_allowed(deployment: Deployment, tmp_path: Path) -> None:
    emu = deployment.emulator
    airflow = deployment.airflow
    dags = airflow.home / "dags"
    shutil.copy(TEST_DAGS / "upload_no_match_dag.py", dags / "upload_no_match_dag.py")
    empty = tmp_path / "nothing-here"
    empty.mkdir()
    airflow.env["AIRFLOW__CORE__DAGS_FOLDER"] = str(dags)
    airflow.env["OPERATORS_TEST_LOCAL_GLOB"] = str(empty / "*.csv")
    tokens = dropbox_tokens(emu)
    airflow.env["OPERATORS_TEST_CONN_ID"] = deployment.connection(
        "dbx", dropbox_connection(emu, tokens.refresh_token)
    )
    deployment.seed("dbx", oauth_config("dropbox", emu, tokens.refresh_token), tokens)

    proc = airflow.run("dags", "test", "upload_no_match", timeout=240, check=False)
    output = proc.stdout + proc.stderr
    assert deployment.last_run_state("upload_no_match") == "failed", output[-4000:]
    assert f"no local file matches {str(empty / '*.csv')!r} on this worker" in output, output[-4000:]
    assert "allow_empty=True" in output

    output = deployment.dags_test("upload_no_match_allowed")
    assert deployment.last_run_state("upload_no_match_allowed") == "success", output[-4000:]
    assert "nothing to upload" in output, output[-4000:]
