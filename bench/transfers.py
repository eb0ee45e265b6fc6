"""Scenario 3: uploads and downloads (many 1 MiB files, one large file) through the provider's hooks, the
official SDKs and raw httpx streaming (the loopback limit): MB/s and peak RSS growth.

Each (service, client, op) runs in a child process of its own (``python -m bench.transfers`` with the spec on
stdin) so ``resource.getrusage`` reports that client's memory high-water mark and nothing else's; the mark is
reset before each size (Linux ``/proc/self/clear_refs``) so the imports' peak does not hide a transfer's.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import resource
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

MiB = 1024 * 1024
DROPBOX_SINGLE_LIMIT = 150 * MiB
DROPBOX_CHUNK = 32 * MiB
BOX_CHUNKED_THRESHOLD = 20_000_000
CLIENTS = ("provider hooks", "official SDK", "raw httpx")


# ---------------------------------------------------------------------------------------------- raw httpx


def _file_chunks(path: Path, offset: int = 0, length: int | None = None, size: int = MiB) -> Iterator[bytes]:
    with path.open("rb") as handle:
        handle.seek(offset)
        left = path.stat().st_size - offset if length is None else length
        while left > 0:
            block = handle.read(min(size, left))
            if not block:
                break
            left -= len(block)
            yield block


class Raw:
    """The least a client can do over loopback: fixed bearer header, bodies streamed from/to disk."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url.rstrip("/")
        self.client = httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=600)

    def dropbox_upload(self, local: Path, remote: str) -> None:
        size = local.stat().st_size
        content = "https://content.dropboxapi.com/2/files"
        if size <= DROPBOX_SINGLE_LIMIT:
            arg = {"path": remote, "mode": "overwrite"}
            self._post(f"{content}/upload", local, 0, size, arg)
            return
        session = self._post(f"{content}/upload_session/start", local, 0, DROPBOX_CHUNK, {})["session_id"]
        offset = DROPBOX_CHUNK
        while size - offset > DROPBOX_CHUNK:
            cursor = {"cursor": {"session_id": session, "offset": offset}}
            self._post(f"{content}/upload_session/append_v2", local, offset, DROPBOX_CHUNK, cursor)
            offset += DROPBOX_CHUNK
        finish = {
            "cursor": {"session_id": session, "offset": offset},
            "commit": {"path": remote, "mode": "overwrite"},
        }
        self._post(f"{content}/upload_session/finish", local, offset, size - offset, finish)

    def _post(self, real: str, local: Path, offset: int, length: int, arg: Any) -> Any:
        response = self.client.post(
            self._url(real),
            content=_file_chunks(local, offset, length),
            headers={
                "Dropbox-API-Arg": json.dumps(arg),
                "Content-Type": "application/octet-stream",
                "Content-Length": str(length),
            },
        )
        response.raise_for_status()
        return response.json() if response.content else None

    def dropbox_download(self, remote: str, local: Path) -> None:
        url = self._url("https://content.dropboxapi.com/2/files/download")
        headers = {"Dropbox-API-Arg": json.dumps({"path": remote})}
        with self.client.stream("POST", url, headers=headers) as response, local.open("wb") as target:
            response.raise_for_status()
            for block in response.iter_bytes(MiB):
                target.write(block)

    def dropbox_delete(self, remote: str) -> None:
        self.client.post(
            self._url("https://api.dropboxapi.com/2/files/delete_v2"), json={"path": remote}
        ).raise_for_status()

    def box_upload(self, local: Path, name: str) -> str:
        size = local.stat().st_size
        if size < BOX_CHUNKED_THRESHOLD:
            with local.open("rb") as handle:
                response = self.client.post(
                    self._url("https://upload.box.com/api/2.0/files/content"),
                    data={"attributes": json.dumps({"name": name, "parent": {"id": "0"}})},
                    files={"file": (name, handle, "application/octet-stream")},
                )
            response.raise_for_status()
            return str(response.json()["entries"][0]["id"])
        created = self.client.post(
            self._url("https://upload.box.com/api/2.0/files/upload_sessions"),
            json={"folder_id": "0", "file_size": size, "file_name": name},
        )
        created.raise_for_status()
        session = created.json()
        part_size = int(session["part_size"])
        whole = hashlib.sha1()
        parts = []
        with local.open("rb") as handle:
            offset = 0
            while offset < size:
                data = handle.read(part_size)
                whole.update(data)
                end = offset + len(data) - 1
                put = self.client.put(
                    session["session_endpoints"]["upload_part"],
                    content=data,
                    headers={
                        "Content-Range": f"bytes {offset}-{end}/{size}",
                        "Digest": "sha=" + base64.b64encode(hashlib.sha1(data).digest()).decode(),
                        "Content-Type": "application/octet-stream",
                    },
                )
                put.raise_for_status()
                parts.append(put.json()["part"])
                offset = end + 1
        commit = self.client.post(
            session["session_endpoints"]["commit"],
            json={"parts": parts},
            headers={"Digest": "sha=" + base64.b64encode(whole.digest()).decode()},
        )
        commit.raise_for_status()
        return str(commit.json()["entries"][0]["id"])

    def box_download(self, file_id: str, local: Path) -> None:
        url = self._url(f"https://api.box.com/2.0/files/{file_id}/content")
        with (
            self.client.stream("GET", url, follow_redirects=True) as response,
            local.open("wb") as target,
        ):
            response.raise_for_status()
            for block in response.iter_bytes(MiB):
                target.write(block)

    def box_delete(self, file_id: str) -> None:
        self.client.delete(self._url(f"https://api.box.com/2.0/files/{file_id}")).raise_for_status()

    def _url(self, real: str) -> str:
        return real if real.startswith(self.url) else f"{self.url}/{real[len('https://') :]}"


