"""The one URI form of a Dropbox or Box file: ``dropbox://CONN_ID@/path`` and ``box://CONN_ID@/path``.

It is the string ``ObjectStoragePath`` reports, the asset URI and the lineage name: the authority is the
Airflow connection id (the userinfo part, as ObjectStoragePath writes it), the path starts with a slash, has
no trailing slash and is NFC; case is kept as given (both services compare names case-insensitively but
store the case a file was created with). Pure functions: no Airflow, no fsspec.
"""

from __future__ import annotations

import unicodedata

SCHEMES = ("dropbox", "box")
DEFAULT_CONN_IDS = {"dropbox": "dropbox_default", "box": "box_default"}


def normalize(path: str) -> str:
    """The canonical path: leading slash, no trailing slash (except the root), no empty segments, NFC."""
    parts = [part for part in unicodedata.normalize("NFC", path).split("/") if part and part != "."]
    return "/" + "/".join(parts)


def split_url(url: str, protocols: tuple[str, ...] = SCHEMES) -> tuple[str | None, str]:
    """``(conn_id or None, "/normalised/path")`` of ``scheme://[CONN_ID@]/path``, ``scheme://CONN_ID/path``
    or a bare path."""
    text = str(url)
    conn_id: str | None = None
    for protocol in protocols:
        prefix = f"{protocol}://"
        if text.startswith(prefix):
            authority, slash, path = text[len(prefix) :].partition("/")
            conn_id = authority.split("@", 1)[0] or None
            text = slash + path
            break
    return conn_id, normalize(text)


def canonical_uri(scheme: str, conn_id: str | None, path: str) -> str:
    """``scheme://CONN_ID@/path`` (the scheme's default connection when ``conn_id`` is None)."""
    return f"{scheme}://{conn_id or DEFAULT_CONN_IDS[scheme]}@{normalize(path)}"
