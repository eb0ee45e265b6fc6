"""``UPath`` classes for ``dropbox://`` and ``box://`` (``universal_pathlib`` entry points), so
``ObjectStoragePath`` dispatches to a declared implementation rather than upath's warned fallback."""

from __future__ import annotations

from upath import UPath


class DropboxPath(UPath):
    """A path on a Dropbox connection (fsspec protocol ``dropbox``)."""

    __slots__ = ()


class BoxPath(UPath):
    """A path on a Box connection (fsspec protocol ``box``)."""

    __slots__ = ()
