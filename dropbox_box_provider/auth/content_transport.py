"""An httpx transport over urllib3 for file content streams (downloads): auth, retries (``transport.send``),
error mapping and masking stay the httpx ones while the bytes move through urllib3's read path.

Why: httpcore reads a response body 64 KiB per ``recv`` and parses every piece through h11 (0.8-1.6 GB/s
over loopback on the benchmark machine); urllib3 (already installed with Airflow, via requests) reads each
requested megabyte with one ``readinto`` (1.2-4.2 GB/s on the same URL in the same runs). Only the byte
mover changes: requests, responses and exceptions are httpx's, mapped here.

The fast path is used only where it behaves like httpx's own transport: no proxy configured in the
environment (httpx honours ``HTTP(S)_PROXY``/``ALL_PROXY``; this transport does not), and urllib3 2 present.
Otherwise :func:`content_client` gives httpx's default transport.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import httpx

from dropbox_box_provider.auth import transport

if TYPE_CHECKING:
    import urllib3

# Bytes asked of the socket per read: one read per block, handed to httpx as one chunk.
BLOCK_SIZE = 1024 * 1024
# A body left unread (a redirect, an error) is drained to keep its connection when at most this long.
DRAIN_LIMIT = 64 * 1024
_PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")


def _proxied() -> bool:
    return any(os.environ.get(name) or os.environ.get(name.lower()) for name in _PROXY_VARIABLES)


def _map_error(exc: Exception, request: httpx.Request) -> httpx.TransportError:
    """The httpx exception ``transport.send`` classifies (not sent / ambiguous) for a urllib3 failure."""
    from urllib3 import exceptions as u3

    if isinstance(exc, u3.MaxRetryError) and isinstance(exc.reason, Exception):
        exc = exc.reason
    message = str(exc)
    error: httpx.TransportError
    if isinstance(exc, u3.NewConnectionError):  # before ConnectTimeoutError: urllib3 2 subclasses it
        error = httpx.ConnectError(message, request=request)
    elif isinstance(exc, u3.ConnectTimeoutError):
        error = httpx.ConnectTimeout(message, request=request)
    elif isinstance(exc, u3.ReadTimeoutError):
        error = httpx.ReadTimeout(message, request=request)
    elif isinstance(exc, u3.SSLError):
        error = httpx.ConnectError(message, request=request)
    elif isinstance(exc, u3.ProtocolError | OSError):
        error = httpx.ReadError(message, request=request)
    else:
        error = httpx.RemoteProtocolError(message, request=request)
    error.__cause__ = exc
    return error


class _Body(httpx.SyncByteStream):
    """A urllib3 response body as httpx chunks of up to ``BLOCK_SIZE``; read errors become httpx's."""

    def __init__(self, response: urllib3.BaseHTTPResponse, request: httpx.Request) -> None:
        self._response = response
        self._request = request
        self._done = False

    def __iter__(self) -> Iterator[bytes]:
        read = self._response.read
        while True:
            try:
                chunk = read(BLOCK_SIZE, decode_content=False)
            except Exception as exc:
                raise _map_error(exc, self._request) from exc
            if not chunk:
                self._done = True
                return
            yield chunk

    def close(self) -> None:
        response = self._response
        remaining = getattr(response, "length_remaining", None)
        if not self._done and remaining is not None and remaining <= DRAIN_LIMIT:
            try:
                response.drain_conn()
                self._done = True
            except Exception:  # a connection that cannot be drained is closed below
                self._done = False
        if not self._done:
            response.close()  # unread bytes on the wire: the connection cannot be reused
        response.release_conn()


class Urllib3Transport(httpx.BaseTransport):
    """httpx requests sent through a urllib3 pool: no redirects, retries or decoding (httpx does those)."""

    def __init__(self, *, verify: Any = True, keepalive_per_host: int = 20) -> None:
        import urllib3

        self._urllib3 = urllib3
        self._pool = urllib3.PoolManager(
            num_pools=10,
            maxsize=keepalive_per_host,  # httpx keeps 20 alive: as many threads can share one hook quietly
            retries=False,
            ssl_context=httpx.create_ssl_context(verify=verify),  # httpx's trust (certifi, SSL_CERT_FILE)
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` and answer with its unread response."""
        urllib3 = self._urllib3
        timeouts = request.extensions.get("timeout", {})
        headers = urllib3.HTTPHeaderDict()
        for key, value in request.headers.raw:  # latin-1 both ways: http.client sends these exact bytes
            headers.add(key.decode("latin-1"), value.decode("latin-1"))
        chunked = "transfer-encoding" in request.headers
        body: Any = request.stream
        if isinstance(body, httpx.ByteStream):
            body = b"".join(body) or None
        try:
            response = self._pool.urlopen(
                request.method,
                str(request.url),
                body=body,
                headers=headers,
                redirect=False,
                retries=False,
                assert_same_host=False,
                preload_content=False,
                decode_content=False,
                chunked=chunked,
                timeout=urllib3.Timeout(connect=timeouts.get("connect"), read=timeouts.get("read")),
            )
        except Exception as exc:
            raise _map_error(exc, request) from exc
        return httpx.Response(
            status_code=response.status,
            # http.client decoded the header bytes as latin-1: encoding them back gives the wire bytes.
            headers=[(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers.items()],
            stream=_Body(response, request),
            request=request,
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": (response.reason or "").encode()},
        )

    def close(self) -> None:
        """Close every pooled connection."""
        self._pool.clear()


def fast_transport(**kwargs: Any) -> httpx.BaseTransport | None:
    """A :class:`Urllib3Transport`, or None where httpx's own transport must be used (a proxy is configured,
    or urllib3 2 is not installed)."""
    if _proxied():
        return None
    try:
        from urllib3 import BaseHTTPResponse  # noqa: F401 - new in urllib3 2, whose API this uses
    except ImportError:
        return None
    return Urllib3Transport(**kwargs)


def content_client(**kwargs: object) -> httpx.Client:
    """``transport.new_client`` for content streams: the same defaults, bytes moved by urllib3 when it can."""
    fast = fast_transport()
    if fast is not None:
        kwargs.setdefault("transport", fast)
    return transport.new_client(**kwargs)
