"""TokenStoreBackend under real Airflow: isolated AIRFLOW_HOME, migrated metastore, the backend configured
through environment variables, ``airflow dags test`` runs against the emulator, ``airflow connections get``.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dropbox_box_provider.auth import flows
from dropbox_box_provider.auth.config import AuthConfig
from dropbox_box_provider.auth.manager import TokenManager
from dropbox_box_provider.emulator.seed import DEMO_BOX_CLIENT_ID, DEMO_BOX_CLIENT_SECRET
from dropbox_box_provider.secrets.token_store import BACKEND_PATH, TokenStoreBackend
from dropbox_box_provider.store.base import TokenRecord
from tests.fixtures.airflow import AirflowEnv
from tests.fixtures.databases import new_key
from tests.fixtures.emulator import RunningEmulator

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

DAG_FILE = Path(__file__).parents[1] / "dags" / "secrets_box_token_dag.py"
DAG_ID = "secrets_box_token"
CONN_ID = "box_from_store"
CALLBACK = "http://127.0.0.1:33333"
BOX_USER = "10001"  # a demo-seed Box user
WARNING_MARK = "TokenStoreBackend (dropbox_box_provider.secrets.token_store.TokenStoreBackend) serves no"


@dataclass
class Deployment:
    """An Airflow home with the backend configured, the Box connection saved in the store, tokens seeded."""

    airflow: AirflowEnv
    backend: TokenStoreBackend
    seed_refresh_token: str
    result_path: Path

    def record(self) -> TokenRecord:
        record = self.backend.token_store().read(CONN_ID)
        assert record is not None
        return record

    def dags_test(self, check: bool = True) -> str:
        proc = self.airflow.run("dags", "test", DAG_ID, timeout=240, check=check)
        return proc.stdout + proc.stderr

    def task_result(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.result_path.read_text())
        self.result_path.unlink()
        return result


def configure_backend(airflow: AirflowEnv, store: str, key: str) -> None:
    """The deployment's configuration: backend and kwargs as environment variables only."""
    airflow.env["AIRFLOW__SECRETS__BACKEND"] = BACKEND_PATH
    airflow.env["AIRFLOW__SECRETS__BACKEND_KWARG__STORE"] = store
    airflow.env["AIRFLOW__SECRETS__BACKEND_KWARG__KEY"] = key


def box_definition(emu: RunningEmulator) -> dict[str, Any]:
    return {
        "conn_type": "box_oauth",
        "login": DEMO_BOX_CLIENT_ID,
        "password": DEMO_BOX_CLIENT_SECRET,
        "host": emu.url,
        "extra": {"callback_url": CALLBACK, "initiate_oauth": "REFRESH"},
    }


def deploy(airflow: AirflowEnv, emu: RunningEmulator, store: str) -> Deployment:
    """Save the connection and a freshly authorized grant whose access token is already expired."""
    key = new_key()
    configure_backend(airflow, store, key)
    result_path = airflow.home / "task_result.json"
    airflow.env["SECRETS_TEST_CONN_ID"] = CONN_ID
    airflow.env["SECRETS_TEST_RESULT"] = str(result_path)
    shutil.copy(DAG_FILE, airflow.home / "dags" / DAG_FILE.name)

    backend = TokenStoreBackend(store=store, key=key)
    backend.save_connection(CONN_ID, box_definition(emu))
    config = AuthConfig.from_connection(backend.get_connection(CONN_ID), service="box")
    emu.client.configure(access_token_ttl=1)  # the seeded access token is expired by the first run
    code = emu.client.authorize("box", DEMO_BOX_CLIENT_ID, redirect_uri=CALLBACK, user_id=BOX_USER)
    seed = flows.exchange_code(config, code, callback_url=CALLBACK)
    emu.client.configure(access_token_ttl=3600)
    TokenManager(backend.token_store()).store_tokens(CONN_ID, config, seed)
    assert seed.refresh_token
    return Deployment(airflow, backend, seed.refresh_token, result_path)


