"""Scenario 3: uploads and downloads (many 1 MiB files, one large file) through the provider's hooks (as
configured by default, and with ``verify_checksums=False``: the others verify no checksum), the official
SDKs, raw httpx streaming and (downloads) curl: MB/s, ratios to the fastest other client (one that is not a
provider hook), and peak RSS growth. The hooks download Box files as the operators do: from the entries of
one folder listing per repetition (timed), while the raw clients are handed the file ids.

Each (service, client, op) runs in a child process of its own (``python -m bench.transfers``, spoken to
in JSON lines on stdin/stdout, so tokens never reach argv) so ``resource.getrusage`` reports that client's
memory high-water mark and nothing else's; the mark is reset before each repetition (Linux
``/proc/self/clear_refs``). The clients of one (service, op) are alive together and their repetitions
interleaved (repetition r runs every client once, in an order rotated by r, after an ``os.sync``), so every
ratio compares figures taken at the same moment on a shared machine: each ratio is the median of the
per-repetition ratios, with their min-max.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import resource
import shutil
import statistics
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
HOOKS = "provider hooks"
HOOKS_NO_CHECKSUMS = "provider hooks, no checksums"  # a hook built with verify_checksums=False
#: The provider's own clients: compared with the others, never one of the "fastest other" clients.
HOOK_CLIENTS = (HOOKS, HOOKS_NO_CHECKSUMS)
CLIENTS = (*HOOK_CLIENTS, "official SDK", "raw httpx")
CURL = "curl"  # downloads only: a C client's reference, when the curl binary is installed


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
        """Delete, then purge from the trash: the emulator keeps trashed bytes in memory (a full run would
        otherwise hold every 1 GiB upload of every repetition)."""
        self.client.delete(self._url(f"https://api.box.com/2.0/files/{file_id}")).raise_for_status()
        self.client.delete(self._url(f"https://api.box.com/2.0/files/{file_id}/trash")).raise_for_status()

    def _url(self, real: str) -> str:
        return real if real.startswith(self.url) else f"{self.url}/{real[len('https://') :]}"


# ---------------------------------------------------------------------------------------------- child process


def _verify_checksums(client: str) -> bool | None:
    """The hook's ``verify_checksums``: the connection's default (on), or off for the no-checksums client."""
    return False if client == HOOKS_NO_CHECKSUMS else None


def _uploader(spec: dict[str, Any]) -> Any:
    """(local, remote_name) -> remote ref, for the spec's service and client."""
    service, client, url = spec["service"], spec["client"], spec["emulator_url"]
    if client in HOOK_CLIENTS:
        from bench import connections

        connections.set_connection(spec["conn_id"], spec["conn_json"])
        if service == "dropbox":
            from dropbox_box_provider.hooks.dropbox import DropboxHook

            dropbox_hook = DropboxHook(spec["conn_id"], verify_checksums=_verify_checksums(client))

            def hook_dropbox(local: Path, name: str) -> str:
                dropbox_hook.upload_file(local, f"/bench/{name}", mode="overwrite")
                return f"/bench/{name}"

            return hook_dropbox
        from dropbox_box_provider.hooks.box import BoxHook

        box_hook = BoxHook(spec["conn_id"], verify_checksums=_verify_checksums(client))
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


def _curl_downloader(spec: dict[str, Any]) -> Any:
    """curl (a C client) streaming the same URL to a file, the bearer header read from a private file."""
    url, service = spec["emulator_url"].rstrip("/"), spec["service"]
    scratch = Path(spec["scratch"])
    scratch.mkdir(parents=True, exist_ok=True)
    header = scratch / "curl-headers"
    header.touch(mode=0o600)
    header.write_text(f"Authorization: Bearer {spec['grant']['access_token']}\n")  # not in argv (ps)

    def curl(remote: str, local: Path) -> None:
        command = ["curl", "-sS", "-f", "-o", str(local), "-H", f"@{header}"]
        if service == "dropbox":
            arg = json.dumps({"path": remote})
            command += [
                "-X",
                "POST",
                "-H",
                f"Dropbox-API-Arg: {arg}",
                f"{url}/content.dropboxapi.com/2/files/download",
            ]
        else:
            command += ["-L", f"{url}/api.box.com/2.0/files/{remote}/content"]
        subprocess.run(command, check=True)

    return curl


class ListedBoxDownloads:
    """Box downloads as the operators make them: the folder is listed once per repetition (timed) and each
    file is fetched from its listed entry, whose size and SHA-1 spare a metadata request per file."""

    def __init__(self, hook: Any) -> None:
        self.hook = hook
        self.entries: dict[str, Any] = {}

    def start(self) -> None:
        self.entries = {entry.id: entry for entry in self.hook.list("/")}

    def __call__(self, remote: str, local: Path) -> None:
        self.hook.download_file(self.entries[remote], local)