# ---------------------------------------------------------------------------------------------- child process


def _uploader(spec: dict[str, Any]) -> Any:
    """(local, remote_name) -> remote ref, for the spec's service and client."""
    service, client, url = spec["service"], spec["client"], spec["emulator_url"]
    if client == "provider hooks":
        from bench import connections

        connections.set_connection(spec["conn_id"], spec["conn_json"])
        if service == "dropbox":
            from dropbox_box_provider.hooks.dropbox import DropboxHook

            dropbox_hook = DropboxHook(spec["conn_id"])

            def hook_dropbox(local: Path, name: str) -> str:
                dropbox_hook.upload_file(local, f"/bench/{name}", mode="overwrite")
                return f"/bench/{name}"

            return hook_dropbox
        from dropbox_box_provider.hooks.box import BoxHook

        box_hook = BoxHook(spec["conn_id"])
        return lambda local, name: str(box_hook.upload_file(local, "0", name=name)["id"])
    if client == "official SDK":
        from bench import sdks

        if service == "dropbox":
            import dropbox

            dbx = sdks.dropbox_client(url, spec["grant"])
            overwrite = dropbox.files.WriteMode.overwrite

            def sdk_dropbox(local: Path, name: str) -> str:
                path = f"/bench/{name}"
                size = local.stat().st_size
                with local.open("rb") as handle:
                    if size <= DROPBOX_SINGLE_LIMIT:
                        dbx.files_upload(handle.read(), path, mode=overwrite)
                        return path
                    start = dbx.files_upload_session_start(handle.read(DROPBOX_CHUNK))
                    cursor = dropbox.files.UploadSessionCursor(
                        session_id=start.session_id, offset=DROPBOX_CHUNK
                    )
                    while size - cursor.offset > DROPBOX_CHUNK:
                        dbx.files_upload_session_append_v2(handle.read(DROPBOX_CHUNK), cursor)
                        cursor.offset += DROPBOX_CHUNK
                    commit = dropbox.files.CommitInfo(path=path, mode=overwrite)
                    dbx.files_upload_session_finish(handle.read(), cursor, commit)
                return path

            return sdk_dropbox
        from box_sdk_gen import UploadFileAttributes, UploadFileAttributesParentField

        box = sdks.box_client(url, spec["grant"])

        def sdk_box(local: Path, name: str) -> str:
            size = local.stat().st_size
            with local.open("rb") as handle:
                if size < BOX_CHUNKED_THRESHOLD:
                    attributes = UploadFileAttributes(
                        name=name, parent=UploadFileAttributesParentField(id="0")
                    )
                    return str(box.uploads.upload_file(attributes, handle).entries[0].id)
                return str(box.chunked_uploads.upload_big_file(handle, name, size, "0").id)

        return sdk_box
    raw = Raw(url, spec["grant"]["access_token"])
    if service == "dropbox":

        def raw_dropbox(local: Path, name: str) -> str:
            raw.dropbox_upload(local, f"/bench/{name}")
            return f"/bench/{name}"

        return raw_dropbox
    return raw.box_upload


