"""``verify_checksums``: the connection extra and the hook keyword that skip the checksum work the services do
not require, against the emulator (a loopback fault proxy corrupts or cuts bodies and records the headers
sent). With it off, sizes are still checked: a cut download resumes or fails, never lands short. With it on,
corruption still raises. Box downloads of listed entries make no metadata request per file."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any

import pytest

from dropbox_box_provider.errors import AuthConfigError, ChecksumMismatch, InvalidArgument, TransportError
from dropbox_box_provider.hooks.box import BoxHook
from dropbox_box_provider.hooks.dropbox import DropboxHook
from dropbox_box_provider.operators.box import BoxDownloadOperator, BoxUploadOperator
from dropbox_box_provider.operators.dropbox import DropboxDownloadOperator, DropboxUploadOperator
from dropbox_box_provider.operators.remote_transfer import BoxToDropboxOperator, DropboxToBoxOperator
from tests.fixtures.emulator import RunningEmulator
from tests.helpers.box import box_oauth_connection
from tests.helpers.box import set_connection as set_box_connection
from tests.helpers.dropbox import FAST, FaultProxy, ProxyRule, dropbox_connection, fault_proxy
from tests.helpers.dropbox import set_connection as set_dropbox_connection

MiB = 1024 * 1024
METADATA_GET = re.compile(r"^/2\.0/files/\d+$")
CONTENT_GET = re.compile(r"^/2\.0/files/\d+/content$")


pytestmark = pytest.mark.usefixtures("fernet_key_without_proxy")


def random_file(path: Path, size: int) -> bytes:
    data = os.urandom(size)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return data


def box_via(
    monkeypatch: pytest.MonkeyPatch,
    emu: RunningEmulator,
    tmp_path: Path,
    conn_id: str,
    host: str,
    **extra: Any,
) -> None:
    """A Box OAuth connection whose Host is ``host`` (the fault proxy in front of the emulator)."""
    box_oauth_connection(monkeypatch, emu, tmp_path, conn_id, **extra)
    variable = f"AIRFLOW_CONN_{conn_id.upper()}"
    monkeypatch.setenv(variable, os.environ[variable].replace(emu.url, host))


def box_routes(emu: RunningEmulator) -> dict[str, dict[str, int]]:
    routes: dict[str, dict[str, int]] = emu.client.stats()["box"]["routes"]
    return routes


def answered(routes: dict[str, dict[str, int]], pattern: re.Pattern[str] | str, status: str) -> int:
    """How many requests of the routes matching ``pattern`` (a regex, or a path prefix) got ``status``."""
    return sum(
        counts.get(status, 0)
        for route, counts in routes.items()
        if (pattern.match(route) if isinstance(pattern, re.Pattern) else route.startswith(pattern))
    )


def metadata_gets(routes: dict[str, dict[str, int]]) -> int:
    return sum(sum(counts.values()) for route, counts in routes.items() if METADATA_GET.match(route))


def headers_of(proxy: FaultProxy, method: str, fragment: str) -> list[dict[str, str]]:
    """The request headers (lower-cased names) the proxy relayed for ``method`` on paths containing
    ``fragment``."""
    found = []
    for seen_method, path, lines in proxy.seen:
        if seen_method == method and fragment in path:
            found.append(
                {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
            )
    return found


# ------------------------------------------------------------------------------- the setting itself


def test_extra_sets_it_and_the_hook_keyword_overrides_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    dropbox = {"login": "app", "password": "secret", "extra": {"initiate_oauth": "REFRESH"}}
    set_dropbox_connection(monkeypatch, "dbx_default_verify", **dropbox)
    assert DropboxHook("dbx_default_verify").verify_checksums is True  # on unless switched off
    for value in ("false", "False", "no", "0", "off", False):
        extra = {"initiate_oauth": "REFRESH", "verify_checksums": value}
        set_dropbox_connection(monkeypatch, "dbx_off", **{**dropbox, "extra": extra})
        assert DropboxHook("dbx_off").verify_checksums is False, value
        assert DropboxHook("dbx_off", verify_checksums=True).verify_checksums is True
    set_box_connection(monkeypatch, "box_off", login="c", password="s", extra={"verify_checksums": "false"})
    assert BoxHook("box_off").verify_checksums is False
    assert BoxHook("box_off", verify_checksums=True).verify_checksums is True
    assert BoxHook("box_off").as_user("42").verify_checksums is False
    set_box_connection(monkeypatch, "box_on", login="c", password="s", extra={"verify_checksums": "yes"})
    assert BoxHook("box_on").verify_checksums is True
    assert BoxHook("box_on", verify_checksums=False).verify_checksums is False
    with pytest.raises(InvalidArgument, match="verify_checksums must be True, False or None"):
        DropboxHook("dbx_off", verify_checksums="false")  # type: ignore[arg-type]


def test_misspelled_or_wrong_extra_is_a_typed_error(monkeypatch: pytest.MonkeyPatch) -> None:
    set_dropbox_connection(
        monkeypatch, "dbx_typo", login="app", password="s", extra={"verify_checksum": "false"}
    )
    with pytest.raises(AuthConfigError, match="did you mean 'verify_checksums'"):
        DropboxHook("dbx_typo").verify_checksums  # noqa: B018 - reading it parses the connection
    set_box_connection(monkeypatch, "box_bad", login="c", password="s", extra={"verify_checksums": "maybe"})
    with pytest.raises(
        AuthConfigError, match="verify_checksums 'maybe' is not allowed; use one of: true, false"
    ):
        BoxHook("box_bad").verify_checksums  # noqa: B018


def test_operators_pass_it_to_their_hooks() -> None:
    """None (the default) leaves it to the connection; True/False override it, for every transfer
    operator (no connection is read to know an override)."""
    for flag in (True, False):
        up = DropboxUploadOperator(task_id="u", local_path="/x", remote_path="/y", verify_checksums=flag)
        down = BoxDownloadOperator(task_id="d", remote_path="/y", local_path="/x", verify_checksums=flag)
        box_up = BoxUploadOperator(task_id="bu", local_path="/x", remote_path="/y", verify_checksums=flag)
        dbx_down = DropboxDownloadOperator(
            task_id="dd", remote_path="/y", local_path="/x", verify_checksums=flag
        )
        assert [o.get_hook().verify_checksums for o in (up, down, box_up, dbx_down)] == [flag] * 4
        transfers = (
            DropboxToBoxOperator(task_id="t", dropbox_path="/a/*", box_folder="/b", verify_checksums=flag),
            BoxToDropboxOperator(task_id="t", box_path="/a/*", dropbox_folder="/b", verify_checksums=flag),
        )
        for transfer in transfers:
            assert transfer.source_hook().verify_checksums is flag  # type: ignore[attr-defined]
            assert transfer.dest_hook().verify_checksums is flag  # type: ignore[attr-defined]
    default = DropboxUploadOperator(task_id="u", local_path="/x", remote_path="/y")
    assert default.verify_checksums is None and default.get_hook()._verify_checksums is None


# ------------------------------------------------------------------------------- Dropbox


@pytest.mark.parametrize("verify", [True, False])
def test_dropbox_transfers_round_trip_either_way(
    verify: bool, monkeypatch: pytest.MonkeyPatch, fresh_emulator: RunningEmulator, tmp_path: Path
) -> None:
    """Single request, upload session, batch, streamed upload, small reads: the same bytes come back and the
    metadata is Dropbox's, whichever the setting (the connection extra, here)."""
    dropbox_connection(monkeypatch, fresh_emulator, tmp_path, "dbx_rt", verify_checksums=str(verify).lower())
    hook = DropboxHook("dbx_rt", retry_policy=FAST)
    assert hook.verify_checksums is verify
    small = random_file(tmp_path / "small.bin", 300_000)
    large = random_file(tmp_path / "large.bin", 9 * MiB + 7)
    hook.upload_file(tmp_path / "small.bin", "/rt/small.bin")
    session = hook.upload_file(
        tmp_path / "large.bin", "/rt/large.bin", chunk_size=4 * MiB, single_request_limit=4 * MiB
    )
    assert session.size == len(large)
    batch = [tmp_path / f"b{i}.bin" for i in range(3)]
    contents = [random_file(path, 50_000 + i) for i, path in enumerate(batch)]
    hook.upload_files([(path, "/rt/batch/") for path in batch])
    streamed = hook.open_upload("/rt/streamed.bin")
    streamed.append(large[: 8 * MiB])
    streamed.finish(large[8 * MiB :])
    hook.write_bytes("/rt/written.bin", b"hello")

    assert hook.read_bytes("/rt/small.bin") == small and hook.read_bytes("/rt/written.bin") == b"hello"
    for remote, expected in [
        ("/rt/large.bin", large),
        ("/rt/streamed.bin", large),
        *((f"/rt/batch/b{i}.bin", data) for i, data in enumerate(contents)),
    ]:
        hook.download_file(remote, tmp_path / "out.bin")
        assert (tmp_path / "out.bin").read_bytes() == expected, remote
    listed = {entry.name: entry for entry in hook.list("/rt/batch")}
    hook.download_files([(listed["b1.bin"], tmp_path / "listed.bin")])  # a listed entry is accepted
    assert (tmp_path / "listed.bin").read_bytes() == contents[1]
    hook.close()