def _downloader(spec: dict[str, Any]) -> Any:
    """(remote ref, local) -> None, for the spec's service and client."""
    service, client, url = spec["service"], spec["client"], spec["emulator_url"]
    if client in HOOK_CLIENTS:
        from bench import connections

        connections.set_connection(spec["conn_id"], spec["conn_json"])
        if service == "dropbox":
            from dropbox_box_provider.hooks.dropbox import DropboxHook

            return DropboxHook(spec["conn_id"], verify_checksums=_verify_checksums(client)).download_file
        from dropbox_box_provider.hooks.box import BoxHook

        return ListedBoxDownloads(BoxHook(spec["conn_id"], verify_checksums=_verify_checksums(client)))
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
    if client == CURL:
        return _curl_downloader(spec)
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


class Child:
    """One client's side of a (service, op): runs one repetition of a size group when asked, and keeps the
    largest RSS growth seen per group (the high-water mark is reset before each repetition)."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.raw = Raw(spec["emulator_url"], spec["grant"]["access_token"])
        self.transfer = _uploader(spec) if spec["op"] == "upload" else _downloader(spec)
        self.scratch = Path(spec["scratch"])
        self.scratch.mkdir(parents=True, exist_ok=True)
        self.rss: dict[str, float] = {}
        self.runs = 0

    def run(self, label: str, sources: list[Path], refs: list[str], *, warm_up: bool = False) -> float:
        """Seconds for one repetition of ``label``; what it created is removed afterwards, untimed. A warm-up
        run's memory growth is not recorded (first imports and connections)."""
        self.runs += 1
        baseline = _reset_peak_rss()
        started = time.perf_counter()
        if self.spec["op"] == "upload":
            made = [self.transfer(path, f"r{self.runs}-{i}-{path.name}") for i, path in enumerate(sources)]
        else:
            if hasattr(self.transfer, "start"):
                self.transfer.start()
            for i, ref in enumerate(refs):
                self.transfer(ref, self.scratch / f"out-{i}")
        seconds = time.perf_counter() - started
        if not warm_up:
            self.rss[label] = max(self.rss.get(label, 0.0), _max_rss_mib() - baseline)
        if self.spec["op"] == "upload":
            for ref in made:  # the emulator keeps files in memory: free them between repetitions
                (self.raw.dropbox_delete if self.spec["service"] == "dropbox" else self.raw.box_delete)(ref)
        else:
            for i in range(len(refs)):
                (self.scratch / f"out-{i}").unlink()
        return seconds


def child_main() -> None:
    """The child's loop: a spec line, then ``run`` requests (one JSON line each) until ``done``."""
    channel = os.fdopen(os.dup(1), "w")  # answers only: whatever else writes to stdout goes to stderr
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def answer(message: dict[str, Any]) -> None:
        channel.write(json.dumps(message) + "\n")
        channel.flush()

    spec = json.loads(sys.stdin.readline())
    worker = Child(spec)
    groups = {label: [Path(p) for p in files] for label, files in spec["groups"]}
    answer({"ready": True})
    for line in sys.stdin:
        request = json.loads(line)
        if request["cmd"] == "done":
            break
        label = request["label"]
        refs = request.get("refs") or []
        answer({"seconds": worker.run(label, groups[label], refs, warm_up=request.get("warm_up", False))})
    answer({"rss_growth_mib": None if spec["client"] == CURL else worker.rss})  # curl's memory is its own


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