def _downloader(spec: dict[str, Any]) -> Any:
    """(remote ref, local) -> None, for the spec's service and client."""
    service, client, url = spec["service"], spec["client"], spec["emulator_url"]
    if client == "provider hooks":
        from bench import connections

        connections.set_connection(spec["conn_id"], spec["conn_json"])
        if service == "dropbox":
            from dropbox_box_provider.hooks.dropbox import DropboxHook

            return DropboxHook(spec["conn_id"]).download_file
        from dropbox_box_provider.hooks.box import BoxHook

        return BoxHook(spec["conn_id"]).download_file
    if client == "official SDK":
        from bench import sdks

        if service == "dropbox":
            dbx = sdks.dropbox_client(url, spec["grant"])
            return lambda remote, local: dbx.files_download_to_file(str(local), remote)
        box = sdks.box_client(url, spec["grant"])

        def sdk_box(remote: str, local: Path) -> None:
            with local.open("wb") as target:
                box.downloads.download_file_to_output_stream(remote, target)

        return sdk_box
    raw = Raw(url, spec["grant"]["access_token"])
    return raw.dropbox_download if service == "dropbox" else raw.box_download


def _max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _reset_peak_rss() -> float:
    """Reset the RSS high-water mark (Linux ``clear_refs`` 5; getrusage follows it) and return it, so
    one size's peak is not hidden under an earlier one's (or the imports')."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
    return _max_rss_mib()


def _measure(spec: dict[str, Any], raw: Raw, sources: list[Path], transfer: Any) -> dict[str, Any]:
    service = spec["service"]
    scratch = Path(spec["scratch"])
    scratch.mkdir(parents=True, exist_ok=True)
    seconds: list[float] = []
    if spec["op"] == "upload":
        baseline = _reset_peak_rss()
        for rep in range(spec["repetitions"]):
            started = time.perf_counter()
            refs = [transfer(path, f"r{rep}-{i}-{path.name}") for i, path in enumerate(sources)]
            seconds.append(time.perf_counter() - started)
            for ref in refs:  # the emulator keeps files in memory: free them between repetitions
                (raw.dropbox_delete if service == "dropbox" else raw.box_delete)(ref)
    else:
        refs = []
        for i, path in enumerate(sources):  # put the files there with raw httpx, outside the measurement
            name = f"d{i}-{path.name}"
            if service == "dropbox":
                raw.dropbox_upload(path, f"/bench/{name}")
                refs.append(f"/bench/{name}")
            else:
                refs.append(raw.box_upload(path, name))
        baseline = _reset_peak_rss()
        for _rep in range(spec["repetitions"]):
            started = time.perf_counter()
            for i, ref in enumerate(refs):
                transfer(ref, scratch / f"out-{i}")
            seconds.append(time.perf_counter() - started)
            for i in range(len(refs)):
                (scratch / f"out-{i}").unlink()
        for ref in refs:
            (raw.dropbox_delete if service == "dropbox" else raw.box_delete)(ref)
    growth = max(0.0, _max_rss_mib() - baseline)
    return {"seconds": seconds, "bytes": sum(p.stat().st_size for p in sources), "rss_growth_mib": growth}


def child(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one (service, client, op) over every size group; per group seconds per repetition and the
    RSS high-water growth."""
    raw = Raw(spec["emulator_url"], spec["grant"]["access_token"])
    transfer = _uploader(spec) if spec["op"] == "upload" else _downloader(spec)
    return {label: _measure(spec, raw, [Path(p) for p in files], transfer) for label, files in spec["groups"]}


