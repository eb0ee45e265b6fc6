"""``python -m bench --only X`` merges X into the existing latest.json instead of dropping the other
scenarios' figures (bench/report.py ``merge``), and ``--replace`` writes only this run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench import report


def _run(mode: str, sections: dict[str, Any], errors: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "machine": {"started_at": f"{mode}-start", "load_average": [1.0, 2.0, 3.0]},
        "settings": {"mode": mode, "repetitions": 5},
        "errors": errors or {},
        **sections,
        "duration_s": 12.5,
    }


def test_only_replaces_the_chosen_scenario_and_keeps_the_others(tmp_path: Path) -> None:
    sections = {"fleet": {"runs": ["old fleet"]}, "contention": {"runs": []}}
    previous = _run("full", sections, {"contention": "RuntimeError: earlier"})
    previous["notes"] = ["an earlier note"]
    path = tmp_path / "latest.json"
    report.write_json(previous, path)
    new = _run("full", {"contention": {"runs": [], "new": True}})

    merged = report.merge(report.read_json(path), new, ["contention"])

    assert merged["fleet"] == {"runs": ["old fleet"]}
    assert merged["contention"] == {"runs": [], "new": True}
    assert merged["errors"] == {}, "the chosen scenario's old error is gone once it ran cleanly"
    assert merged["machine"]["started_at"] == "full-start"
    assert merged["notes"][0] == "an earlier note"
    assert "contention measured in a separate run" in merged["notes"][1]
    assert "targets" not in merged, "the runner evaluates the targets again over the merged figures"


def test_a_failed_scenario_keeps_its_error_and_other_modes_do_not_merge(tmp_path: Path) -> None:
    previous = _run("full", {"fleet": {"runs": []}})
    failed = _run("full", {}, {"contention": "RuntimeError: boom"})
    merged = report.merge(previous, failed, ["contention"])
    assert merged["errors"] == {"contention": "RuntimeError: boom"} and "contention" not in merged
    assert merged["fleet"] == {"runs": []}

    quick = _run("quick", {"contention": {"runs": []}})
    assert report.merge(previous, quick, ["contention"]) is quick
    assert report.merge(report.read_json(tmp_path / "missing.json"), quick, ["contention"]) is quick