@pytest.mark.parametrize("verify", [True, False])
def test_dropbox_corruption_is_caught_only_when_verifying_and_a_cut_always_fails(
    verify: bool, monkeypatch: pytest.MonkeyPatch, fresh_emulator: RunningEmulator, tmp_path: Path
) -> None:
    data = random_file(tmp_path / "src.bin", 3 * MiB)
    out = tmp_path / "out"
    out.mkdir()
    with fault_proxy(fresh_emulator.url) as proxy:
        dropbox_connection(monkeypatch, fresh_emulator, tmp_path, "dbx_faults", host=proxy.url)
        hook = DropboxHook("dbx_faults", retry_policy=FAST, verify_checksums=verify)
        hook.upload_file(tmp_path / "src.bin", "/faults/src.bin")

        proxy.add(ProxyRule("files/upload", corrupt_request=True))
        if verify:
            with pytest.raises(ChecksumMismatch, match="upload it again"):
                hook.upload_file(tmp_path / "src.bin", "/faults/sent.bin")
        else:  # the trade-off: Dropbox stored what arrived, and nothing compared it
            stored = hook.upload_file(tmp_path / "src.bin", "/faults/sent.bin")
            assert stored.size == len(data)

        proxy.add(ProxyRule("files/download", corrupt_response=True))
        if verify:
            with pytest.raises(ChecksumMismatch, match="nothing was kept"):
                hook.download_file("/faults/src.bin", out / "corrupt.bin")
            assert list(out.iterdir()) == []
        else:
            hook.download_file("/faults/src.bin", out / "corrupt.bin")
            kept = (out / "corrupt.bin").read_bytes()
            assert len(kept) == len(data) and kept != data
            (out / "corrupt.bin").unlink()

        proxy.add(ProxyRule("files/download", cut_after=MiB))
        with pytest.raises(TransportError):
            hook.download_file("/faults/src.bin", out / "cut.bin")
        proxy.add(ProxyRule("files/download", close_after=MiB))  # short, but cleanly closed
        with pytest.raises(TransportError):
            hook.download_file("/faults/src.bin", out / "short.bin")
        proxy.add(ProxyRule("files/download", cut_after=MiB))
        with pytest.raises(TransportError):
            hook.read_bytes("/faults/src.bin")
        assert list(out.iterdir()) == []  # neither the short file nor its temporary file
        hook.download_file("/faults/src.bin", out / "whole.bin")
        assert (out / "whole.bin").read_bytes() == data
        hook.close()


