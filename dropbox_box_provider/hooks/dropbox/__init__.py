"""The Dropbox hook, split by seam: ``paths`` (paths, metadata), ``upload``, ``download``, ``hook``."""

from dropbox_box_provider.hooks.dropbox.hook import DropboxHook
from dropbox_box_provider.hooks.dropbox.limits import DEFAULT_CHUNK_SIZE, SINGLE_UPLOAD_LIMIT
from dropbox_box_provider.hooks.dropbox.paths import dropbox_api_arg, normalize_path

__all__ = ["DEFAULT_CHUNK_SIZE", "SINGLE_UPLOAD_LIMIT", "DropboxHook", "dropbox_api_arg", "normalize_path"]

# The hook's public home is this package, the path provider info names (httpx does the same).
DropboxHook.__module__ = __name__
