"""What the Dropbox and Box file operators, sensors and triggers share: glob patterns in the last path
segment, "modified after" filters, and local source/target paths."""

from __future__ import annotations

import fnmatch
import glob
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from dropbox_box_provider.errors import InvalidRemotePath

GLOB_CHARS = frozenset("*?[")
T = TypeVar("T")
R = TypeVar("R")


def has_glob(text: str) -> bool:
    """True when ``text`` holds a glob wildcard (``*``, ``?`` or ``[``)."""
    return any(char in GLOB_CHARS for char in text)


def split_remote_pattern(remote: str) -> tuple[str, str | None]:
    """``("/folder", "*.csv")`` for a remote path whose last segment is a glob, else ``(remote, None)``.

    Only the last segment may hold wildcards: folders are listed one at a time, never walked recursively.
    """
    text = str(remote).strip()
    if not has_glob(text):
        return text, None
    folder, _, pattern = text.rstrip("/").rpartition("/")
    if has_glob(folder):
        raise InvalidRemotePath(
            f"remote pattern {remote!r} has wildcards before its last segment; only the file name may hold "
            "them, e.g. '/reports/2024-*.csv'"
        )
    return folder or "/", pattern


def name_matches(name: str, pattern: str) -> bool:
    """Glob match ignoring case (Dropbox and Box compare names case-insensitively)."""
    return fnmatch.fnmatchcase(name.lower(), pattern.lower())


def parse_time(value: datetime | str | float | None) -> datetime | None:
    """An aware UTC datetime from a datetime, ISO-8601 text (a rendered template) or Unix seconds.

    ``None``, empty text and ``"None"`` (a template such as ``{{ prev_start_date_success }}`` on the first
    run) mean "no time"; a naive datetime is taken as UTC.
    """
    if value is None or (isinstance(value, str) and value.strip() in ("", "None")):
        return None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, (int, float)):
        parsed = datetime.fromtimestamp(float(value), tz=UTC)
    else:
        text = value.strip()
        try:
            parsed = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
        except ValueError:
            raise InvalidRemotePath(
                f"{value!r} is not a time: give a datetime, ISO-8601 text such as '2024-05-01T12:00:00Z' or "
                "a template rendering to one (e.g. '{{ data_interval_start }}')"
            ) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def modified_after(modified: str | None, after: datetime | None) -> bool:
    """True when no ``after`` is set, or the service's ``modified`` timestamp is strictly later."""
    if after is None:
        return True
    when = parse_time(modified) if modified else None
    return when is not None and when > after


def iso_or_none(value: datetime | None) -> str | None:
    """ISO-8601 text for trigger kwargs and XComs (which must stay plain JSON)."""
    return value.isoformat() if value is not None else None


def local_sources(pattern: str | os.PathLike[str]) -> list[Path]:
    """The local files a path or glob names (sorted); a plain path that is not a file raises."""
    text = os.fspath(pattern)
    if has_glob(text):
        return sorted(Path(p) for p in glob.glob(text) if Path(p).is_file())
    path = Path(text)
    if not path.is_file():
        raise FileNotFoundError(
            f"{text!r} is not a file; give a local file path or a glob such as '/data/*.csv'"
        )
    return [path]


def local_target(local_path: str | os.PathLike[str], name: str, *, into_folder: bool) -> Path:
    """Where a downloaded file goes: inside ``local_path`` (a folder, created) or ``local_path`` itself."""
    base = Path(local_path)
    if into_folder or base.is_dir() or os.fspath(local_path).endswith(("/", os.sep)):
        base.mkdir(parents=True, exist_ok=True)
        return base / name
    base.parent.mkdir(parents=True, exist_ok=True)
    return base


def summary(entry: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """The XCom-sized part of a service's file object."""
    return {key: entry.get(key) for key in keys if key in entry}


def map_concurrently(func: Callable[[T], R], items: Sequence[T], limit: int) -> list[R]:
    """``[func(i) for i in items]`` with up to ``limit`` calls at once, results in ``items`` order; the
    first failure is raised after the calls already started have finished."""
    if limit <= 1 or len(items) <= 1:
        return [func(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(limit, len(items))) as pool:
        return list(pool.map(func, items))
