"""Asset URIs of ``dropbox://`` and ``box://`` and the lineage each transfer reports once, read through a
registered ``HookLineageReader`` (the default collector is a no-op)."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from airflow.sdk import Asset, ObjectStoragePath

from dropbox_box_provider.errors import InvalidArgument, NotFound
from dropbox_box_provider.lineage import create_box_asset, create_dropbox_asset, sanitize_uri
from dropbox_box_provider.operators.remote_transfer import BoxToDropboxOperator, DropboxToBoxOperator
from tests.fixtures.emulator import RunningEmulator
from tests.fs.conftest import BOX_CONN, DROPBOX_CONN, url


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
    assert uris(collector) == (
        {f"dropbox://{DROPBOX_CONN}@/out/a.csv"},
        {f"box://{BOX_CONN}@/in/a.csv"},
    )
    assert [r["action"] for r in operator.execute({})] == ["unchanged"]  # type: ignore[arg-type]

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
    pytest.importorskip("airflow.providers.openlineage", reason="the OpenLineage provider is not installed")
    from dropbox_box_provider.lineage import convert_asset_to_openlineage

    dataset = convert_asset_to_openlineage(Asset(uri="box://b@/r/x.csv"), None)
    assert (dataset.namespace, dataset.name) == ("box://b", "/r/x.csv")
