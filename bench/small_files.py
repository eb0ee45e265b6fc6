"""Scenario 6: many small files (e.g. 1,000 x 64 KiB) uploaded through the provider's hooks
(``upload_files``: ``max_active_transfers`` = 4 at once sharing one back-off; Dropbox commits in
``finish_batch_v2`` batches) against the official SDKs' straightforward sequential loop (Dropbox
``files_upload`` per file, Box ``uploads.upload_file`` per file).

Client and emulator share the machine's cores on loopback, so the emulator adds a per-request latency
(``latency_ms``, a network-like round trip) for the headline figure; the zero-latency figure is reported
beside it. Repetitions interleave the two clients (alternating which goes first); each ratio is the SDK's
seconds over the provider's in the same repetition. A last run per service arms 429 storms (Retry-After 1 s)
on the upload route (and a batch commit) and counts the files that did not land intact.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from pathlib import Path
from typing import Any

MAX_ACTIVE = 4
KiB = 1024
UPLOAD_ROUTES = {"dropbox": "*/files/upload_session/start", "box": "*/2.0/files/content"}


def _make_files(directory: Path, count: int, size: int) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        path = directory / f"s{index:05d}.bin"
        path.write_bytes(os.urandom(size))
        paths.append(path)
    return paths


class Side:
    """One service's two clients over one grant: the provider hook and the official SDK."""

    def __init__(self, service: str, emulator: Any, workdir: Path) -> None:
        from bench import connections, sdks

        self.service = service
        self.url = emulator.url
        grant = connections.raw_grant(service, emulator)
        conn_id = f"bench_small_{service}_{uuid.uuid4().hex[:6]}"
        store = f"sqlite:///{workdir / f'{conn_id}.db'}"
        conn_json = connections.connection_json(service, emulator.url, store)
        connections.set_connection(conn_id, conn_json)
        connections.store_grant(service, conn_id, conn_json, grant)
        if service == "dropbox":
            from dropbox_box_provider.hooks.dropbox import DropboxHook

            self.hook: Any = DropboxHook(conn_id)
            self.sdk: Any = sdks.dropbox_client(emulator.url, grant)
        else:
            from dropbox_box_provider.hooks.box import BoxHook

            self.hook = BoxHook(conn_id)
            self.sdk = sdks.box_client(emulator.url, grant)
        self.hook.info("/")  # the token is in the cache before the clock starts

    def provider(self, sources: list[Path], folder: str) -> None:
        """The hooks' many-files path."""
        self.hook.upload_files([(p, f"{folder}/") for p in sources], max_active_transfers=MAX_ACTIVE)

    def official_sdk(self, sources: list[Path], folder: str) -> None:
        """The SDK's documented one-call-per-file upload, one file after another."""
        if self.service == "dropbox":
            import dropbox

            overwrite = dropbox.files.WriteMode.overwrite
            for path in sources:
                self.sdk.files_upload(path.read_bytes(), f"{folder}/{path.name}", mode=overwrite)
            return
        from box_sdk_gen import CreateFolderParent, UploadFileAttributes, UploadFileAttributesParentField

        parent = self.sdk.folders.create_folder(folder.strip("/"), CreateFolderParent(id="0")).id
        for path in sources:
            into = UploadFileAttributesParentField(id=parent)
            attributes = UploadFileAttributes(name=path.name, parent=into)
            with path.open("rb") as handle:
                self.sdk.uploads.upload_file(attributes, handle)

    def landed(self, sources: list[Path], folder: str) -> int:
        """How many of ``sources`` are in ``folder`` with their exact content hash."""
        found = {e.name: e.content_hash for e in self.hook.list(folder)}
        return sum(1 for p in sources if found.get(p.name) == _content_hash(self.service, p))

    def remove(self, folder: str) -> None:
        """Free the emulator's memory between repetitions (outside the measurement)."""
        self.hook.delete(folder, recursive=True, missing_ok=True)


def _content_hash(service: str, path: Path) -> str:
    """The hash the service stores for a file: Dropbox content_hash, Box SHA-1."""
    import hashlib

    from dropbox_box_provider.content_hash import dropbox_content_hash

    data = path.read_bytes()
    return dropbox_content_hash(data) if service == "dropbox" else hashlib.sha1(data).hexdigest()