# ------------------------------------------------------------------------------- Box uploads


@pytest.mark.parametrize("verify", [True, False])
def test_box_direct_upload_sends_content_md5_only_when_verifying(
    verify: bool, monkeypatch: pytest.MonkeyPatch, fresh_emulator: RunningEmulator, tmp_path: Path
) -> None:
    data = random_file(tmp_path / "small.bin", 2 * MiB + 3)
    with fault_proxy(fresh_emulator.url) as proxy:
        box_via(monkeypatch, fresh_emulator, tmp_path, "box_up", proxy.url)
        hook = BoxHook("box_up", retry_policy=FAST, verify_checksums=verify)
        entry = hook.upload_file(tmp_path / "small.bin", "/up/small.bin")
        again = hook.upload_file(tmp_path / "small.bin", "/up/small.bin")  # same bytes: done, no conflict
        sent = headers_of(proxy, "POST", "/files/content")
        hook.download_file(entry.ref, tmp_path / "back.bin")
        hook.close()
    assert entry.content_hash == hashlib.sha1(data, usedforsecurity=False).hexdigest()
    assert again.id == entry.id
    assert len(sent) == 2
    assert all(("content-md5" in headers) is verify for headers in sent)
    assert (tmp_path / "back.bin").read_bytes() == data


def test_box_chunked_upload_keeps_the_digests_box_requires(
    monkeypatch: pytest.MonkeyPatch, fresh_emulator: RunningEmulator, tmp_path: Path
) -> None:
    data = random_file(tmp_path / "big.bin", 20_000_000)
    with fault_proxy(fresh_emulator.url) as proxy:
        box_via(monkeypatch, fresh_emulator, tmp_path, "box_big", proxy.url, verify_checksums="false")
        hook = BoxHook("box_big", retry_policy=FAST)
        entry = hook.upload_file(tmp_path / "big.bin", "/up/big.bin")
        hook.download_file(entry.ref, tmp_path / "back.bin")
        hook.close()
    parts = [h for h in headers_of(proxy, "PUT", "/upload_sessions/") if "content-range" in h]
    commits = headers_of(proxy, "POST", "/commit")
    assert len(parts) == 3 and all(h["digest"].startswith("sha=") for h in parts)
    assert len(commits) == 1 and commits[0]["digest"].startswith("sha=")
    assert entry.content_hash == hashlib.sha1(data, usedforsecurity=False).hexdigest()
    assert (tmp_path / "back.bin").read_bytes() == data