def box_counts(emu: RunningEmulator) -> tuple[dict[str, int], dict[str, int]]:
    """Refresh-grant outcomes and users/me statuses seen by the emulator (zero counts left out)."""
    box = emu.client.stats()["box"]
    refreshes = box["token"].get("refresh_token", {})
    me_calls = box["routes"].get("/2.0/users/me", {})
    return (
        {k: v for k, v in refreshes.items() if v},
        {k: v for k, v in me_calls.items() if v},
    )


def printed_connection(stdout: str) -> dict[str, Any]:
    """The connection ``airflow connections get -o json`` printed (log lines may surround it)."""
    line = next(line for line in stdout.splitlines() if line.startswith("[{"))
    shown: dict[str, Any] = json.loads(line)[0]
    return shown


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def shared_store(request: pytest.FixtureRequest, airflow_env: AirflowEnv) -> str:
    """The store every Airflow process of the deployment shares: a sqlite file or a PostgreSQL schema."""
    if request.param == "sqlite":
        return str(airflow_env.home / "shared" / "oauth_tokens.db")
    return str(request.getfixturevalue("postgres_store_url"))


def test_separate_dag_runs_share_rotated_tokens_through_the_store(
    airflow_env: AirflowEnv, fresh_emulator: RunningEmulator, shared_store: str
) -> None:
    deployment = deploy(airflow_env, fresh_emulator, shared_store)
    seeded = deployment.record()

    output = deployment.dags_test()
    first = deployment.task_result()
    assert first["user_id"] == BOX_USER and first["backend_found"], output[-3000:]
    refreshes, me_calls = box_counts(fresh_emulator)
    assert refreshes == {"ok": 1}, refreshes
    rotated = deployment.record()
    assert rotated.version > seeded.version
    assert rotated.payload["refresh_token"] != deployment.seed_refresh_token  # Box rotated it
    assert rotated.payload["access_token"] != seeded.payload["access_token"]

    output = deployment.dags_test()  # a second, separate process finds the rotated token
    assert deployment.task_result()["user_id"] == BOX_USER, output[-3000:]
    refreshes, me_calls = box_counts(fresh_emulator)
    assert refreshes == {"ok": 1}, refreshes  # no second refresh and never invalid_grant
    assert me_calls == {"200": 2}, me_calls
    assert deployment.record().version == rotated.version

    shown = printed_connection(airflow_env.run("connections", "get", CONN_ID, "-o", "json").stdout)
    assert shown["conn_type"] == "box_oauth" and shown["host"] == fresh_emulator.url
    extra = shown["extra_dejson"]
    assert extra["access_token"] == rotated.payload["access_token"]
    assert extra["refresh_token"] == rotated.payload["refresh_token"]
    for secret in (rotated.payload["access_token"], rotated.payload["refresh_token"]):
        assert secret not in output  # the task log masks the tokens


FALL_THROUGH_PROBE = """
import json, os
os.environ["_AIRFLOW_PROCESS_CONTEXT"] = "server"
from airflow.models import Connection
from airflow.utils.session import create_session
with create_session() as session:
    session.add(Connection(conn_id="meta_box", conn_type="box_oauth", login="meta-app"))
seen = {}
for conn_id in ("box_from_store", "env_box", "meta_box"):
    conn = Connection.get_connection_from_secrets(conn_id)
    seen[conn_id] = {"login": conn.login, "extra": conn.extra_dejson}
print("RESULT" + json.dumps(seen))
"""


