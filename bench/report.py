"""Figures with median and spread, the machine/versions header, and the JSON + Markdown result files."""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("airflow-provider-dropbox-box", "apache-airflow", "httpx", "dropbox", "box-sdk-gen", "SQLAlchemy")


def summarize(values: list[float], unit: str) -> dict[str, Any]:
    """Median, min, max, relative spread ((max - min) / median) of one figure's repetitions."""
    clean = [float(v) for v in values]
    if not clean:
        return {"unit": unit, "n": 0, "median": None, "min": None, "max": None, "spread": None, "values": []}
    median = statistics.median(clean)
    spread = (max(clean) - min(clean)) / median if median else 0.0
    return {
        "unit": unit,
        "n": len(clean),
        "median": median,
        "min": min(clean),
        "max": max(clean),
        "spread": spread,
        "values": [round(v, 6) for v in clean],
    }


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _memory_total() -> int | None:
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    """Where the figures come from: CPU, memory, OS, Python, package versions, load at the start."""
    return {
        "cpu": _cpu_model(),
        "cpus": os.cpu_count(),
        "memory_bytes": _memory_total(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "versions": {name: _version(name) for name in PACKAGES},
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def write_json(results: dict[str, Any], path: Path) -> None:
    """The full result tree, every repetition's value included."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, sort_keys=False) + "\n")


def read_json(path: Path) -> dict[str, Any] | None:
    """A previous run's result tree, or None when there is none (or it is unreadable)."""
    try:
        loaded = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return loaded if isinstance(loaded, dict) else None


def merge(previous: dict[str, Any] | None, new: dict[str, Any], chosen: list[str]) -> dict[str, Any]:
    """``previous`` with the ``chosen`` scenarios (and their errors) taken from ``new``, and a note saying so.

    Only runs of the same mode merge; otherwise ``new`` is returned as is. The header (machine, versions)
    stays the previous run's; the note records when and under what load the merged scenarios were measured.
    """
    if previous is None or previous.get("settings", {}).get("mode") != new["settings"]["mode"]:
        return new
    merged = {k: v for k, v in previous.items() if k != "targets"}
    errors = {k: v for k, v in previous.get("errors", {}).items() if k not in chosen}
    for name in chosen:
        merged.pop(name, None)
        if name in new:
            merged[name] = new[name]
        if name in new["errors"]:
            errors[name] = new["errors"][name]
    merged["errors"] = errors
    merged["settings"] = {**previous.get("settings", {}), **new["settings"]}
    load = ", ".join(f"{x:.2f}" for x in new["machine"].get("load_average") or [])
    merged["notes"] = [
        *previous.get("notes", []),
        f"{', '.join(chosen)} measured in a separate run (--only) started {new['machine']['started_at']} "
        f"({new['duration_s']} s, load average at start {load}), same machine; the other scenarios are from "
        "the earlier runs",
    ]
    return merged


def _fmt(figure: dict[str, Any] | None, digits: int = 2) -> str:
    if not figure or figure.get("median") is None:
        return "-"
    median, low, high = figure["median"], figure["min"], figure["max"]
    if figure["n"] == 1:
        return f"{median:.{digits}f}"
    return f"{median:.{digits}f} ({low:.{digits}f}-{high:.{digits}f})"


def _target(ok: bool | None) -> str:
    return "-" if ok is None else ("met" if ok else "**missed**")


def markdown(results: dict[str, Any]) -> str:
    """Tables per scenario: median (min-max) over the repetitions, and each target met or missed."""
    info = results["machine"]
    settings = results["settings"]
    mem = info.get("memory_bytes")
    lines = [
        f"# Benchmark results ({settings['mode']} mode)",
        "",
        f"Machine: {info['cpu']}, {info['cpus']} CPUs, "
        f"{(mem or 0) / 2**30:.0f} GiB RAM, {info['platform']}, Python {info['python']}; "
        f"load average at start {', '.join(f'{x:.1f}' for x in info.get('load_average') or [])}.",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items() if v) + ".",
        f"Every figure is the median of {settings['repetitions']} repetitions, with (min-max).",
        "",
    ]
    lines += _fleet_md(results.get("fleet"))
    lines += _hot_md(results.get("hot_path"))
    lines += _transfers_md(results.get("transfers"))
    lines += _imports_md(results.get("imports"))
    lines += _contention_md(results.get("contention"))
    lines += _small_files_md(results.get("small_files"))
    lines += _watch_md(results.get("watch"))
    lines += _watch_dagrun_md(results.get("watch_dagrun"))
    targets = results.get("targets", [])
    if targets:
        lines += ["## Targets", "", "| target | measured | result |", "|---|---|---|"]
        lines += [f"| {t['target']} | {t['measured']} | {_target(t['met'])} |" for t in targets]
        lines.append("")
    return "\n".join(lines) + "\n"


def _fleet_md(fleet: dict[str, Any] | None) -> list[str]:
    if not fleet:
        return []
    lines = [
        "## 1. Fleet refresh economy",
        "",
        f"P processes share one connection and call an authorized `users/me` in a loop for "
        f"{fleet['duration_s']} s with access_token_ttl = {fleet['ttl_s']} s, Box refresh grace off. "
        "Grants per TTL window: token-endpoint refresh grants / token lifetimes elapsed (minimum 1.0).",
        "",
        "| service | client | P | grants per TTL window | invalid_grant | failed calls | calls |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for row in fleet["runs"]:
        if row.get("skipped"):
            lines.append(
                f"| {row['service']} | {row['client']} | {row['processes']} | skipped: "
                f"{row['skipped']} | | | |"
            )
            continue
        lines.append(
            f"| {row['service']} | {row['client']} | {row['processes']} | {_fmt(row['grants_per_window'])} | "
            f"{_fmt(row['invalid_grant'], 0)} | {_fmt(row['failed_calls'], 0)} | {_fmt(row['calls'], 0)} |"
        )
    return [*lines, ""]


def _hot_md(hot: dict[str, Any] | None) -> list[str]:
    if not hot:
        return []
    lines = [
        "## 2. Hot path (valid token)",
        "",
        "| service | what | client | µs per call | x raw httpx |",
        "|---|---|---|---:|---:|",
    ]
    for row in hot["rows"]:
        ratio = row.get("ratio_to_raw")
        lines.append(
            f"| {row['service']} | {row['what']} | {row['client']} | {_fmt(row['us_per_call'], 1)} | "
            f"{'-' if ratio is None else f'{ratio:.2f}'} |"
        )
    return [*lines, ""]


def _transfers_md(transfers: dict[str, Any] | None) -> list[str]:
    if not transfers:
        return []
    if not transfers.get("interleaved"):
        return _transfers_md_sequential(transfers)
    curl = transfers.get("curl")
    lines = [
        "## 3. Transfers",
        "",
        "Throughput in MB/s (10^6 bytes). The clients of one service and direction run side by side, their "
        "repetitions interleaved (each repetition runs every client once, order rotated, after `os.sync`); "
        "a ratio is the median of the per-repetition speed ratios, with their min-max. Fastest other: the "
        "non-hook client with the highest median MB/s. Peak RSS growth: the child process's "
        "`resource.getrusage` high-water mark over a repetition (reset before each), worst repetition. "
        + (
            f"Downloads also run `curl -o FILE` on the same URL with the same bearer header ({curl})."
            if curl
            else "curl is not installed: its reference rows are skipped."
        ),
        "",
        "| service | op | files | client | MB/s | x fastest other | x curl | x raw httpx | "
        "peak RSS growth MiB |",
        "|---|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for row in transfers["rows"]:
        fastest = row.get("ratio_to_fastest")
        shown = "-" if fastest is None else f"{_fmt(fastest)} ({row['fastest_other']})"
        rss = row.get("peak_rss_growth_mib")
        lines.append(
            f"| {row['service']} | {row['op']} | {row['label']} | {row['client']} | "
            f"{_fmt(row['mb_per_s'], 1)} | {shown} | {_fmt(row.get('ratio_to_curl'))} | "
            f"{_fmt(row.get('ratio_to_raw'))} | {'-' if rss is None else f'{rss:.1f}'} |"
        )
    return [*lines, ""]


def _transfers_md_sequential(transfers: dict[str, Any]) -> list[str]:
    """The table of a run recorded before interleaving (one child per client, repetitions back to back)."""
    lines = [
        "## 3. Transfers",
        "",
        "Throughput in MB/s (10^6 bytes); peak RSS growth of the child process over its repetitions "
        "(`resource.getrusage` high-water mark minus the mark before the first transfer).",
        "",
        "| service | op | files | client | MB/s | x raw httpx | peak RSS growth MiB |",
        "|---|---|---|---|---:|---:|---:|",
    ]
    for row in transfers["rows"]:
        ratio = row.get("ratio_to_raw")
        lines.append(
            f"| {row['service']} | {row['op']} | {row['label']} | {row['client']} | "
            f"{_fmt(row['mb_per_s'], 1)} | "
            f"{'-' if ratio is None else f'{ratio:.2f}'} | {row['peak_rss_growth_mib']:.1f} |"
        )
    return [*lines, ""]


def _imports_md(imports: dict[str, Any] | None) -> list[str]:
    if not imports:
        return []
    lines = [
        "## 4. Import cost",
        "",
        "ms beyond the baseline, fresh interpreters: `python -X importtime` (cumulative ms of the import "
        "tree after the baseline) with no bytecode cache (every module compiled from source: the first "
        "import after an install that compiled no `.pyc`) and with a warm `.pyc` cache (every later parse "
        "on a deployed worker); whole-process wall time minus the baseline process's, run back to back in "
        "alternating order, `.pyc` cached, and the same pairs' CPU time (user + system, which waits for a "
        "core do not inflate). Baseline `airflow.sdk`; for the DAG-file rows also `Asset`, "
        "`AssetWatcher` and `airflow.triggers.base`, which Airflow imports to validate any asset watcher.",
        "",
        "| imported | -X importtime ms, no bytecode cache | -X importtime ms, .pyc cached | "
        "whole process ms, .pyc cached | whole process CPU ms, .pyc cached |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in imports["rows"]:
        name = f"`{row['module']}`" if " " not in row["module"] else row["module"]
        lines.append(
            f"| {name} | {_fmt(row['ms'], 1)} | {_fmt(row.get('cached_ms'), 1)} | "
            f"{_fmt(row.get('process_ms'), 1)} | {_fmt(row.get('process_cpu_ms'), 1)} |"
        )
    return [*lines, ""]


def _watch_md(watch: dict[str, Any] | None) -> list[str]:
    from bench.watch import markdown as watch_markdown

    return watch_markdown(watch)


def _watch_dagrun_md(result: dict[str, Any] | None) -> list[str]:
    from bench.watch_dagrun import markdown as watch_dagrun_markdown

    return watch_dagrun_markdown(result)


def _contention_md(contention: dict[str, Any] | None) -> list[str]:
    if not contention:
        return []
    c = contention
    load = ", ".join(f"{x:.1f}" for x in c.get("load_average_at_start") or [])
    lines = [
        "## 5. Refresh under contention",
        "",
        f"{c['processes']} processes share {c['connections']} Box connections in one token store and call "
        f"`TokenManager.get_valid_token` on each in turn (pausing {c['think_s'] * 1000:.0f} ms per sweep) "
        f"for {c.get('warmup_s', 0):g} s of warm-up and {c['duration_s']:g} s measured, access_token_ttl = "
        f"{c['ttl_s']} s, Box refresh grace off, lease time {c['lease_s']:g} s. Grants per lifetime: refresh "
        "grants over the whole run / (connections x effective token lifetimes elapsed since their grants), "
        "the effective lifetime being the TTL minus min(refresh_margin, TTL / 2). Waiting calls (measured "
        "part): calls that found no valid token in the cache or the store read and waited for a lease or the "
        "token endpoint; their wait is set beside the token endpoint's own latency (every refresh request "
        "of the measured part, timed around the call). Calls: all calls of the measured part; few calls and "
        "grants per lifetime well below 1.0 mean the processes spent the run waiting and tokens stayed "
        "expired. "
        f"Started {c['started_at']}, load average at start {load}.",
        "",
        "| store | refresh_margin (effective) | grants per lifetime | invalid_grant | failed calls | calls | "
        "waiting calls | wait p50 ms | wait p99 ms | token endpoint p50 ms | token endpoint p99 ms |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in contention["runs"]:
        margin = f"{row['refresh_margin_s']} s"
        if row.get("skipped"):
            lines.append(f"| {row['store']} | {margin} | skipped: {row['skipped']} | | | | | | | | |")
            continue
        lines.append(
            f"| {row['store']} | {margin} ({row['effective_margin_s']:g} s) | "
            f"{_fmt(row['grants_per_lifetime'])} | {_fmt(row['invalid_grant'], 0)} | "
            f"{_fmt(row['failed_calls'], 0)} | {_fmt(row['calls'], 0)} | {_fmt(row['waiting_calls'], 0)} | "
            f"{_fmt(row['wait_p50_ms'], 1)} | {_fmt(row['wait_p99_ms'], 1)} | "
            f"{_fmt(row['token_p50_ms'], 1)} | {_fmt(row['token_p99_ms'], 1)} |"
        )
    return [*lines, ""]


def _small_files_md(small: dict[str, Any] | None) -> list[str]:
    if not small:
        return []
    lines = [
        "## 6. Many small files",
        "",
        f"{small['files']} files of {small['file_size'] // 1024} KiB uploaded into a new folder: the "
        f"provider's `upload_files` ({small['max_active_transfers']} at once, one shared back-off; Dropbox "
        "commits with `upload_session/finish_batch_v2`) against the official SDK's sequential loop (Dropbox "
        "`files_upload`, Box `uploads.upload_file`, one file after another). The emulator adds the given "
        "latency to every request; the clients alternate which goes first; the speed-up is SDK seconds / "
        "provider seconds of the same repetition.",
        "",
        "| service | latency ms | client | files/s | seconds | speed-up |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for row in small["rows"]:
        if "ratio" in row:
            lines.append(
                f"| {row['service']} | {row['latency_ms']:g} | {row['client']} | | | {_fmt(row['ratio'])} |"
            )
            continue
        lines.append(
            f"| {row['service']} | {row['latency_ms']:g} | {row['client']} | {_fmt(row['files_per_s'], 0)} | "
            f"{_fmt(row['seconds'], 2)} | |"
        )
    lines += [
        "",
        "429 injection (provider path): 429 with Retry-After 1 s on the upload route (and once on the batch "
        "commit for Dropbox); failures are files that did not land with their exact content hash.",
        "",
        "| service | latency ms | files | 429s served | failed files | seconds |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for storm in small.get("storms", []):
        lines.append(
            f"| {storm['service']} | {storm['latency_ms']:g} | {storm['files']} | {storm['429_served']} | "
            f"{storm['failures']} | {storm['seconds']:.2f} |"
        )
    return [*lines, ""]
