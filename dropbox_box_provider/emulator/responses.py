"""Response builders with the exact shapes and headers each service uses (clients check them)."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from starlette.responses import Response

BOX_HELP_URL = "http://developers.box.com/docs/#errors"
BOX_WWW_AUTHENTICATE_INVALID = (
    'Bearer realm="Service", error="invalid_token", error_description="The access token provided is invalid."'
)
DROPBOX_WWW_AUTHENTICATE = 'Bearer realm="Dropbox-API"'


class ApiError(Exception):
    """Raised by handlers to answer with a ready-made error response."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """JSON with ``Content-Type: application/json`` exactly (no charset: the Dropbox SDK asserts it)."""
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return Response(body, status_code=status, headers=headers, media_type="application/json")


def oauth_error(error: str, description: str, status: int = 400) -> Response:
    """An RFC 6749 token-endpoint error."""
    return json_response({"error": error, "error_description": description}, status)


def dropbox_error(
    status: int, summary: str, error: dict[str, Any], headers: dict[str, str] | None = None
) -> Response:
    """A Dropbox API error: ``error_summary`` (with trailing dots) plus the tagged ``error`` union."""
    return json_response({"error_summary": f"{summary}/..", "error": error}, status, headers)


def dropbox_route_error(*tags: str, extra: dict[str, Any] | None = None) -> Response:
    """A 409 route error from nested void tags, e.g. ("path", "not_found") -> path/not_found/..."""
    error: dict[str, Any] = {".tag": tags[-1], **(extra or {})}
    for tag in reversed(tags[:-1]):
        error = {".tag": tag, tag: error}
    return dropbox_error(409, "/".join(tags), error)


def dropbox_bad_request(route: str, message: str) -> Response:
    """Dropbox's 400 answer for malformed input: plain text."""
    text = f'Error in call to API function "{route}": {message}'
    return Response(text, status_code=400, media_type="text/plain; charset=utf-8")


def dropbox_auth_error(tag: str) -> Response:
    """Dropbox's 401: the exact header and body the SDKs parse."""
    return dropbox_error(401, tag, {".tag": tag}, {"WWW-Authenticate": DROPBOX_WWW_AUTHENTICATE})


def dropbox_missing_scope(required_scope: str) -> Response:
    """Dropbox's 401 for a token granted without the scope the route needs."""
    error = {".tag": "missing_scope", "required_scope": required_scope}
    return dropbox_error(401, "missing_scope", error, {"WWW-Authenticate": DROPBOX_WWW_AUTHENTICATE})


def box_error(
    status: int,
    code: str,
    message: str,
    context_info: Any = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """Box's error object."""
    body = {
        "type": "error",
        "status": status,
        "code": code,
        "message": message,
        "context_info": context_info if context_info is not None else {},
        "help_url": BOX_HELP_URL,
        "request_id": secrets.token_hex(8),
    }
    return json_response(body, status, headers)


def box_not_found(kind: str, item_id: str) -> Response:
    """Box's 404 for a missing item."""
    context = {
        "errors": [
            {
                "reason": "invalid_parameter",
                "name": kind,
                "message": f"Invalid value '{item_id}'. '{kind}' with value '{item_id}' not found",
            }
        ]
    }
    return box_error(404, "not_found", "Not Found", context)


def box_unauthorized(invalid: bool = True) -> Response:
    """Box's 401: empty body, WWW-Authenticate naming the invalid token."""
    header = BOX_WWW_AUTHENTICATE_INVALID if invalid else 'Bearer realm="Service"'
    return Response(b"", status_code=401, headers={"WWW-Authenticate": header})


def parse_range(header: str | None, size: int) -> tuple[int, int] | str | None:
    """(start, end) inclusive of one ``bytes=`` range; None: no/ignored header; "bad": unsatisfiable."""
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    first, _, last = header[6:].strip().partition("-")
    try:
        if first == "":
            length = int(last)
            if length <= 0:
                return "bad"
            return max(0, size - length), size - 1
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError:
        return None
    if start >= size or end < start:
        return "bad"
    return start, min(end, size - 1)


def bytes_response(
    content: bytes, range_header: str | None, headers: dict[str, str] | None = None
) -> Response:
    """The bytes, or the requested range as 206 with Content-Range (416 when unsatisfiable)."""
    base = {"Accept-Ranges": "bytes", **(headers or {})}
    wanted = parse_range(range_header, len(content))
    if wanted == "bad":
        base["Content-Range"] = f"bytes */{len(content)}"
        return Response(b"", status_code=416, headers=base)
    if wanted is None or isinstance(wanted, str):
        return Response(content, status_code=200, headers=base, media_type="application/octet-stream")
    start, end = wanted
    base["Content-Range"] = f"bytes {start}-{end}/{len(content)}"
    return Response(
        content[start : end + 1], status_code=206, headers=base, media_type="application/octet-stream"
    )


def download_link_response(
    link: tuple[str, bytes, float] | None, range_header: str | None, expired: Response
) -> Response:
    """A download link's bytes (Range supported), 404 for an unknown link, ``expired`` once past its time."""
    if link is None:
        return Response(b"Not Found", status_code=404, media_type="text/plain")
    name, content, expires_at = link
    if time.time() >= expires_at:
        return expired
    disposition = f"attachment; filename*=UTF-8''{name}".encode().decode("latin-1")
    return bytes_response(content, range_header, {"Content-Disposition": disposition})
