"""Asset URIs of ``dropbox://`` and ``box://`` and the lineage each transfer reports once, read through a
registered ``HookLineageReader`` (the default collector is a no-op)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from airflow.sdk import Asset, ObjectStoragePath

from dropbox_box_provider.errors import InvalidArgument, NotFound
from dropbox_box_provider.hooks.box import BoxHook
from dropbox_box_provider.hooks.dropbox import DropboxHook
from dropbox_box_provider.hooks.files import RemoteFiles
from dropbox_box_provider.lineage import (
    create_box_asset,
    create_dropbox_asset,
    reported_elsewhere,
    sanitize_uri,
)
from dropbox_box_provider.operators.box import BoxDownloadOperator, BoxUploadOperator
from dropbox_box_provider.operators.dropbox import DropboxDownloadOperator, DropboxUploadOperator
from dropbox_box_provider.operators.remote_transfer import BoxToDropboxOperator, DropboxToBoxOperator
from tests.fixtures.emulator import RunningEmulator
from tests.fs.conftest import BOX_CONN, DROPBOX_CONN, url


def get_fresh(collector: object) -> object:
    """A new, empty collector (the next calls' lineage only)."""
    from airflow.sdk.lineage import get_hook_lineage_collector

    get_hook_lineage_collector.cache_clear()
    return get_hook_lineage_collector()


@pytest.fixture
def collector(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """The real HookLineageCollector, switched on by registering a HookLineageReader plugin."""
    from airflow.sdk import plugins_manager
    from airflow.sdk.lineage import HookLineageReader, get_hook_lineage_collector

    monkeypatch.setattr(plugins_manager, "get_hook_lineage_readers_plugins", lambda: [HookLineageReader])
    get_hook_lineage_collector.cache_clear()
    yield get_hook_lineage_collector()
    get_hook_lineage_collector.cache_clear()


def uris(collector: object) -> tuple[set[str], set[str]]:
    collected = collector.collected_assets  # type: ignore[attr-defined]
    return {i.asset.uri for i in collected.inputs}, {o.asset.uri for o in collected.outputs}


def counts(collector: object) -> tuple[Counter[str], Counter[str]]:
    """How often each input and output URI was reported (summed over the contexts that reported it)."""
    collected = collector.collected_assets  # type: ignore[attr-defined]
    inputs: Counter[str] = Counter()
    outputs: Counter[str] = Counter()
    for info in collected.inputs:
        inputs[info.asset.uri] += info.count
    for info in collected.outputs:
        outputs[info.asset.uri] += info.count
    return inputs, outputs


def reporters(collector: object) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Who reported each input and output URI: one class name per (asset, reporting object) entry."""
    collected = collector.collected_assets  # type: ignore[attr-defined]
    found: tuple[dict[str, list[str]], dict[str, list[str]]] = ({}, {})
    for side, infos in zip(found, (collected.inputs, collected.outputs), strict=True):
        for info in infos:
            side.setdefault(info.asset.uri, []).append(type(info.context).__name__)
    return found


def hook_of(scheme: str) -> Any:
    return DropboxHook(DROPBOX_CONN) if scheme == "dropbox" else BoxHook(BOX_CONN)


def file_uri(path: Path) -> str:
    return f"file://{path.absolute()}"


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("dropbox://conn@/Inbox/a.csv", "dropbox://conn@/Inbox/a.csv"),
        ("dropbox://conn/Inbox//a.csv/", "dropbox://conn@/Inbox/a.csv"),
        ("dropbox:///inbox/a.csv", "dropbox://dropbox_default@/inbox/a.csv"),
        ("box://b@/Cafe\u0301/r.csv", "box://b@/Caf\u00e9/r.csv"),  # NFC
    ],
)
def test_one_canonical_uri(given: str, canonical: str) -> None:
    assert sanitize_uri(urlsplit(given)).geturl() == canonical
    assert Asset(uri=given).uri == canonical  # Airflow applies the provider's handler


@pytest.mark.parametrize("bad", ["dropbox://conn@host/a", "box://conn@/", "s3://b/k"])
def test_bad_uris_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match=r"dropbox://|box://|file path"):
        sanitize_uri(urlsplit(bad))


def test_factories_and_object_storage_path_agree(services: RunningEmulator) -> None:
    assert create_dropbox_asset(path="inbox/a.csv", conn_id="c").uri == "dropbox://c@/inbox/a.csv"
    assert create_box_asset(path="/r/x.csv").uri == "box://box_default@/r/x.csv"
    path = ObjectStoragePath(url("dropbox", "/inbox/a.csv"))
    assert Asset(uri=str(path)).uri == str(path) == f"dropbox://{DROPBOX_CONN}@/inbox/a.csv"


def test_object_storage_path_copy_reports_once(services: RunningEmulator, collector: object) -> None:
    src = ObjectStoragePath(url("dropbox", "/lineage/a.csv"))
    dst = ObjectStoragePath(url("box", "/lineage/a.csv"))
    src.write_bytes(b"a,1\n")
    src.copy(dst)
    inputs, outputs = uris(collector)
    assert inputs == {f"dropbox://{DROPBOX_CONN}@/lineage/a.csv"}
    assert outputs == {f"box://{BOX_CONN}@/lineage/a.csv"}  # the hooks under the filesystems add nothing
    # One report each, by ObjectStoragePath (it counts each read() call of its copy loop); none by a hook.
    assert reporters(collector) == (
        {f"dropbox://{DROPBOX_CONN}@/lineage/a.csv": ["ObjectStoragePath"]},
        {f"box://{BOX_CONN}@/lineage/a.csv": ["ObjectStoragePath"]},
    )


def test_object_storage_path_same_service_copy_reports_once(scheme: str, collector: object) -> None:
    src = ObjectStoragePath(url(scheme, "/same/a.csv"))
    src.write_bytes(b"a,1\n")
    src.copy(ObjectStoragePath(url(scheme, "/same/b.csv")))  # server-side: the filesystem calls hook.copy()
    assert counts(collector) == (
        Counter({url(scheme, "/same/a.csv"): 1}),
        Counter({url(scheme, "/same/b.csv"): 1}),
    )
    assert reporters(collector) == (
        {url(scheme, "/same/a.csv"): ["ObjectStoragePath"]},
        {url(scheme, "/same/b.csv"): ["ObjectStoragePath"]},
    )


def test_direct_hook_calls_report_once(scheme: str, collector: object, tmp_path: Path) -> None:
    hook = hook_of(scheme)
    local = tmp_path / "in.csv"
    local.write_bytes(b"a,1\n")
    hook.upload_file(local, "/hooked/a.csv")
    assert counts(collector) == (Counter({file_uri(local): 1}), Counter({url(scheme, "/hooked/a.csv"): 1}))

    fresh = get_fresh(collector)
    back = tmp_path / "out.csv"
    hook.download_file(hook.info("/hooked/a.csv").ref, back)  # by id: reported under its path
    assert counts(fresh) == (Counter({url(scheme, "/hooked/a.csv"): 1}), Counter({file_uri(back): 1}))

    fresh = get_fresh(collector)
    hook.write_bytes("/hooked/b.csv", b"b")
    assert hook.read_bytes("/hooked/b.csv") == b"b"
    assert counts(fresh) == (
        Counter({url(scheme, "/hooked/b.csv"): 1}),
        Counter({url(scheme, "/hooked/b.csv"): 1}),
    )

    fresh = get_fresh(collector)
    hook.copy("/hooked/b.csv", "/hooked/c.csv")
    moved_id = hook.info("/hooked/c.csv").ref
    hook.move(moved_id, "/hooked/d.csv")  # by id: the source is the path it had before the move
    assert counts(fresh) == (
        Counter({url(scheme, "/hooked/b.csv"): 1, url(scheme, "/hooked/c.csv"): 1}),
        Counter({url(scheme, "/hooked/c.csv"): 1, url(scheme, "/hooked/d.csv"): 1}),
    )

    fresh = get_fresh(collector)
    with reported_elsewhere():
        hook.copy("/hooked/d.csv", "/hooked/e.csv")
        hook.read_bytes("/hooked/e.csv")
    assert counts(fresh) == (Counter(), Counter())


def test_hooks_report_nothing_without_a_reader(services: RunningEmulator, tmp_path: Path) -> None:
    from airflow.sdk.lineage import NoOpCollector, get_hook_lineage_collector

    get_hook_lineage_collector.cache_clear()
    assert isinstance(get_hook_lineage_collector(), NoOpCollector)
    hook: RemoteFiles = DropboxHook(DROPBOX_CONN)
    hook.write_bytes("/quiet/a.csv", b"a")  # the default no-op collector: the call works, nothing looked up
    assert hook.read_bytes("/quiet/a.csv") == b"a"


def test_transfer_operators_move_verify_and_report(services: RunningEmulator, collector: object) -> None:
    ObjectStoragePath(url("dropbox", "/out/a.csv")).write_bytes(b"a,1\n")
    ObjectStoragePath(url("dropbox", "/out/b.txt")).write_bytes(b"b")
    operator = DropboxToBoxOperator(
        task_id="t",
        dropbox_conn_id=DROPBOX_CONN,
        box_conn_id=BOX_CONN,
        dropbox_path="/out/*.csv",
        box_folder="/in",
    )
    result = operator.execute({})  # type: ignore[arg-type]
    assert [(r["source"], r["destination"], r["action"]) for r in result] == [
        ("/out/a.csv", "/in/a.csv", "copied")
    ]
    assert ObjectStoragePath(url("box", "/in/a.csv")).read_bytes() == b"a,1\n"
    before = counts(collector)
    assert uris(collector) == (
        {f"dropbox://{DROPBOX_CONN}@/out/a.csv"},
        {f"box://{BOX_CONN}@/in/a.csv"},
    )
    fresh = get_fresh(collector)
    result = operator.execute({})  # type: ignore[arg-type]
    assert [r["action"] for r in result] == ["unchanged"]
    # Once per file: the operator reports, the hooks it calls (download to a spool, upload) do not.
    assert counts(fresh) == (
        Counter({f"dropbox://{DROPBOX_CONN}@/out/a.csv": 1}),
        Counter({f"box://{BOX_CONN}@/in/a.csv": 1}),
    )
    assert before[0][f"dropbox://{DROPBOX_CONN}@/out/a.csv"] == 1

    back = BoxToDropboxOperator(
        task_id="back",
        box_conn_id=BOX_CONN,
        dropbox_conn_id=DROPBOX_CONN,
        box_path="/in/a.csv",
        dropbox_folder="/out",
    )
    assert [r["action"] for r in back.execute({})] == ["unchanged"]  # type: ignore[arg-type]
    ObjectStoragePath(url("box", "/in/a.csv")).write_bytes(b"a,2\n")
    assert [r["action"] for r in back.execute({})] == ["replaced"]  # type: ignore[arg-type]
    assert ObjectStoragePath(url("dropbox", "/out/a.csv")).read_bytes() == b"a,2\n"


@pytest.mark.parametrize(
    ("upload_class", "download_class"),
    [(DropboxUploadOperator, DropboxDownloadOperator), (BoxUploadOperator, BoxDownloadOperator)],
)
def test_upload_and_download_operators_report_each_file_once(
    services: RunningEmulator,
    collector: object,
    tmp_path: Path,
    upload_class: type[DropboxUploadOperator | BoxUploadOperator],
    download_class: type[DropboxDownloadOperator | BoxDownloadOperator],
) -> None:
    scheme = "dropbox" if upload_class is DropboxUploadOperator else "box"
    conn = DROPBOX_CONN if scheme == "dropbox" else BOX_CONN
    source = tmp_path / "source"
    source.mkdir()
    for name in ("a.csv", "b.csv"):
        (source / name).write_text(name)
    upload_class(
        task_id="up",
        conn_id=conn,
        local_path=str(source / "*.csv"),
        remote_path="/ops/",
        max_active_transfers=2,
    ).execute({})  # type: ignore[arg-type]
    remote = {name: url(scheme, f"/ops/{name}") for name in ("a.csv", "b.csv")}
    assert counts(collector) == (
        Counter({file_uri(source / "a.csv"): 1, file_uri(source / "b.csv"): 1}),
        Counter({remote["a.csv"]: 1, remote["b.csv"]: 1}),
    )

    fresh = get_fresh(collector)
    target = tmp_path / "target"
    download_class(task_id="down", conn_id=conn, remote_path="/ops/*.csv", local_path=str(target)).execute({})  # type: ignore[arg-type]
    assert counts(fresh) == (
        Counter({remote["a.csv"]: 1, remote["b.csv"]: 1}),
        Counter({file_uri(target / "a.csv"): 1, file_uri(target / "b.csv"): 1}),
    )


def test_transfer_with_no_match_fails_unless_allowed(services: RunningEmulator) -> None:
    kwargs = {"dropbox_conn_id": DROPBOX_CONN, "box_conn_id": BOX_CONN, "box_folder": "/in"}
    ObjectStoragePath(url("dropbox", "/empty")).mkdir()
    with pytest.raises(InvalidArgument, match="allow_empty=True"):
        DropboxToBoxOperator(task_id="a", dropbox_path="/empty/*.csv", **kwargs).execute({})  # type: ignore[arg-type]
    allowed = DropboxToBoxOperator(task_id="b", dropbox_path="/empty/*.csv", allow_empty=True, **kwargs)
    assert allowed.execute({}) == []  # type: ignore[arg-type]
    with pytest.raises(NotFound):
        DropboxToBoxOperator(task_id="c", dropbox_path="/empty/missing.csv", **kwargs).execute({})  # type: ignore[arg-type]


def test_openlineage_dataset_names_the_connection() -> None:
    """The converter, directly and as the OpenLineage provider finds it (provider info ``asset-uris``)."""
    from airflow.providers.openlineage.utils.utils import translate_airflow_asset

    from dropbox_box_provider.lineage import convert_asset_to_openlineage

    dataset = convert_asset_to_openlineage(Asset(uri="box://b@/r/x.csv"), None)
    assert (dataset.namespace, dataset.name) == ("box://b", "/r/x.csv")
    for uri, namespace, name in [
        ("box://b@/r/x.csv", "box://b", "/r/x.csv"),
        ("dropbox:///Inbox/a.csv", "dropbox://dropbox_default", "/Inbox/a.csv"),
    ]:
        translated = translate_airflow_asset(Asset(uri=uri), None)
        assert translated is not None, f"the OpenLineage provider found no converter for {uri}"
        assert (translated.namespace, translated.name) == (namespace, name)
