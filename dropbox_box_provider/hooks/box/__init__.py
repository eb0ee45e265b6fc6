"""The Box hook, split by seam: ``paths`` (the I/O-free resolver), ``upload``, ``download``, ``hook``."""

from dropbox_box_provider.hooks.box.hook import BoxHook
from dropbox_box_provider.hooks.box.paths import split_path
from dropbox_box_provider.hooks.box.upload import CHUNKED_THRESHOLD

__all__ = ["CHUNKED_THRESHOLD", "BoxHook", "split_path"]

# The hook's public home is this package, the path provider info names (httpx does the same).
BoxHook.__module__ = __name__
