"""``box://CONN_ID@/path``: the Box filesystem, and the ``get_fs`` Airflow binds connections with."""

from __future__ import annotations

from typing import Any, ClassVar

from dropbox_box_provider.fs.base import RemoteFileSystem

schemes = ["box"]


class BoxFileSystem(RemoteFileSystem):
    """Files of one Box connection (``BoxHook``: tokens refreshed through the token store)."""

    protocol: ClassVar[tuple[str, ...]] = ("box",)
    default_conn_id: ClassVar[str] = "box_default"

    def make_hook(self, conn_id: str) -> Any:
        """A ``BoxHook`` for ``conn_id``."""
        from dropbox_box_provider.hooks.box import BoxHook

        return BoxHook(conn_id)


def get_fs(conn_id: str | None, storage_options: dict[str, Any] | None = None) -> BoxFileSystem:
    """The filesystem of ``conn_id`` (``box_default`` when None), as Airflow's ``attach`` asks for it."""
    return BoxFileSystem(conn_id=conn_id, **(storage_options or {}))
