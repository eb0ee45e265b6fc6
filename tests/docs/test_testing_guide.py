"""The code blocks of ``docs/testing-your-dags.md`` run as written: the ``pytest.ini`` block, the DAG file and
the test blocks become a user project in a temporary folder (the ``airflow dags test`` snippet wrapped in a
test of its own), run by a pytest of their own with nothing but the kit; the ``emulated_services()`` block
runs as a plain script, without pytest."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.testing_kit.test_example_project import run_pytest, user_environment

GUIDE = Path(__file__).parents[2] / "docs" / "testing-your-dags.md"
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```$", re.M | re.S)


def guide_blocks() -> dict[str, str]:
    """The guide's blocks by role; fails when the guide's layout changes, so a new block is not left out."""
    blocks = [(m.group(1), m.group(2)) for m in BLOCK.finditer(GUIDE.read_text())]
    assert [language for language, _ in blocks] == ["ini"] + ["python"] * 6, blocks
    roles = ["pytest_ini", "plain", "dag", "first_test", "subprocess", "expired_test", "storm_test"]
    named = dict(zip(roles, (code for _, code in blocks), strict=True))
    assert "with emulated_services() as services" in named["plain"]
    assert "@dag(" in named["dag"] and "def test_" in named["first_test"]
    for uses in ("Operator(", "ObjectStoragePath(", "Hook()"):  # the DAG uses all three, as the guide says
        assert uses in named["dag"], uses
    assert "_SUCCESS" in named["first_test"]  # its test checks what the hook task did
    assert '"dags", "test"' in named["subprocess"]
    assert "expire_tokens()" in named["expired_test"] and "rate_limit(" in named["storm_test"]
    return named


def user_project(root: Path, blocks: dict[str, str]) -> Path:
    (root / "dags").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "pytest.ini").write_text(blocks["pytest_ini"])
    (root / "dags" / "archive_reports.py").write_text(blocks["dag"])
    subprocess_test = (  # the snippet, with a report to archive before it and a check after
        "def test_airflow_dags_test(emulated_services):\n"
        '    emulated_services.put_file("dropbox", "/reports/2024-01.csv", "month,total\\n")\n'
        + textwrap.indent(blocks["subprocess"], "    ")
        + '    assert emulated_services.read_file("box", "/archive/2024-01.csv") == b"month,total\\n"\n'
    )
    tests = [blocks["first_test"], blocks["expired_test"], blocks["storm_test"], subprocess_test]
    (root / "tests" / "test_archive_reports.py").write_text("\n\n".join(tests))
    return root


@pytest.mark.slow
@pytest.mark.airflow
@pytest.mark.timeout(900)
def test_the_guides_project_blocks_pass_as_written(tmp_path: Path) -> None:
    project = user_project(tmp_path / "project", guide_blocks())
    proc = run_pytest(project, "-q", f"--basetemp={tmp_path / 'basetemp'}")
    output = proc.stdout[-6000:] + proc.stderr[-3000:]
    assert proc.returncode == 0, output
    assert "4 passed" in proc.stdout, output


@pytest.mark.timeout(300)
def test_the_guides_plain_block_runs_without_pytest(tmp_path: Path) -> None:
    """``with emulated_services() as services, services.apply_environ():`` from a plain script, with a hook
    added where the guide's ``...`` stands."""
    code = guide_blocks()["plain"].replace(
        "    ...  # run hooks, operators or dag.test() here",
        "    from dropbox_box_provider.hooks.dropbox import DropboxHook\n"
        "    assert DropboxHook().read_bytes('/inbox/a.csv') == b'id\\n1\\n'\n"
        "    import sys\n"
        "    assert 'pytest' not in sys.modules\n"
        "    print('plain block ok')",
    )
    assert "plain block ok" in code
    script = tmp_path / "plain.py"
    script.write_text(code)
    home = tmp_path / "airflow_home"
    env = {**user_environment(), "AIRFLOW_HOME": str(home)}
    proc = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240,
        check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "plain block ok" in proc.stdout
