"""Showing store and endpoint URLs without their secrets: the userinfo password and the ``password`` /
``sslpassword`` query parameters (libpq and psycopg accept both forms). A ``passfile`` is a path, shown as is.

Pure ``urllib``: importing it loads neither SQLAlchemy nor a driver.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, quote, unquote, urlsplit

#: Query parameters whose value is a secret (compared case-insensitively).
SECRET_QUERY_PARAMS = frozenset({"password", "sslpassword"})
HIDDEN = "***"
UNPARSABLE = "<unparsable URL>"


def _redact_query(query: str) -> str:
    if not query:
        return query
    parts = []
    for piece in query.split("&"):
        name, sep, _value = piece.partition("=")
        secret = sep and unquote(name).strip().lower() in SECRET_QUERY_PARAMS
        parts.append(f"{name}={HIDDEN}" if secret else piece)
    return "&".join(parts)


def redact_url(url: object) -> str:
    """The URL with every password replaced by ``***`` (safe for messages, logs, reprs and CLI output).

    Accepts text or any object whose ``str()`` is a URL (a SQLAlchemy ``URL`` renders its userinfo
    password hidden already). Only the secrets change, every other character stays as written.
    """
    text = url if isinstance(url, str) else str(url)
    try:
        urlsplit(text)  # refuse what urllib cannot parse (e.g. an invalid IPv6 host)
    except ValueError:
        return UNPARSABLE
    head, sep, rest = text.partition("://")
    if not sep:
        head, rest = "", text
    end = len(rest)
    for mark in "/?#":
        found = rest.find(mark)
        if found != -1:
            end = min(end, found)
    netloc, tail = rest[:end], rest[end:]
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        if ":" in userinfo:
            netloc = f"{userinfo.split(':', 1)[0]}:{HIDDEN}@{hostport}"
    path, qmark, query = tail.partition("?")
    if qmark:
        query, hash_mark, fragment = query.partition("#")
        tail = f"{path}?{_redact_query(query)}{hash_mark}{fragment}"
    return f"{head}{sep}{netloc}{tail}"


def url_secrets(url: object) -> tuple[str, ...]:
    """Every password a URL carries (userinfo and secret query parameters), decoded: what to mask."""
    text = url if isinstance(url, str) else str(url)
    found: list[str] = []
    try:
        parts = urlsplit(text)
        if parts.password:
            found.append(unquote(parts.password))
        for name, value in parse_qsl(parts.query, keep_blank_values=False):
            if name.strip().lower() in SECRET_QUERY_PARAMS and value:
                found.append(value)
    except ValueError:
        return ()
    # The raw (percent-encoded) spelling can appear in text too.
    found += [quote(v, safe="") for v in found if quote(v, safe="") != v]
    return tuple(dict.fromkeys(found))


def mask_url(url: object) -> str:
    """The URL with its passwords replaced by ``***`` (the store's name for ``redact_url``)."""
    return redact_url(url)