# ------------------------------------------------------------------------------- Box downloads


def test_box_download_of_an_id_without_checksums_skips_the_metadata_request(
    monkeypatch: pytest.MonkeyPatch, fresh_emulator: RunningEmulator, tmp_path: Path
) -> None:
    box_oauth_connection(monkeypatch, fresh_emulator, tmp_path, "box_ids")
    checking = BoxHook("box_ids", retry_policy=FAST)
    quick = BoxHook("box_ids", retry_policy=FAST, verify_checksums=False)
    data = random_file(tmp_path / "src.bin", 3 * MiB + 1)
    entry = checking.upload_file(tmp_path / "src.bin", "/ids/src.bin")

    fresh_emulator.client.clear_stats()
    quick.download_file(entry.ref, tmp_path / "a.bin")  # id:123
    quick.download_file(entry.id, tmp_path / "b.bin")  # 123
    assert quick.read_bytes(entry.ref) == data
    routes = box_routes(fresh_emulator)
    assert metadata_gets(routes) == 0
    assert answered(routes, CONTENT_GET, "302") == 3 and answered(routes, "/d/1/", "200") == 3

    fresh_emulator.client.clear_stats()
    checking.download_file(entry.ref, tmp_path / "c.bin")  # verifying: the SHA-1 comes from the metadata
    assert metadata_gets(box_routes(fresh_emulator)) == 1
    quick.download_file("/ids/src.bin", tmp_path / "d.bin")  # a path still resolves (cached) and is fetched
    for name in "abcd":
        assert (tmp_path / f"{name}.bin").read_bytes() == data
    checking.close()
    quick.close()


@pytest.mark.parametrize("verify", [True, False])
def test_box_download_corruption_and_cuts(
    verify: bool, monkeypatch: pytest.MonkeyPatch, fresh_emulator: RunningEmulator, tmp_path: Path
) -> None:
    """A corrupted body is refused only when verifying; a cut one resumes with Range (the size from the
    answer's Content-Length when no metadata was read), and one cut every time fails leaving nothing."""
    data = random_file(tmp_path / "src.bin", 5 * MiB)
    out = tmp_path / "out"
    out.mkdir()
    with fault_proxy(fresh_emulator.url) as proxy:
        box_via(monkeypatch, fresh_emulator, tmp_path, "box_faults", proxy.url)
        hook = BoxHook("box_faults", retry_policy=FAST, verify_checksums=verify)
        ref = hook.upload_file(tmp_path / "src.bin", "/faults/src.bin").ref

        proxy.add(ProxyRule("/d/1/", corrupt_response=True))
        if verify:
            with pytest.raises(ChecksumMismatch, match="nothing was written"):
                hook.download_file(ref, out / "corrupt.bin")
            assert list(out.iterdir()) == []
        else:
            hook.download_file(ref, out / "corrupt.bin")
            kept = (out / "corrupt.bin").read_bytes()
            assert len(kept) == len(data) and kept != data
            (out / "corrupt.bin").unlink()

        fresh_emulator.client.clear_stats()
        proxy.add(ProxyRule("/d/1/", close_after=3 * MiB))  # a short body, the connection closed cleanly
        hook.download_file(ref, out / "resumed.bin")
        assert (out / "resumed.bin").read_bytes() == data
        routes = box_routes(fresh_emulator)
        assert answered(routes, "/d/1/", "206") == 1  # resumed where it broke off
        assert metadata_gets(routes) == (1 if verify else 0)

        proxy.add(ProxyRule("/d/1/", cut_after=MiB, count=100))
        with pytest.raises(TransportError, match="nothing was written"):
            hook.download_file(ref, out / "cut.bin")
        assert sorted(p.name for p in out.iterdir()) == ["resumed.bin"]
        proxy.rules.clear()
        hook.close()


