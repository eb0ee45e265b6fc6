"""The README's runnable code blocks: exactly those marked ``<!-- runs -->`` on the line before, run in order
against the emulator, in an Airflow home whose ``dropbox_default`` and ``box_default`` connections a person
has already authorized (the emulator's consent stands in for them)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dropbox_box_provider.testing import EmulatedServices
from tests.fixtures.airflow import AirflowEnv
from tests.operators.conftest import box_connection, box_tokens, dropbox_connection, dropbox_tokens

pytestmark = [pytest.mark.airflow, pytest.mark.slow, pytest.mark.timeout(400)]

README = Path(__file__).parents[2] / "README.md"
MARKER = "<!-- runs -->"
BLOCK = re.compile(r"^<!-- runs -->\n```(\w+)\n(.*?)^```$", re.M | re.S)
DAG_STAGING = Path("/tmp/dropbox_to_box")  # the README DAG's staging folder


def marked_blocks() -> list[tuple[str, str]]:
    """(language, code) of every block whose fence follows the marker line; a stray marker is an error."""
    text = README.read_text()
    blocks = [(m.group(1), m.group(2)) for m in BLOCK.finditer(text)]
    assert len(blocks) == text.count(f"\n{MARKER}\n"), "a <!-- runs --> line is not right before a ``` fence"
    return blocks


def test_the_marked_blocks_are_the_offline_ones() -> None:
    blocks = marked_blocks()
    assert {language for language, _ in blocks} <= {"bash", "python"}
    assert len(blocks) >= 4
    code = "\n".join(body for _, body in blocks)
    for never in ("make test", "make demo", "pip install", "authorize"):
        assert never not in code, f"{never!r} needs the network, a person or minutes: it must not be marked"


def test_readme_blocks_run_against_the_emulator(
    airflow_env: AirflowEnv, emulated_services: EmulatedServices, tmp_path: Path
) -> None:
    import json

    emu = emulated_services
    env = airflow_env.env
    env["AIRFLOW_CONN_DROPBOX_DEFAULT"] = json.dumps(
        dropbox_connection(emu, dropbox_tokens(emu).refresh_token)
    )
    env["AIRFLOW_CONN_BOX_DEFAULT"] = json.dumps(box_connection(emu, box_tokens(emu).refresh_token))
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    env["PYTHONWARNINGS"] = "ignore"
    airflow_env.python(  # the person's file the README DAG picks up
        "from dropbox_box_provider.hooks.dropbox import DropboxHook\n"
        "DropboxHook('dropbox_default').write_bytes('/inbox/a.csv', b'a,1\\n')\n"
    )
    shutil.rmtree(DAG_STAGING, ignore_errors=True)
    work = tmp_path / "work"  # also the DAGs folder: the README DAG's `dag.test()` parses it from there
    work.mkdir()
    env["AIRFLOW__CORE__DAGS_FOLDER"] = str(work)
    outputs = []
    try:
        for number, (language, code) in enumerate(marked_blocks(), start=1):
            script = work / f"block{number}.{'py' if language == 'python' else 'sh'}"
            script.write_text(code)
            command = (
                [sys.executable, str(script)]
                if language == "python"
                else ["bash", "-euo", "pipefail", str(script)]
            )
            proc = subprocess.run(
                command, cwd=work, env=env, capture_output=True, text=True, timeout=240, check=False
            )
            said = f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
            assert proc.returncode == 0, f"README block {number} ({language}) failed:\n{code}\n{said}"
            outputs.append(proc.stdout + proc.stderr)
    finally:
        shutil.rmtree(DAG_STAGING, ignore_errors=True)

    text = "\n".join(outputs)
    assert re.search(r"dropbox_default .*dropbox", text) and "box_default" in text  # status table
    assert re.search(r"^[A-Za-z0-9_-]{43}=$", text, re.M)  # a generated Fernet key
    assert "/reports/q3.csv" in text
    check = airflow_env.python(
        "from dropbox_box_provider.hooks.box import BoxHook\n"
        "box = BoxHook('box_default')\n"
        "print(box.read_bytes('/from-dropbox/a.csv'), box.read_bytes('/Archive/2026/q3.csv'))\n"
    ).stdout
    assert "b'a,1\\n' b'region,total\\neu,3\\n'" in check, check

    # The README's workaround for Airflow 3.3.2's Test button: the command-line test of the same connection.
    env["AIRFLOW__CORE__TEST_CONNECTION"] = "Enabled"
    tested = airflow_env.run("connections", "test", "box_default")
    assert "Connection success!" in tested.stdout, tested.stdout + tested.stderr