def _timed(func: Any, *args: Any) -> float:
    started = time.perf_counter()
    func(*args)
    return time.perf_counter() - started


def _storm(side: Side, emulator: Any, sources: list[Path], latency: float, count: int) -> dict[str, Any]:
    """The provider path with 429 storms armed; files that did not land intact are failures."""
    emulator.client.configure(latency_ms=latency)
    emulator.client.clear_faults()
    emulator.client.clear_stats()
    route = UPLOAD_ROUTES[side.service]
    emulator.client.fault(route, status=429, retry_after=1, count=count)
    if side.service == "dropbox":
        emulator.client.fault("*/upload_session/finish_batch_v2", status=429, retry_after=1, count=1)
    folder = f"/storm-{uuid.uuid4().hex[:6]}"
    error = None
    started = time.perf_counter()
    try:
        side.provider(sources, folder)
    except Exception as exc:  # counted, not raised: the figure is how many files failed
        error = f"{type(exc).__name__}: {exc}"[:300]
    seconds = time.perf_counter() - started
    stats = emulator.client.stats()[side.service]["routes"]
    served = sum(n for statuses in stats.values() for code, n in statuses.items() if code == "429")
    landed = side.landed(sources, folder)
    side.remove(folder)
    emulator.client.clear_faults()
    return {
        "service": side.service,
        "latency_ms": latency,
        "files": len(sources),
        "429_served": served,
        "failures": len(sources) - landed,
        "error": error,
        "seconds": round(seconds, 3),
    }


def run(settings: Any, *, emulator: Any, workdir: Path, **_: Any) -> dict[str, Any]:
    """Both services, each latency, ``settings.repetitions`` interleaved repetitions, then the 429 run."""
    from bench.report import summarize

    # The Dropbox SDK logs every request at INFO; the loop is timed without that cost (in its favour).
    logging.getLogger("dropbox").setLevel(logging.WARNING)
    emulator.client.reset()
    count, size = settings.many_files, settings.many_size
    sources = _make_files(workdir / "many-small", count, size)
    rows: list[dict[str, Any]] = []
    storms: list[dict[str, Any]] = []
    for service in ("dropbox", "box"):
        side = Side(service, emulator, workdir)
        for latency in settings.many_latencies_ms:
            emulator.client.configure(latency_ms=latency)
            seconds: dict[str, list[float]] = {"provider hooks": [], "official SDK": []}
            ratios: list[float] = []
            for rep in range(settings.repetitions):
                order = ["official SDK", "provider hooks"]
                if rep % 2:
                    order.reverse()
                this: dict[str, float] = {}
                for client in order:
                    folder = f"/small-{uuid.uuid4().hex[:8]}"
                    method = side.official_sdk if client == "official SDK" else side.provider
                    this[client] = _timed(method, sources, folder)
                    side.remove(folder)
                for client, value in this.items():
                    seconds[client].append(value)
                ratios.append(this["official SDK"] / this["provider hooks"])
            print(
                f"[bench]   small files {service} {latency:g} ms: SDK "
                f"{min(seconds['official SDK']):.1f} s, provider {min(seconds['provider hooks']):.1f} s",
                flush=True,
            )
            for client, values in seconds.items():
                rows.append(
                    {
                        "service": service,
                        "latency_ms": latency,
                        "client": client,
                        "files_per_s": summarize([count / s for s in values], "files/s"),
                        "seconds": summarize(values, "s"),
                    }
                )
            rows.append(
                {
                    "service": service,
                    "latency_ms": latency,
                    "client": "speed-up (SDK s / provider s)",
                    "ratio": summarize(ratios, "x"),
                }
            )
        headline = settings.many_latencies_ms[0]
        storms.append(_storm(side, emulator, sources, headline, settings.many_storm_429s))
        side.hook.close()
    emulator.client.reset()
    return {
        "files": count,
        "file_size": size,
        "max_active_transfers": MAX_ACTIVE,
        "rows": rows,
        "storms": storms,
    }
