"""Reading this process's Airflow configuration: the secrets backend setting and ``[core] fernet_key``.

Mirrors how Airflow itself picks the backend (``[workers] secrets_backend`` in task processes, falling back
to ``[secrets] backend``; kwargs from the matching JSON option plus ``AIRFLOW__<SECTION>__<KWARG>__<NAME>``
environment variables), without building anything.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any


def _conf() -> Any:
    """The SDK's configuration where it exists (task processes), else Airflow core's."""
    try:
        from airflow.sdk.configuration import conf
    except ImportError:  # pragma: no cover - Airflow without the task SDK's configuration module
        from airflow.configuration import conf
    return conf


def get_option(section: str, key: str) -> str:
    """``[section] key`` as stripped text ('' when unset or unreadable)."""
    try:
        value = _conf().get(section, key, fallback="")
    except Exception:  # a broken config must not break a connection lookup; callers treat '' as unset
        return ""
    return str(value or "").strip()


#: What Airflow 3.3's task SDK returns for an unset ``[core] fernet_key``: its config template's placeholder.
UNSET_FERNET_KEY = "{FERNET_KEY}"


def fernet_key() -> str:
    """``[core] fernet_key`` ('' when unset, including the unexpanded ``{FERNET_KEY}`` template value)."""
    value = get_option("core", "fernet_key")
    return "" if value == UNSET_FERNET_KEY else value


def is_server_process() -> bool:
    """True in the api-server, scheduler and CLI commands that mark themselves as server context."""
    return os.environ.get("_AIRFLOW_PROCESS_CONTEXT") == "server"


@dataclass(frozen=True)
class BackendSetting:
    """The configured secrets backend: its class path and kwargs (values may be secret: no repr)."""

    section: str
    class_path: str
    kwargs: dict[str, Any] = field(repr=False)
    kwargs_error: str | None = None


def _kwarg_env_prefix(section: str, kwargs_key: str) -> str:
    return f"AIRFLOW__{section.upper()}__{kwargs_key.replace('_kwargs', '_kwarg').upper()}__"


def backend_setting(worker_mode: bool) -> BackendSetting | None:
    """The backend Airflow builds in this kind of process, or None when none is configured."""
    section, key, kwargs_key = "secrets", "backend", "backend_kwargs"
    if worker_mode and get_option("workers", "secrets_backend"):
        section, key, kwargs_key = "workers", "secrets_backend", "secrets_backend_kwargs"
    class_path = get_option(section, key)
    if not class_path:
        return None
    kwargs: dict[str, Any] = {}
    error = None
    raw = get_option(section, kwargs_key)
    if raw:
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            kwargs = parsed
        else:
            error = f"[{section}] {kwargs_key} is not a JSON object; Airflow ignores it"
    prefix = _kwarg_env_prefix(section, kwargs_key)
    for name, value in os.environ.items():
        if name.startswith(prefix) and name[len(prefix) :]:
            kwargs[name[len(prefix) :].lower()] = value
    return BackendSetting(section, class_path, kwargs, error)