def test_connections_from_env_and_metastore_still_resolve(
    airflow_env: AirflowEnv, fresh_emulator: RunningEmulator, tmp_path: Path
) -> None:
    deployment = deploy(airflow_env, fresh_emulator, str(tmp_path / "tokens.db"))
    airflow_env.env["AIRFLOW_CONN_ENV_BOX"] = json.dumps({"conn_type": "box_oauth", "login": "env-app"})
    out = airflow_env.python(FALL_THROUGH_PROBE).stdout
    seen = json.loads(out[out.index("RESULT") + len("RESULT") :])
    assert seen["env_box"]["login"] == "env-app"
    assert seen["meta_box"]["login"] == "meta-app"
    assert seen["box_from_store"]["login"] == DEMO_BOX_CLIENT_ID
    assert seen["box_from_store"]["extra"]["access_token"] == deployment.record().payload["access_token"]
    assert WARNING_MARK not in out


def test_wrong_key_fails_the_task_with_the_backend_reason(
    airflow_env: AirflowEnv, fresh_emulator: RunningEmulator, tmp_path: Path
) -> None:
    """The connection falls through to its env var; the hook then refuses with the backend's reason."""
    deployment = deploy(airflow_env, fresh_emulator, str(tmp_path / "tokens.db"))
    airflow_env.env["AIRFLOW__SECRETS__BACKEND_KWARG__KEY"] = new_key()  # not the store's key
    env_definition = {**box_definition(fresh_emulator), "extra": json.dumps({"callback_url": CALLBACK})}
    airflow_env.env[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = json.dumps(env_definition)

    output = deployment.dags_test(check=False)
    assert not deployment.result_path.exists()
    assert output.count(WARNING_MARK) == 1, output[-4000:]
    assert "TokenStoreError: the token store secrets backend" in output, output[-4000:]
    assert "cannot be decrypted with the configured key(s)" in output
    refreshes, _ = box_counts(fresh_emulator)
    assert refreshes == {}, refreshes  # nothing was spent: the stored grant is intact


BAD_SETTINGS = {
    "unknown kwarg": ({"AIRFLOW__SECRETS__BACKEND_KWARG__STOER": "x.db"}, "unknown backend kwarg 'stoer'"),
    "malformed URL": (
        {"AIRFLOW__SECRETS__BACKEND_KWARG__STORE": "postgresql://u@h:port/db"},
        "malformed token store URL",
    ),
    "unreachable PostgreSQL": (
        {
            "AIRFLOW__SECRETS__BACKEND_KWARG__STORE": "postgresql://postgres@127.0.0.1:1/test?connect_timeout=2"
        },
        "check that PostgreSQL is running and reachable",
    ),
    "wrong key": (
        {"AIRFLOW__SECRETS__BACKEND_KWARG__KEY": new_key()},
        "cannot be decrypted with the configured",
    ),
}


def test_bad_configuration_warns_once_and_airflow_falls_through(airflow_env: AirflowEnv) -> None:
    """Each bad setting: ``connections get`` finds the env var's connection and logs the one warning line."""
    store, key = str(airflow_env.home / "tokens.db"), new_key()
    configure_backend(airflow_env, store, key)
    TokenStoreBackend(store=store, key=key).save_connection(
        "box_saved", {"conn_type": "box_oauth", "login": "store-app"}
    )
    airflow_env.env["AIRFLOW_CONN_BOX_SAVED"] = json.dumps({"conn_type": "box_oauth", "login": "env-app"})

    def connections_get(env: dict[str, str]) -> str:
        deployment = dataclasses.replace(airflow_env, env={**airflow_env.env, **env})
        proc = deployment.run("connections", "get", "box_saved", "-o", "json", "--verbose")
        assert printed_connection(proc.stdout)["login"] == "env-app"
        return proc.stdout + proc.stderr

    settings = [env for env, _ in BAD_SETTINGS.values()]
    with ThreadPoolExecutor(max_workers=len(settings)) as pool:
        outputs = dict(zip(BAD_SETTINGS, pool.map(connections_get, settings), strict=True))
    for case, (_, reason) in BAD_SETTINGS.items():
        lines = [line for line in outputs[case].splitlines() if WARNING_MARK in line]
        assert len(lines) == 1, (case, outputs[case][-3000:])
        assert reason in lines[0], (case, lines[0])