# ---------------------------------------------------------------------------------------------- parent side


def _make_files(directory: Path, count: int, size: int) -> list[str]:
    """``count`` files of ``size`` bytes (random content; large files repeat a random 1 MiB block)."""
    directory.mkdir(parents=True, exist_ok=True)
    block = os.urandom(min(size, MiB))
    paths = []
    for i in range(count):
        path = directory / f"f{i}.bin"
        with path.open("wb") as handle:
            left = size
            while left > 0:
                piece = block[: min(left, len(block))] if size > MiB else os.urandom(size)
                handle.write(piece)
                left -= len(piece)
        paths.append(str(path))
    return paths


def _run_child(spec: dict[str, Any]) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-m", "bench.transfers"],
        input=json.dumps(spec),  # on stdin, not argv: the spec holds (emulator) tokens
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"transfer child {spec['service']}/{spec['client']}/{spec['op']} failed:\n{result.stderr[-3000:]}"
        )
    outcome: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return outcome


def run(settings: Any, *, emulator: Any, workdir: Path, **_: Any) -> dict[str, Any]:
    """Every (service, op, size, client) case in its own child process."""
    from bench import connections
    from bench.report import summarize

    emulator.client.reset()  # default token lifetimes: no refresh during transfers
    large_mib = settings.large_size // MiB
    sizes = [
        (
            f"{settings.small_files} x {settings.small_size // 1024} KiB"
            if settings.small_size < MiB
            else f"{settings.small_files} x {settings.small_size // MiB} MiB",
            _make_files(workdir / "small", settings.small_files, settings.small_size),
        ),
        (f"1 x {large_mib} MiB", _make_files(workdir / "large", 1, settings.large_size)),
    ]
    rows: list[dict[str, Any]] = []
    for service in ("dropbox", "box"):
        for op in ("upload", "download"):
            for client in CLIENTS:
                spec: dict[str, Any] = {
                    "service": service,
                    "client": client,
                    "op": op,
                    "groups": sizes,
                    "repetitions": settings.repetitions,
                    "emulator_url": emulator.url,
                    "grant": connections.raw_grant(service, emulator),
                    "scratch": str(workdir / f"scratch-{uuid.uuid4().hex[:8]}"),
                }
                if client == "provider hooks":
                    conn_id = f"bench_transfer_{uuid.uuid4().hex[:8]}"
                    store = f"sqlite:///{workdir / f'{conn_id}.db'}"
                    conn_json = connections.connection_json(service, emulator.url, store)
                    connections.store_grant(service, conn_id, conn_json, spec["grant"])
                    spec.update(conn_id=conn_id, conn_json=conn_json)
                begun = time.monotonic()
                outcomes = _run_child(spec)
                print(
                    f"[bench]   transfer {service} {op} {client}: {time.monotonic() - begun:.0f} s",
                    flush=True,
                )
                for label, _files in sizes:
                    outcome = outcomes[label]
                    rates = [outcome["bytes"] / s / 1e6 for s in outcome["seconds"]]
                    rows.append(
                        {
                            "service": service,
                            "op": op,
                            "label": label,
                            "client": client,
                            "bytes": outcome["bytes"],
                            "mb_per_s": summarize(rates, "MB/s"),
                            "peak_rss_growth_mib": round(outcome["rss_growth_mib"], 1),
                        }
                    )
    for row in rows:
        raw = next(
            r
            for r in rows
            if (r["service"], r["op"], r["label"], r["client"])
            == (row["service"], row["op"], row["label"], "raw httpx")
        )
        row["ratio_to_raw"] = row["mb_per_s"]["median"] / raw["mb_per_s"]["median"]
    return {"large_size_bytes": settings.large_size, "rows": rows}


if __name__ == "__main__":
    print(json.dumps(child(json.loads(sys.stdin.read()))))
