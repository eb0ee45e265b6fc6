"""Migration from apache-airflow-providers-box: its parameter names on the Box operators and sensor (each
warns once with the new name), and a DAG plus connection written for 2.1.2 run here with only the import
edits docs/migration-from-box-provider.md documents."""

from __future__ import annotations

import re
import warnings
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dropbox_box_provider.emulator import seed
from dropbox_box_provider.errors import InvalidArgument
from dropbox_box_provider.operators import _aliases
from dropbox_box_provider.operators.box import BoxDownloadOperator, BoxUploadOperator
from dropbox_box_provider.sensors.box import BoxFileSensor
from dropbox_box_provider.testing import EmulatedServices
from tests.fixtures.airflow import AirflowEnv

ROOT = Path(__file__).parents[2]
GUIDE = ROOT / "docs" / "migration-from-box-provider.md"
LEGACY_DAG = Path(__file__).parent / "box_provider_dags" / "box_provider_report.py"


@pytest.fixture(autouse=True)
def _fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_aliases, "_warned", set())


def documented_import_edits() -> list[tuple[str, str]]:
    """The (old line, new line) pairs of the guide's ``<!-- import-edits -->`` diff block."""
    text = GUIDE.read_text()
    block = re.search(r"<!-- import-edits -->\n```diff\n(.*?)```", text, re.S)
    assert block, "the migration guide lost its import-edits block"
    lines = block.group(1).splitlines()
    olds = [line[1:] for line in lines if line.startswith("-")]
    news = [line[1:] for line in lines if line.startswith("+")]
    assert len(olds) == len(news) and olds
    return list(zip(olds, news, strict=True))


def test_operator_aliases_warn_once_with_the_new_name(tmp_path: Path) -> None:
    with pytest.warns(DeprecationWarning) as caught:
        up = BoxUploadOperator(task_id="u", local_path="/tmp/a.csv", box_path="/in/a.csv", box_conn_id="c")
    assert (up.conn_id, up.remote_path) == ("c", "/in/a.csv")
    messages = sorted(str(w.message) for w in caught)
    assert len(messages) == 2
    assert (
        "BoxUploadOperator(box_conn_id=...)" in messages[0]
        and "use BoxUploadOperator(conn_id=" in messages[0]
    )
    assert "use BoxUploadOperator(remote_path=...)" in messages[1]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the second use of the same names is silent
        again = BoxUploadOperator(task_id="u2", local_path="/tmp/a.csv", box_path="/b", box_conn_id="d")
        assert again.conn_id == "d"
    with pytest.warns(DeprecationWarning, match=r"BoxDownloadOperator\(box_path=\.\.\.\).*remote_path"):
        down = BoxDownloadOperator(task_id="d", local_path=str(tmp_path), box_path="/in/a.csv")
    assert (down.conn_id, down.remote_path) == ("box_default", "/in/a.csv")


def test_old_and_new_name_together_is_an_error() -> None:
    with pytest.raises(InvalidArgument, match="pass only conn_id="):
        BoxUploadOperator(task_id="u", local_path="/a", remote_path="/b", conn_id="x", box_conn_id="y")
    with pytest.raises(InvalidArgument, match="needs remote_path="):
        BoxUploadOperator(task_id="u", local_path="/a")
    with pytest.raises(InvalidArgument, match="pass only modified_after="):
        BoxFileSensor(task_id="s", path="/a", modified_after="2024-01-01", newer_than="2024-02-01")


def test_sensor_aliases_map_to_path_glob_and_modified_after() -> None:
    with pytest.warns(DeprecationWarning) as caught:
        sensor = BoxFileSensor(
            task_id="s",
            path="/reports/",
            file_pattern="*.csv",
            newer_than="2024-05-01T00:00:00Z",
            box_conn_id="box_ccg",
            deferrable=False,
        )
    assert (sensor.path, sensor.conn_id, sensor.modified_after) == (
        "/reports/*.csv",
        "box_ccg",
        "2024-05-01T00:00:00Z",
    )
    text = " ".join(str(w.message) for w in caught)
    assert "modified_after" in text and "conn_id" in text and "path='<folder>/<pattern>'" in text
    with pytest.raises(InvalidArgument, match="only the name pattern"):
        BoxFileSensor(task_id="t", path="/reports", file_pattern="sub/*.csv")
    plain = BoxFileSensor(task_id="p", path="/reports/a.csv", file_pattern="")
    assert plain.path == "/reports/a.csv"


