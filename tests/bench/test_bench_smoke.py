"""The benchmark runner's code paths, once, with tiny sizes (``python -m bench --smoke``): every scenario
produces sane counts and the provider never sees invalid_grant. Timings are not asserted (benchmarks are
not tests)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytest.importorskip("dropbox")
pytest.importorskip("box_sdk_gen")
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]  # the whole bench in smoke mode, Airflow included


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("bench")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (out / "latest.md").read_text().startswith("# Benchmark results (smoke mode)")
    return json.loads((out / "latest.json").read_text())


def test_header_and_no_scenario_errors(smoke: dict) -> None:
    assert smoke["errors"] == {}
    assert smoke["machine"]["cpus"] >= 1 and smoke["machine"]["versions"]["httpx"]
    assert smoke["settings"]["mode"] == "smoke"
    assert smoke["targets"], "the targets were evaluated"


def test_fleet_counts_and_no_invalid_grant_for_the_provider(smoke: dict) -> None:
    skipped = [r for r in smoke["fleet"]["runs"] if r.get("skipped")]
    if os.environ.get("REQUIRE_POSTGRES") == "1":
        assert skipped == [], "PostgreSQL is required (REQUIRE_POSTGRES=1) but its fleet runs were skipped"
    runs = [r for r in smoke["fleet"]["runs"] if not r.get("skipped")]
    assert {(r["service"], r["kind"]) for r in runs} >= {
        ("box", "provider"),
        ("box", "sdk"),
        ("dropbox", "provider"),
        ("dropbox", "sdk"),
    }
    for row in runs:
        assert row["calls"]["n"] == smoke["settings"]["repetitions"]
        assert min(row["calls"]["values"]) > 0, row
        assert min(row["grants"]["values"]) > 0, f"no token outlived the run, nothing measured: {row}"
        if row["kind"] == "provider":
            assert max(row["invalid_grant"]["values"]) == 0, row
            assert max(row["failed_calls"]["values"]) == 0, row["error_samples"]


def test_hot_path_rows(smoke: dict) -> None:
    rows = smoke["hot_path"]["rows"]
    assert len(rows) == 10
    for row in rows:
        assert row["us_per_call"]["n"] == smoke["settings"]["repetitions"]
        assert row["us_per_call"]["median"] > 0
    assert all(r["ratio_to_raw"] for r in rows if r["what"] != "valid token")


def test_transfer_rows(smoke: dict) -> None:
    rows = smoke["transfers"]["rows"]
    curl = 2 * 2 if shutil.which("curl") else 0  # downloads only: services x sizes
    assert len(rows) == 2 * 2 * 2 * 4 + curl  # services x ops x sizes x clients (two of them hooks)
    assert bool(smoke["transfers"]["curl"]) == bool(curl)
    repetitions = smoke["settings"]["repetitions"]
    for row in rows:
        assert row["bytes"] > 0 and row["mb_per_s"]["median"] > 0, row
        assert row["mb_per_s"]["n"] == repetitions
        if row["client"] == "curl":
            assert row["peak_rss_growth_mib"] is None  # its memory is not the child's
        else:
            assert row["peak_rss_growth_mib"] >= 0
        if row["client"] in {"provider hooks", "provider hooks, no checksums"}:  # one ratio per repetition
            assert row["ratio_to_fastest"]["n"] == repetitions
            assert row["fastest_other"] in {"official SDK", "raw httpx", "curl"}
            assert (row.get("ratio_to_curl") is not None) == (row["op"] == "download" and bool(curl))


def test_import_rows(smoke: dict) -> None:
    modules = {r["module"]: r for r in smoke["imports"]["rows"]}
    assert set(modules) == {
        "dropbox_box_provider.hooks.dropbox",
        "dropbox_box_provider.hooks.box",
        "DAG file with asset watchers: Dropbox hook + every trigger module",
        "DAG file with asset watchers: Box hook + every trigger module",
        "dropbox",
        "box_sdk_gen",
    }
    for row in modules.values():
        assert row["ms"]["median"] > 0 and row["cached_ms"]["median"] > 0
        assert row["process_ms"]["n"] == smoke["settings"]["import_repetitions"]
        assert row["process_cpu_ms"]["n"] == smoke["settings"]["import_repetitions"]
    dag_file = modules["DAG file with asset watchers: Box hook + every trigger module"]["statement"]
    assert "import dropbox_box_provider.triggers.files" in dag_file  # trigger modules are discovered
    assert "import dropbox_box_provider.triggers.token" in dag_file


def test_contention_single_flight_counts_and_waits(smoke: dict) -> None:
    contention = smoke["contention"]
    skipped = [r for r in contention["runs"] if r.get("skipped")]
    if os.environ.get("REQUIRE_POSTGRES") == "1":
        assert skipped == [], "PostgreSQL is required (REQUIRE_POSTGRES=1): contention runs were skipped"
    runs = [r for r in contention["runs"] if not r.get("skipped")]
    margins = set(smoke["settings"]["contention_margins"])
    assert {(r["store"], r["refresh_margin_s"]) for r in runs} >= {("sqlite", m) for m in margins}
    for row in runs:
        assert row["calls"]["n"] == smoke["settings"]["repetitions"], row
        assert min(row["grants"]["values"]) > 0, f"no token outlived the run, nothing measured: {row}"
        assert max(row["invalid_grant"]["values"]) == 0, row
        assert max(row["failed_calls"]["values"]) == 0, row["error_samples"]
        # A margin at or above the lifetime is capped at half of it: not a refresh on every call.
        assert row["effective_margin_s"] == min(row["refresh_margin_s"], contention["ttl_s"] / 2)
        assert row["grants_per_lifetime"]["max"] <= 1.05, row["grants_per_lifetime"]
        assert min(row["waiting_calls"]["values"]) > 0, "no call met a refresh: the wait was not measured"
        assert 0 < row["wait_p50_ms"]["median"] <= row["wait_p99_ms"]["median"], row
        assert row["token_p50_ms"]["median"] > 0, row


def test_small_files_rows_and_no_lost_file_under_429s(smoke: dict) -> None:
    small = smoke["small_files"]
    speedups = [r for r in small["rows"] if "ratio" in r]
    assert {(r["service"], r["latency_ms"]) for r in speedups} == {
        (service, latency) for service in ("dropbox", "box") for latency in (30.0, 0.0)
    }
    assert all(r["ratio"]["n"] == smoke["settings"]["repetitions"] for r in speedups)
    assert [(s["service"], s["failures"]) for s in small["storms"]] == [("dropbox", 0), ("box", 0)]
    assert all(s["429_served"] > 0 for s in small["storms"])


def test_watch_reports_idle_cost_and_every_upload(smoke: dict) -> None:
    for service in ("dropbox", "box"):
        figures = smoke["watch"][service]
        assert figures["idle"]["long_polls"] <= figures["idle"]["long_polls_allowed"]
        assert figures["idle"]["token_calls"] <= max(1, figures["idle"]["effective_token_lifetimes"])
        assert figures["latency"]["change_trigger"]["n"] == smoke["settings"]["watch_uploads"]
        assert figures["latency"]["missed"] == {"trigger": 0, "sensor": 0}


def test_watch_dagrun_times_every_upload_in_airflow(smoke: dict) -> None:
    result = smoke["watch_dagrun"]
    assert result["uploads"] == smoke["settings"]["watch_uploads"]
    for service in ("dropbox", "box"):
        assert result[service]["change_trigger_dag_run"]["n"] == result["uploads"]
        assert result[service]["poke_sensor_success"]["n"] == result["uploads"]
    assert any(t["target"].startswith("watch_dagrun, ") for t in smoke["targets"])
