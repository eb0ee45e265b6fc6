"""The Box hook, split by seam: ``paths`` (the I/O-free resolver), ``upload``, ``download``, ``hook``."""

from typing import Any

from dropbox_box_provider.hooks.box.hook import BoxHook

__all__ = ["CHUNKED_THRESHOLD", "BoxHook", "split_path"]

# The hook's public home is this package, the path provider info names (httpx does the same).
BoxHook.__module__ = __name__


def __getattr__(name: str) -> Any:
    """``CHUNKED_THRESHOLD`` from ``upload`` and ``split_path`` from ``paths``, loaded when asked for (DAG
    files importing the hook do not)."""
    if name == "CHUNKED_THRESHOLD":
        from dropbox_box_provider.hooks.box.upload import CHUNKED_THRESHOLD

        return CHUNKED_THRESHOLD
    if name == "split_path":
        from dropbox_box_provider.hooks.box.paths import split_path

        return split_path
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
