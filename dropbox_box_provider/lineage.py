"""Assets and lineage of ``dropbox://`` and ``box://`` (provider info ``asset-uris``), and the one place
operators report a transfer to Airflow's hook lineage collector.

``ObjectStoragePath`` reports its own reads and writes; the remote-to-remote operators report theirs here;
the hooks report nothing, so each transfer is reported once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult, urlsplit

from dropbox_box_provider.uris import DEFAULT_CONN_IDS, canonical_uri, normalize

if TYPE_CHECKING:
    from airflow.sdk import Asset, BaseHook


def sanitize_uri(uri: SplitResult) -> SplitResult:
    """Airflow's asset URI handler: ``scheme://CONN_ID@/path`` with the canonical path (a missing
    connection id becomes the scheme's default, ``scheme://CONN_ID/path`` gains its ``@``)."""
    if uri.scheme not in DEFAULT_CONN_IDS:
        raise ValueError(f"{uri.scheme!r} is not a Dropbox or Box URI; use dropbox:// or box://")
    conn_id, at, host = uri.netloc.rpartition("@")
    if not at:
        conn_id, host = uri.netloc, ""
    conn_id = conn_id or DEFAULT_CONN_IDS[uri.scheme]
    if host:
        raise ValueError(
            f"{uri.geturl()!r} names a host; write {uri.scheme}://CONN_ID@/path "
            "(the connection, then the path)"
        )
    path = normalize(uri.path)
    if path == "/":
        raise ValueError(f"{uri.geturl()!r} has no file path; an asset is a file or folder below the root")
    return SplitResult(uri.scheme, f"{conn_id}@", path, "", "")


def create_asset(
    *, scheme: str = "dropbox", conn_id: str | None = None, path: str, extra: Any = None
) -> Asset:
    """An ``Asset`` of a Dropbox or Box file (the ``factory`` of provider info ``asset-uris``)."""
    from airflow.sdk import Asset

    return Asset(uri=canonical_uri(scheme, conn_id, path), extra=extra)


def create_dropbox_asset(*, path: str, conn_id: str | None = None, extra: Any = None) -> Asset:
    """``create_asset`` for ``dropbox://``."""
    return create_asset(scheme="dropbox", conn_id=conn_id, path=path, extra=extra)


def create_box_asset(*, path: str, conn_id: str | None = None, extra: Any = None) -> Asset:
    """``create_asset`` for ``box://``."""
    return create_asset(scheme="box", conn_id=conn_id, path=path, extra=extra)


def convert_asset_to_openlineage(asset: Asset, lineage_context: Any) -> Any:
    """OpenLineage dataset of an asset: namespace ``scheme://CONN_ID``, name the path."""
    from airflow.providers.common.compat.openlineage.facet import Dataset

    parts = urlsplit(asset.uri)
    conn_id = parts.netloc.rpartition("@")[0] or parts.netloc
    return Dataset(namespace=f"{parts.scheme}://{conn_id}", name=parts.path)


def report_transfer(source: BaseHook, source_uri: str, dest: BaseHook, dest_uri: str) -> None:
    """One transfer's input and output (canonical URIs, each with the hook that moved it) to the hook
    lineage collector (a no-op unless a ``HookLineageReader`` is registered)."""
    from airflow.sdk.lineage import get_hook_lineage_collector

    collector = get_hook_lineage_collector()
    collector.add_input_asset(context=source, uri=source_uri)
    collector.add_output_asset(context=dest, uri=dest_uri)