def upload_many(hook: BoxHook, tmp_path: Path, count: int) -> dict[str, bytes]:
    sources = {f"f{i}.bin": random_file(tmp_path / "many" / f"f{i}.bin", 100_000 + i) for i in range(count)}
    hook.upload_files([(tmp_path / "many" / name, "/many/") for name in sources])
    return sources


@pytest.mark.parametrize("verify", [True, False])
def test_box_listed_entries_download_with_two_requests_per_file(
    verify: bool, monkeypatch: pytest.MonkeyPatch, fresh_emulator: RunningEmulator, tmp_path: Path
) -> None:
    """N listed files -> exactly N content requests (302) and N pre-signed fetches, no metadata GETs: the
    listing's size and SHA-1 are what the download checks against."""
    box_oauth_connection(monkeypatch, fresh_emulator, tmp_path, "box_many")
    hook = BoxHook("box_many", retry_policy=FAST, verify_checksums=verify)
    sources = upload_many(hook, tmp_path, 6)
    entries = list(hook.list("/many"))
    assert all(e.size is not None and e.content_hash for e in entries)
    fresh_emulator.client.clear_stats()
    written = hook.download_files([(e, tmp_path / "back" / e.name) for e in entries], max_active_transfers=3)
    routes = box_routes(fresh_emulator)
    assert metadata_gets(routes) == 0
    assert answered(routes, CONTENT_GET, "302") == 6 and answered(routes, "/d/1/", "200") == 6
    assert sum(sum(c.values()) for c in routes.values()) == 12
    assert {p.name: p.read_bytes() for p in written} == sources
    hook.close()


def test_box_download_operator_glob_uses_the_listing(
    monkeypatch: pytest.MonkeyPatch, fresh_emulator: RunningEmulator, tmp_path: Path
) -> None:
    box_oauth_connection(monkeypatch, fresh_emulator, tmp_path, "box_op")
    hook = BoxHook("box_op", retry_policy=FAST)
    sources = upload_many(hook, tmp_path, 4)
    hook.close()
    fresh_emulator.client.clear_stats()
    operator = BoxDownloadOperator(
        task_id="down", conn_id="box_op", remote_path="/many/*.bin", local_path=str(tmp_path / "got")
    )
    written = operator.execute({})  # type: ignore[arg-type]
    routes = box_routes(fresh_emulator)
    assert metadata_gets(routes) == 0
    assert answered(routes, CONTENT_GET, "302") == 4 and answered(routes, "/d/1/", "200") == 4
    assert {Path(p).name: Path(p).read_bytes() for p in written} == sources


def test_box_listed_entry_changed_since_listing_is_fetched_as_it_is_now(
    monkeypatch: pytest.MonkeyPatch, fresh_emulator: RunningEmulator, tmp_path: Path
) -> None:
    """The listing's SHA-1 is stale once the file gets a new version: the mismatch is checked against the
    file's metadata and the current content is downloaded, not reported as corruption."""
    box_oauth_connection(monkeypatch, fresh_emulator, tmp_path, "box_stale")
    hook = BoxHook("box_stale", retry_policy=FAST)
    random_file(tmp_path / "v1.bin", 200_000)
    hook.upload_file(tmp_path / "v1.bin", "/stale/data.bin")
    (entry,) = hook.list("/stale")
    newer = random_file(tmp_path / "v2.bin", 150_000)
    hook.upload_file(tmp_path / "v2.bin", "/stale/data.bin", overwrite=True)
    fresh_emulator.client.clear_stats()
    hook.download_file(entry, tmp_path / "got.bin")
    assert (tmp_path / "got.bin").read_bytes() == newer
    routes = box_routes(fresh_emulator)
    assert metadata_gets(routes) == 1 and answered(routes, CONTENT_GET, "302") == 2
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".part")) == []
    hook.close()
