"""Which remote files a call means: times (naive = UTC), globs (``**`` crosses folders), ``list``'s filter,
safe local names, and ``find_files`` (a path, ``id:``, or a last-segment glob) for operators, sensors and
triggers. Pure rules over ``RemoteEntry``; the only I/O is through a ``RemoteFiles`` passed in."""

from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from dropbox_box_provider.errors import InvalidArgument, InvalidRemotePath, NotFound, UnsafePath

if TYPE_CHECKING:
    from dropbox_box_provider.hooks.files import RemoteEntry, RemoteFiles

GLOB_CHARS = frozenset("*?[")


def aware_time(value: datetime | str | float | None) -> datetime | None:
    """An aware datetime from a datetime, ISO-8601 text (a rendered template) or Unix seconds.

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
            raise InvalidArgument(
                f"{value!r} is not a time: give a datetime, ISO-8601 text such as '2024-05-01T12:00:00Z' or "
                "a template rendering to one (e.g. '{{ data_interval_start }}')"
            ) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def iso_or_none(value: datetime | None) -> str | None:
    """ISO-8601 text for trigger kwargs and XComs (which must stay plain JSON)."""
    return value.isoformat() if value is not None else None


def has_glob(text: str) -> bool:
    """True when ``text`` holds a glob wildcard (``*``, ``?`` or ``[``)."""
    return any(char in GLOB_CHARS for char in text)


def split_remote_pattern(remote: str) -> tuple[str, str | None]:
    """``("/folder", "*.csv")`` for a remote path whose last segment is a glob, else ``(remote, None)``."""
    text = str(remote).strip()
    if not has_glob(text):
        return text, None
    folder, _, pattern = text.rstrip("/").rpartition("/")
    if has_glob(folder):
        raise InvalidRemotePath(
            f"remote pattern {remote!r} has wildcards before its last segment; only the file name may hold "
            "them, e.g. '/reports/2024-*.csv' (or call list(folder, recursive=True, pattern='**/*.csv'))"
        )
    return folder or "/", pattern


def compile_glob(pattern: str) -> re.Pattern[str]:
    """A case-insensitive regex for a glob: ``*`` and ``?`` stay inside one folder, ``**`` crosses folders
    (``**/`` also matches no folder at all)."""
    out: list[str] = []
    index = 0
    while index < len(pattern):
        if pattern.startswith("**/", index):
            out.append("(?:.*/)?")
            index += 3
        elif pattern.startswith("**", index):
            out.append(".*")
            index += 2
        elif pattern[index] == "*":
            out.append("[^/]*")
            index += 1
        elif pattern[index] == "?":
            out.append("[^/]")
            index += 1
        elif pattern[index] == "[":
            end = pattern.find("]", index + 1)
            if end < 0:
                out.append(re.escape("["))
                index += 1
                continue
            body = pattern[index + 1 : end]
            body = "^" + body[1:] if body.startswith("!") else body
            out.append(f"[{body}]")
            index = end + 1
        else:
            out.append(re.escape(pattern[index]))
            index += 1
    return re.compile("".join(out) + r"\Z", re.IGNORECASE | re.DOTALL)


def name_matches(name: str, pattern: str) -> bool:
    """Glob match of one name, ignoring case (both services compare names case-insensitively)."""
    return fnmatch.fnmatchcase(name.lower(), pattern.lower())


@dataclass(frozen=True)
class EntryFilter:
    """What ``list`` keeps: ``pattern`` is a glob on the entry's name, or on its path relative to the listed
    folder when recursive (``**`` crosses folders); ``modified_after`` keeps entries modified strictly
    later (folders without a time are dropped then)."""

    recursive: bool = False
    pattern: str | None = None
    modified_after: datetime | None = None

    @classmethod
    def of(cls, recursive: bool, pattern: str | None, modified_after: datetime | str | None) -> EntryFilter:
        """Validated filter (naive times are UTC)."""
        if pattern is not None and not isinstance(pattern, str):
            raise InvalidArgument(f"pattern must be a glob string, got {type(pattern).__name__}")
        return cls(bool(recursive), pattern or None, aware_time(modified_after))

    def keeps(self, relative: str, entry: RemoteEntry) -> bool:
        """True when ``entry`` (at ``relative`` below the listed folder) passes."""
        if self.pattern is not None:
            target = relative if self.recursive else entry.name
            if not compile_glob(self.pattern).match(target):
                return False
        if self.modified_after is not None:
            return entry.modified is not None and entry.modified > self.modified_after
        return True


def relative_path(base: str, path: str) -> str:
    """``path`` below ``base`` (both display paths), compared case-insensitively."""
    prefix = base.rstrip("/") + "/"
    return path[len(prefix) :] if path.lower().startswith(prefix.lower()) else path.rsplit("/", 1)[-1]


def local_file(
    local: str | os.PathLike[str], hint: str = "give the path of the local file to upload"
) -> Path:
    """``local`` as a Path when it is a file, else FileNotFoundError saying what to give instead."""
    path = Path(local)
    if not path.is_file():
        raise FileNotFoundError(f"{os.fspath(local)!r} is not a file; {hint}")
    return path


def safe_local_child(folder: str | os.PathLike[str], name: str) -> Path:
    """``folder / name`` for a remote file name, refusing names that would land outside ``folder``."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\x00" in name or ":" in name[:2]:
        raise UnsafePath(
            f"the remote name {name!r} cannot be written inside {os.fspath(folder)!r}: it would escape the "
            "folder; rename the remote file"
        )
    return Path(folder) / name


def find_files(files: RemoteFiles, remote: str, after: datetime | None = None) -> list[RemoteEntry]:
    """Files ``remote`` names (a path, ``id:``, or a glob in its last segment) modified after ``after``;
    ``[]`` when none (a missing folder or file is "nothing yet")."""
    folder, pattern = split_remote_pattern(remote)
    try:
        if pattern is None:
            found = [files.info(folder)]
        else:
            found = list(files.list(folder, pattern=pattern, modified_after=after))
    except NotFound:
        return []
    rules = EntryFilter(modified_after=after)
    return [e for e in found if e.is_file and rules.keeps(e.name, e)]


async def afind_files(files: RemoteFiles, remote: str, after: datetime | None = None) -> list[RemoteEntry]:
    """Async ``find_files`` (triggers)."""
    folder, pattern = split_remote_pattern(remote)
    try:
        if pattern is None:
            found = [await files.ainfo(folder)]
        else:
            found = [e async for e in files.alist(folder, pattern=pattern, modified_after=after)]
    except NotFound:
        return []
    rules = EntryFilter(modified_after=after)
    return [e for e in found if e.is_file and rules.keeps(e.name, e)]
