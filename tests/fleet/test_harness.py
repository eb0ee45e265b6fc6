"""The fleet harness's own parts that run without a fleet: the Redis preflight and its skip/fail rule, the
process-tree walk that SIGKILLs a worker, the worker hostname callable, scenario 3's file sizes.

``make fleet`` itself runs the scenarios (CI runs it with REQUIRE_FLEET=1).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.fixtures.environment import free_port, skip_or_fail
from tests.fleet import run as fleet_run
from tests.fleet.cluster import REDIS_HOST, REDIS_PORT, descendants
from tests.fleet.hostname import HOSTNAME_ENV, worker_hostname
from tests.fleet.scenarios import CI, FULL, MiB, file_sizes


def test_without_redis_the_fleet_skips_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()  # nothing listens there
    monkeypatch.setattr(fleet_run, "REDIS_PORT", port)
    monkeypatch.delenv(fleet_run.REQUIRE_ENV, raising=False)
    assert fleet_run.run(CI, tmp_path / "fleet") == 0
    out = capsys.readouterr().out
    assert f"fleet SKIPPED: Redis at 127.0.0.1:{port} is unreachable" in out
    assert not (tmp_path / "fleet").exists()


def test_without_redis_require_fleet_fails(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    monkeypatch.setattr(fleet_run, "REDIS_PORT", port)
    monkeypatch.setenv(fleet_run.REQUIRE_ENV, "1")
    assert fleet_run.run(CI, tmp_path / "fleet") == 1
    out = capsys.readouterr().out
    assert f"fleet FAILED: Redis at 127.0.0.1:{port} is unreachable" in out
    assert "REQUIRE_FLEET=1 forbids skipping" in out


def test_the_machines_redis_answers_the_preflight() -> None:
    problem = fleet_run.redis_problem(REDIS_HOST, REDIS_PORT)
    if problem:
        skip_or_fail(fleet_run.REQUIRE_ENV, problem)
    assert problem is None


def test_descendants_reach_grandchildren_so_a_worker_dies_whole() -> None:
    parent = subprocess.Popen(["sh", "-c", "sh -c 'sleep 60' & sleep 60 & wait"], start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        found: list[int] = []
        while time.monotonic() < deadline and len(found) < 3:
            found = descendants(parent.pid)
            time.sleep(0.05)
        assert len(found) >= 3  # the inner sh, its sleep, and the other sleep
        assert parent.pid not in found
    finally:
        for pid in [*descendants(parent.pid), parent.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        parent.wait(timeout=10)


def test_worker_hostname_names_the_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(HOSTNAME_ENV, "worker_a.fleet")
    assert worker_hostname() == "worker_a.fleet"
    monkeypatch.delenv(HOSTNAME_ENV)
    assert worker_hostname() not in ("", "worker_a.fleet")


@pytest.mark.parametrize(("size", "count", "largest"), [(CI, 20, 16 * MiB), (FULL, 50, 64 * MiB)])
def test_scenario_3_files_have_mixed_sizes_up_to_the_largest(size: object, count: int, largest: int) -> None:
    sizes = file_sizes(size)  # type: ignore[arg-type]
    assert len(sizes) == count
    assert max(sizes) == largest
    assert min(sizes) == 1
    assert len(set(sizes)) >= 6
