"""Parameter names of ``apache-airflow-providers-box`` accepted by the Box operators and sensor, so its DAGs
run with only their imports changed; each old name warns once per process with the name to use instead."""

from __future__ import annotations

import warnings
from typing import Any

from dropbox_box_provider.errors import InvalidArgument

_warned: set[tuple[str, str]] = set()


def warn_renamed(owner: str, old: str, new: str) -> None:
    """One DeprecationWarning per (class, old name) per process: naming the new parameter."""
    if (owner, old) in _warned:
        return
    _warned.add((owner, old))
    warnings.warn(
        f"{owner}({old}=...) is the apache-airflow-providers-box name; use {owner}({new}=...) instead "
        "(it works the same here). See docs/migration-from-box-provider.md.",
        DeprecationWarning,
        stacklevel=4,
    )


def renamed(owner: str, old: str, old_value: Any, new: str, new_value: Any, *, default: Any = None) -> Any:
    """The value of parameter ``new``, taking it from its old name ``old`` when only that one was given."""
    if old_value is None:
        return new_value
    if new_value is not None and new_value != default:
        raise InvalidArgument(
            f"{owner} got both {old}={old_value!r} and {new}={new_value!r}; "
            f"pass only {new}= ({old}= is its apache-airflow-providers-box name)"
        )
    warn_renamed(owner, old, new)
    return old_value


def join_pattern(owner: str, path: str, file_pattern: str | None) -> str:
    """``path`` with apache-airflow-providers-box's ``file_pattern`` (a folder plus an fnmatch pattern) as
    this provider's glob in the last path segment, e.g. ``/reports`` + ``*.csv`` -> ``/reports/*.csv``."""
    if not file_pattern:
        return path
    if "/" in file_pattern:
        raise InvalidArgument(
            f"{owner} got file_pattern={file_pattern!r}; a pattern matches names in one folder: put the "
            f"folder in path= and only the name pattern in file_pattern= (or pass path='/folder/*.csv')"
        )
    warn_renamed(owner, "file_pattern", "path='<folder>/<pattern>'")
    return f"{path.rstrip('/')}/{file_pattern}"
