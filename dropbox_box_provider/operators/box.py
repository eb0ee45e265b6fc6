"""Box file operators: upload local files (a path or a glob) and download remote ones (a path or id, or a
glob in the last path segment, optionally only files modified after a time); copy, move and delete remote
ones."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dropbox_box_provider.errors import InvalidArgument
from dropbox_box_provider.operators._aliases import renamed
from dropbox_box_provider.operators._copy_delete import RemoteCopyOperator, RemoteDeleteOperator
from dropbox_box_provider.operators._transfer import RemoteDownloadOperator, RemoteUploadOperator
from dropbox_box_provider.operators.links import BoxFileLink

if TYPE_CHECKING:
    from dropbox_box_provider.hooks.box import BoxHook

SUMMARY_KEYS = ("id", "name", "size", "sha1", "modified_at")


def _hook(conn_id: str, verify_checksums: bool | None = None) -> BoxHook:
    from dropbox_box_provider.hooks.box import BoxHook

    return BoxHook(conn_id, verify_checksums=verify_checksums)


class BoxUploadOperator(RemoteUploadOperator):
    """Upload ``local_path`` (a file, or a glob of files) to ``remote_path``: a folder id, a folder path
    (missing folders are created; always a folder when ``local_path`` is a glob or it ends with ``/``), or
    the file's full path. ``overwrite=True`` uploads a new version of an existing file, otherwise it fails.

    Returns the uploaded files' metadata (id, name, size, sha1). ``box_conn_id`` and ``box_path`` (the
    apache-airflow-providers-box names) are accepted for ``conn_id`` and ``remote_path``, with a warning.
    """

    service_name = "Box"
    operator_extra_links = (BoxFileLink(),)
    summary_keys = SUMMARY_KEYS

    def __init__(
        self,
        *,
        conn_id: str = "box_default",
        remote_path: str | None = None,
        box_conn_id: str | None = None,
        box_path: str | None = None,
        **kwargs: Any,
    ) -> None:
        conn_id, remote_path = _box_provider_names(
            self, conn_id, remote_path, box_conn_id, box_path, "the Box folder or file to upload to"
        )
        super().__init__(conn_id=conn_id, remote_path=remote_path, **kwargs)

    def get_hook(self) -> BoxHook:
        return _hook(self.conn_id, self.verify_checksums)

    def names_a_folder(self, remote: str) -> bool:
        """A trailing ``/`` or a Box folder id (digits, or ``id:<digits>``)."""
        return remote.endswith("/") or remote.removeprefix("id:").isdigit()


class BoxDownloadOperator(RemoteDownloadOperator):
    """Download from Box: ``remote_path`` is a file path or id, or a glob such as ``/reports/*.csv``.
    ``box_conn_id`` and ``box_path`` (apache-airflow-providers-box names) are accepted, with a warning."""

    service_name = "Box"
    operator_extra_links = (BoxFileLink(),)

    def __init__(
        self,
        *,
        conn_id: str = "box_default",
        remote_path: str | None = None,
        box_conn_id: str | None = None,
        box_path: str | None = None,
        **kwargs: Any,
    ) -> None:
        conn_id, remote_path = _box_provider_names(
            self, conn_id, remote_path, box_conn_id, box_path, "the Box file, id or glob to download"
        )
        super().__init__(conn_id=conn_id, remote_path=remote_path, **kwargs)

    def get_hook(self) -> BoxHook:
        return _hook(self.conn_id, self.verify_checksums)


class BoxCopyOperator(RemoteCopyOperator):
    """Copy (``move=True``: move) Box files or folders: ``source_path`` a path, ``id:``, glob or list;
    ``destination_path`` a folder (``.../``, a folder id, an existing folder, or for several sources) or the
    new full path. Returns each item's metadata at its destination."""

    service_name = "Box"
    operator_extra_links = (BoxFileLink(),)

    def __init__(self, *, conn_id: str = "box_default", **kwargs: Any) -> None:
        super().__init__(conn_id=conn_id, **kwargs)

    def get_hook(self) -> BoxHook:
        return _hook(self.conn_id)

    def names_a_folder(self, remote: str) -> bool:
        """A trailing ``/`` or a Box folder id (digits, or ``id:<digits>``)."""
        return remote.endswith("/") or remote.removeprefix("id:").isdigit()


class BoxDeleteOperator(RemoteDeleteOperator):
    """Delete Box items (a path, ``id:``, glob or list) to the trash; folders only with ``recursive`` unless
    empty; ``missing_ok`` accepts nothing there. Returns the deleted items' metadata."""

    service_name = "Box"

    def __init__(self, *, conn_id: str = "box_default", **kwargs: Any) -> None:
        super().__init__(conn_id=conn_id, **kwargs)

    def get_hook(self) -> BoxHook:
        return _hook(self.conn_id)


def _box_provider_names(  # noqa: PLR0917 - the operators' own parameters, passed through
    operator: object,
    conn_id: str,
    remote_path: str | None,
    box_conn_id: str | None,
    box_path: str | None,
    what: str,
) -> tuple[str, str]:
    """``conn_id`` and ``remote_path``, also from apache-airflow-providers-box's names (warning once)."""
    owner = type(operator).__name__
    conn_id = renamed(owner, "box_conn_id", box_conn_id, "conn_id", conn_id, default="box_default")
    remote_path = renamed(owner, "box_path", box_path, "remote_path", remote_path)
    if remote_path is None:
        raise InvalidArgument(f"{owner} needs remote_path= ({what})")
    return conn_id, remote_path
