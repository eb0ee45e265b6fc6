"""Local paths of the file operators: which local files an upload takes, where a download lands."""

from __future__ import annotations

import glob
import os
from pathlib import Path

from dropbox_box_provider.hooks.matching import has_glob, local_file, safe_local_child


def local_sources(pattern: str | os.PathLike[str]) -> list[Path]:
    """The local files a path or glob names (sorted); a plain path that is not a file raises."""
    text = os.fspath(pattern)
    if has_glob(text):
        return sorted(Path(p) for p in glob.glob(text) if Path(p).is_file())
    return [local_file(text, "give a local file path or a glob such as '/data/*.csv'")]


def local_target(local_path: str | os.PathLike[str], name: str, *, into_folder: bool) -> Path:
    """Where a downloaded file goes: inside ``local_path`` (a folder, created; the remote name must stay
    inside it, else UnsafePath) or ``local_path`` itself."""
    base = Path(local_path)
    if into_folder or base.is_dir() or os.fspath(local_path).endswith(("/", os.sep)):
        base.mkdir(parents=True, exist_ok=True)
        return safe_local_child(base, name)
    base.parent.mkdir(parents=True, exist_ok=True)
    return base