class _ChildProcess:
    """A running ``python -m bench.transfers`` child, spoken to in JSON lines (tokens on stdin, not argv)."""

    def __init__(self, spec: dict[str, Any], log: Path) -> None:
        self.name = f"{spec['service']}/{spec['client']}/{spec['op']}"
        self.log = log
        with log.open("w") as stderr:  # a file, not a pipe: a chatty child never blocks on it
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bench.transfers"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
            )
        self.ask(spec)

    def ask(self, message: dict[str, Any]) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        try:
            self.process.stdin.write(json.dumps(message) + "\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            pass
        line = self.process.stdout.readline()
        if not line:
            self.process.wait(60)
            raise RuntimeError(f"transfer child {self.name} failed:\n{self.log.read_text()[-3000:]}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def finish(self) -> dict[str, Any]:
        answer = self.ask({"cmd": "done"})
        self.process.wait(60)
        return answer

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(60)


def _clients(op: str) -> list[str]:
    if op == "download" and shutil.which("curl"):
        return [*CLIENTS, CURL]
    return list(CLIENTS)


def _spec(service: str, op: str, client: str, sizes: Any, emulator: Any, workdir: Path) -> dict[str, Any]:
    from bench import connections

    spec: dict[str, Any] = {
        "service": service,
        "client": client,
        "op": op,
        "groups": sizes,
        "emulator_url": emulator.url,
        "grant": connections.raw_grant(service, emulator),
        "scratch": str(workdir / f"scratch-{uuid.uuid4().hex[:8]}"),
    }
    if client in HOOK_CLIENTS:
        conn_id = f"bench_transfer_{uuid.uuid4().hex[:8]}"
        store = f"sqlite:///{workdir / f'{conn_id}.db'}"
        conn_json = connections.connection_json(service, emulator.url, store)
        connections.store_grant(service, conn_id, conn_json, spec["grant"])
        spec.update(conn_id=conn_id, conn_json=conn_json)
    return spec


def _put_files(raw: Raw, service: str, files: list[str]) -> list[str]:
    """The download sources, uploaded once with raw httpx and shared by every client."""
    refs = []
    for i, path in enumerate(files):
        name = f"d-{uuid.uuid4().hex[:6]}-{i}-{Path(path).name}"
        if service == "dropbox":
            raw.dropbox_upload(Path(path), f"/bench/{name}")
            refs.append(f"/bench/{name}")
        else:
            refs.append(raw.box_upload(Path(path), name))
    return refs


def _interleaved(
    service: str, op: str, sizes: Any, settings: Any, emulator: Any, workdir: Path
) -> tuple[dict[str, dict[str, list[float]]], dict[str, Any]]:
    """Every client of (service, op) alive at once; repetition r of a size runs each client once, in an order
    rotated by r, so load changes hit every client alike. Returns seconds[label][client] and RSS growth."""
    from bench import connections

    clients = _clients(op)
    raw = Raw(emulator.url, connections.raw_grant(service, emulator)["access_token"])
    children = {
        c: _ChildProcess(
            _spec(service, op, c, sizes, emulator, workdir),
            workdir / f"transfer-{service}-{op}-{c.replace(' ', '-')}.log",
        )
        for c in clients
    }
    seconds: dict[str, dict[str, list[float]]] = {label: {c: [] for c in clients} for label, _ in sizes}
    refs = {label: _put_files(raw, service, files) if op == "download" else [] for label, files in sizes}
    try:
        first = sizes[0][0]
        for child in children.values():  # untimed: imports, token load, first connections
            child.ask({"cmd": "run", "label": first, "refs": refs[first], "warm_up": True})
        for label, _files in sizes:
            begun = time.monotonic()
            for rep in range(settings.repetitions):
                shift = rep % len(clients)
                for client in clients[shift:] + clients[:shift]:
                    os.sync()  # the previous client's written bytes are not this one's to flush
                    answer = children[client].ask({"cmd": "run", "label": label, "refs": refs[label]})
                    seconds[label][client].append(answer["seconds"])
            print(f"[bench]   transfer {service} {op} {label}: {time.monotonic() - begun:.0f} s", flush=True)
        rss = {c: child.finish()["rss_growth_mib"] for c, child in children.items()}
    finally:
        for child in children.values():
            child.kill()
        for ref in (ref for made in refs.values() for ref in made):
            (raw.dropbox_delete if service == "dropbox" else raw.box_delete)(ref)
    return seconds, rss


def _ratios(ours: list[float], theirs: list[float]) -> list[float]:
    """Per-repetition speed ratios (same repetition, same moment): their seconds over ours."""
    return [b / a for a, b in zip(ours, theirs, strict=True)]


def run(settings: Any, *, emulator: Any, workdir: Path, **_: Any) -> dict[str, Any]:
    """Every (service, op) with its clients side by side, repetitions interleaved."""
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
            seconds, rss = _interleaved(service, op, sizes, settings, emulator, workdir)
            for label, files in sizes:
                size = sum(Path(p).stat().st_size for p in files)
                times = seconds[label]
                medians = {c: statistics.median(size / s for s in t) for c, t in times.items()}
                others = [c for c in times if c not in HOOK_CLIENTS]
                fastest = max(others, key=lambda c: medians[c])
                for client, values in times.items():
                    growth = (rss.get(client) or {}).get(label)
                    row: dict[str, Any] = {
                        "service": service,
                        "op": op,
                        "label": label,
                        "client": client,
                        "bytes": size,
                        "mb_per_s": summarize([size / s / 1e6 for s in values], "MB/s"),
                        "peak_rss_growth_mib": None if growth is None else round(max(0.0, growth), 1),
                        "ratio_to_raw": summarize(_ratios(values, times["raw httpx"]), "x"),
                    }
                    if client in HOOK_CLIENTS:
                        row["fastest_other"] = fastest
                        row["ratio_to_fastest"] = summarize(_ratios(values, times[fastest]), "x")
                        if CURL in times:
                            row["ratio_to_curl"] = summarize(_ratios(values, times[CURL]), "x")
                    rows.append(row)
    return {
        "large_size_bytes": settings.large_size,
        "curl": _curl_version(),
        "interleaved": True,
        "rows": rows,
    }


def _curl_version() -> str | None:
    """``curl --version``'s first line, or None when curl is missing (its rows are then skipped)."""
    if not shutil.which("curl"):
        return None
    return subprocess.run(["curl", "--version"], capture_output=True, text=True, check=False).stdout.split(
        "\n"
    )[0]


if __name__ == "__main__":
    child_main()
