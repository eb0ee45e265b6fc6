"""Assets and lineage of ``dropbox://`` and ``box://`` (provider info ``asset-uris``), and the one place
hooks and operators report a transfer to Airflow's hook lineage collector.

Each transfer is reported once: a hook's file call (``upload_file``, ``download_file``, ``copy``…) reports
itself, unless its caller reports the transfer (``ObjectStoragePath``, whose filesystem calls the hooks inside
``reported_elsewhere()``, and the operators). Airflow's collector is imported at the first file call.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from urllib.parse import SplitResult, urlsplit

from dropbox_box_provider.uris import DEFAULT_CONN_IDS, canonical_uri, normalize

if TYPE_CHECKING:
    from airflow.sdk import Asset, BaseHook

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])
HookCall = Literal["upload_file", "write_bytes", "download_file", "read_bytes", "copy", "move"]

# The remote source argument (the first) of the calls that read a remote file.
_SOURCE_ARGUMENT = {"download_file": "remote", "read_bytes": "remote", "copy": "src", "move": "src"}

# True while the caller reports the transfer itself: the hook calls it makes report nothing.
_REPORTED_ELSEWHERE: ContextVar[bool] = ContextVar("dropbox_box_lineage_reported_elsewhere", default=False)


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


@contextlib.contextmanager
def reported_elsewhere() -> Iterator[None]:
    """Hook calls inside report no lineage: the caller reports the transfer itself (once)."""
    token = _REPORTED_ELSEWHERE.set(True)
    try:
        yield
    finally:
        _REPORTED_ELSEWHERE.reset(token)


def _collector() -> Any:
    """Airflow's hook lineage collector, or None when nothing reads it (no ``HookLineageReader``)."""
    from airflow.sdk.lineage import NoOpCollector, get_hook_lineage_collector

    collector = get_hook_lineage_collector()
    return None if isinstance(collector, NoOpCollector) else collector


def _argument(args: tuple[Any, ...], kwargs: dict[str, Any], index: int, name: str) -> Any:
    return kwargs[name] if name in kwargs else args[index] if len(args) > index else None


def _local_asset(collector: Any, hook: Any, local: Any, output: bool) -> None:
    """A local file as a ``file://`` asset, through Airflow's ``file`` factory (skipped where it has none)."""
    if not isinstance(local, (str, os.PathLike)):
        return
    add = collector.add_output_asset if output else collector.add_input_asset
    add(context=hook, scheme="file", asset_kwargs={"path": str(Path(local).absolute())})


def reports_lineage(call: HookCall) -> Callable[[F], F]:
    """Wrap a hook's file method so a successful call reports its input and output assets (the remote
    file as ``scheme://CONN_ID@/path``, a local file as ``file://``), unless inside
    ``reported_elsewhere()``. Calls it makes itself report nothing more; a lineage failure never fails
    the transfer."""

    def decorate(method: F) -> F:
        @functools.wraps(method)
        def wrapper(hook: Any, *args: Any, **kwargs: Any) -> Any:
            if _REPORTED_ELSEWHERE.get():
                return method(hook, *args, **kwargs)
            with reported_elsewhere():
                collector = _collector()
                if collector is None:
                    return method(hook, *args, **kwargs)
                source = (
                    _argument(args, kwargs, 0, _SOURCE_ARGUMENT[call]) if call in _SOURCE_ARGUMENT else None
                )
                # A moved id's path is its new one afterwards: look the source up first.
                before = _remote_uri(hook, source) if call == "move" else None
                result = method(hook, *args, **kwargs)
                try:
                    source_uri = before if call == "move" else _remote_uri(hook, source)
                    local = _argument(args, kwargs, 0, "local") if call == "upload_file" else None
                    _report(collector, hook, call, source_uri=source_uri, local_source=local, result=result)
                except Exception:  # lineage is best effort: the transfer itself succeeded
                    log.warning(
                        "Could not report the lineage of %s.%s", type(hook).__name__, call, exc_info=True
                    )
                return result

        return wrapper  # type: ignore[return-value]

    return decorate


def report_upload(hook: Any, local: str | os.PathLike[str], entry: Any) -> None:
    """Report one upload made without ``upload_file`` (a batch commit): the local file in, the remote
    file out; nothing inside ``reported_elsewhere()``; a lineage failure never fails the transfer."""
    if _REPORTED_ELSEWHERE.get():
        return
    collector = _collector()
    if collector is None:
        return
    try:
        _report(collector, hook, "upload_file", source_uri=None, local_source=local, result=entry)
    except Exception:
        log.warning("Could not report the lineage of %s.upload_files", type(hook).__name__, exc_info=True)


def report_download(hook: Any, remote_path: str, local: str | os.PathLike[str]) -> None:
    """A download whose hook call ran inside ``reported_elsewhere()`` (the caller knows the file's path, so
    no lookup of its id is needed): input the remote file, output the local one."""
    collector = _collector()
    if collector is not None:
        collector.add_input_asset(context=hook, uri=canonical_uri(hook.service, hook.conn_id, remote_path))
        _local_asset(collector, hook, local, output=True)


def _remote_uri(hook: Any, remote: Any) -> str | None:
    """The canonical URI of a hook's remote argument (an ``id:`` reference is looked up: its path; a listed
    ``RemoteEntry`` carries its path)."""
    if not isinstance(remote, str):
        listed = getattr(remote, "path", None)
        if not isinstance(listed, str) or not listed:
            return None
        return canonical_uri(hook.service, hook.conn_id, listed)
    path = hook.info(remote).path if remote.startswith("id:") else remote
    return canonical_uri(hook.service, hook.conn_id, path)


def _report(
    collector: Any, hook: Any, call: HookCall, *, source_uri: str | None, local_source: Any, result: Any
) -> None:
    """The input (remote URI, or the local file uploaded) and output (the entry written, or the local
    file downloaded) of one hook call."""
    if local_source is not None:
        _local_asset(collector, hook, local_source, output=False)
    elif source_uri is not None:
        collector.add_input_asset(context=hook, uri=source_uri)
    if call == "download_file":
        _local_asset(collector, hook, result, output=True)
    elif call != "read_bytes" and getattr(result, "path", None):
        collector.add_output_asset(context=hook, uri=canonical_uri(hook.service, hook.conn_id, result.path))