def test_legacy_ccg_connection_and_sensor_find_files(
    emulated_services: EmulatedServices, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The 2.1.2 connection (type ``box``, three extras) and sensor arguments, here against the emulator."""
    import json

    from cryptography.fernet import Fernet

    from dropbox_box_provider.hooks.box import BoxHook

    monkeypatch.setenv("AIRFLOW__CORE__FERNET_KEY", Fernet.generate_key().decode())
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    monkeypatch.setenv("AIRFLOW_CONN_BOX_CCG", json.dumps(legacy_connection(emulated_services)))
    BoxHook("box_ccg").write_bytes(b"id\n1\n", "/reports/a.csv")
    with pytest.warns(DeprecationWarning):
        sensor = BoxFileSensor(
            task_id="s",
            path="/reports",
            file_pattern="*.csv",
            newer_than="None",
            box_conn_id="box_ccg",
            deferrable=False,
        )
    assert sensor.poke({}).xcom_value == ["a.csv"]
    sensor.modified_after = datetime.now(UTC).isoformat()
    assert not sensor.poke({}).is_done


def legacy_connection(emulator: EmulatedServices) -> dict[str, object]:
    """A connection as apache-airflow-providers-box documents it; ``host`` only points it at the emulator."""
    return {
        "conn_type": "box",
        "host": emulator.url,
        "extra": {
            "client_id": seed.DEMO_BOX_CCG_CLIENT_ID,
            "client_secret": seed.DEMO_BOX_CCG_CLIENT_SECRET,
            "enterprise_id": seed.DEMO_BOX_ENTERPRISE_ID,
        },
    }


@pytest.mark.airflow
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_dag_written_for_box_provider_2_1_2_runs_with_the_documented_edits(
    airflow_env: AirflowEnv, emulated_services: EmulatedServices, tmp_path: Path
) -> None:
    import json

    from dropbox_box_provider.hooks.box import BoxHook

    source = LEGACY_DAG.read_text()
    edited = source
    for old, new in documented_import_edits():
        edited = edited.replace(old + "\n", new + "\n")
    assert "airflow.providers.box" not in edited, "an import of the old provider has no documented edit"
    changed = [line for line in edited.splitlines() if line not in source.splitlines()]
    assert changed and all(line.startswith("from dropbox_box_provider.") for line in changed)

    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / LEGACY_DAG.name).write_text(edited)
    work = tmp_path / "work"
    work.mkdir()
    (work / "report.csv").write_text("region,total\neu,3\n")
    connection = json.dumps(legacy_connection(emulated_services))
    airflow_env.env.update(
        {
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW_CONN_BOX_CCG": connection,
            "BOX_REPORT_WORK_DIR": str(work),
        }
    )
    proc = airflow_env.run("dags", "test", "box_provider_report", timeout=240, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    runs = airflow_env.run("dags", "list-runs", "box_provider_report", "-o", "json").stdout
    assert '"state": "success"' in runs.replace("'", '"'), output[-4000:]
    assert (work / "report_copy.csv").read_text() == "region,total\neu,3\n"
    links = airflow_env.python(
        "from airflow.models.xcom import XComModel\n"
        "from airflow.utils.session import create_session\n"
        "with create_session() as s:\n"
        "    for x in s.query(XComModel).filter(XComModel.key.like('_link_%')):\n"
        "        print('LINK', x.task_id, x.key, x.value)\n"
    ).stdout
    assert "LINK upload_report _link_BoxFileLink" in links and "https://app.box.com/file/" in links, links

    import os

    os.environ["AIRFLOW_CONN_BOX_CCG"] = connection
    try:
        assert BoxHook("box_ccg").read_bytes("/migration/report.csv") == b"region,total\neu,3\n"
    finally:
        del os.environ["AIRFLOW_CONN_BOX_CCG"]
