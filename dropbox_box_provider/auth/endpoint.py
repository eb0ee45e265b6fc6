"""The endpoint override rule: plain ``http`` only to this machine, unless a connection explicitly opts in.

A refresh sends ``refresh_token`` and ``client_secret`` to the endpoint and every API call a bearer token,
so clear text is refused for any host but loopback (127.0.0.0/8, ::1, localhost). The opt-in,
``allow_insecure_endpoint``, logs a warning once per process and connection.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

_WARNED: set[tuple[str | None, str]] = set()
_WARNED_LOCK = threading.Lock()


def is_loopback_host(host: str | None) -> bool:
    """True for ``localhost`` and any 127.0.0.0/8 or ::1 address (not a name that merely starts with 127)."""
    if not host:
        return False
    name = host.strip().strip("[]").lower().rstrip(".")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def is_clear_text_to_remote(endpoint: str) -> bool:
    """True when ``endpoint`` is plain ``http`` to a non-loopback host (secrets would cross a network)."""
    try:
        parts = urlsplit(endpoint.strip())
        return parts.scheme.lower() == "http" and not is_loopback_host(parts.hostname)
    except ValueError:
        return False


def insecure_endpoint_problem(shown_endpoint: str) -> str:
    """The what-to-do message for a refused plain-http endpoint."""
    return (
        f"Host (endpoint override) {shown_endpoint} is plain http to a host that is not this machine: "
        "tokens, refresh tokens and the client secret would cross the network in clear text. Use https, "
        "or http only to 127.0.0.1 / ::1 / localhost; to accept clear text anyway (e.g. a test proxy on a "
        'trusted network) set the extra "allow_insecure_endpoint": true'
    )


def warn_insecure_endpoint(conn_id: str | None, shown_endpoint: str) -> None:
    """Log, once per process and connection, that secrets go to ``shown_endpoint`` in clear text."""
    key = (conn_id, shown_endpoint)
    with _WARNED_LOCK:
        if key in _WARNED:
            return
        _WARNED.add(key)
    log.warning(
        "connection %r sends tokens and its client secret in clear text to %s (allow_insecure_endpoint is "
        "true); use https unless this network is trusted",
        conn_id or "<unnamed>",
        shown_endpoint,
    )


def forget_warnings() -> None:
    """Forget which connections were warned about (tests)."""
    with _WARNED_LOCK:
        _WARNED.clear()
