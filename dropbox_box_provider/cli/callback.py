"""A one-shot HTTP server on the loopback interface that receives the OAuth redirect.

It answers exactly one request on the redirect URI's path that carries ``code`` or ``error``; anything
else (``/favicon.ico``, a bare visit) gets 404/400 and is ignored. The handler runs the caller's
``complete`` step (state check, code exchange) so the browser page shows the real outcome.
"""

from __future__ import annotations

import errno
import html
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qsl, urlsplit

from dropbox_box_provider.cli.errors import AuthorizationTimeout, CallbackServerError
from dropbox_box_provider.errors import DropboxBoxError, StateMismatch

LOOPBACK_HOSTS = ("localhost", "127.0.0.1")
BIND_ADDRESS = "127.0.0.1"
POLL_SECONDS = 0.2

# Called with the redirect's query parameters; returns the success text for the page or raises.
Completion = Callable[[dict[str, str]], str]


def listen_address(callback_url: str) -> tuple[int, str]:
    """The port and path to serve for ``callback_url``; only plain-HTTP loopback URLs can be served here."""
    parts = urlsplit(callback_url)
    host = (parts.hostname or "").lower()
    if parts.scheme != "http" or host not in LOOPBACK_HOSTS:
        raise CallbackServerError(
            f"cannot listen on callback URL {callback_url!r}: `authorize` serves only "
            "http://localhost:PORT or http://127.0.0.1:PORT. Register such a redirect URI with the app and "
            "pass it with --callback-url, or use `authorize --headless` (or `url` + `exchange`) for any "
            "other redirect URI"
        )
    try:
        port = parts.port or 80
    except ValueError:
        raise CallbackServerError(f"callback URL {callback_url!r} has an invalid port") from None
    return port, parts.path or "/"


def _page(title: str, message: str, ok: bool) -> bytes:
    colour = "#1a7f37" if ok else "#cf222e"
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title></head>"
        "<body style='font-family:sans-serif;max-width:40em;margin:4em auto'>"
        f"<h1 style='color:{colour}'>{html.escape(title)}</h1><p id='message'>{html.escape(message)}</p>"
        "<p>You can close this tab and return to the terminal.</p></body></html>"
    ).encode()


class CallbackServer:
    """Listens on 127.0.0.1 at the redirect URI's port until one redirect has been handled."""

    def __init__(self, callback_url: str, complete: Completion) -> None:
        port, self.path = listen_address(callback_url)
        self.callback_url = callback_url
        self._complete = complete
        self.outcome: str | DropboxBoxError | None = None
        self.refused = 0  # redirects whose state did not match: answered 400 and ignored
        try:
            self._server = HTTPServer((BIND_ADDRESS, port), self._handler_class())
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                why = "is already in use" if exc.errno == errno.EADDRINUSE else "needs privileges"
                raise CallbackServerError(
                    f"port {port} on {BIND_ADDRESS} {why}, so the redirect to {callback_url} cannot be "
                    "received: stop the program holding it, or pass --callback-url "
                    "http://localhost:OTHER_PORT (registered as a redirect URI of the app)"
                ) from None
            raise CallbackServerError(f"cannot listen on {BIND_ADDRESS}:{port}: {exc.strerror}") from None
        self._server.timeout = POLL_SECONDS

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            timeout = 5  # a browser's idle pre-connection must not block the one-request loop

            def do_GET(self) -> None:
                owner._handle(self)

            def log_message(self, format: str, *args: object) -> None:
                """Quiet: the request line carries the authorization code."""

        return Handler

    def _respond(self, request: BaseHTTPRequestHandler, status: int, body: bytes) -> None:
        request.send_response(status)
        request.send_header("Content-Type", "text/html; charset=utf-8")
        request.send_header("Content-Length", str(len(body)))
        request.send_header("Cache-Control", "no-store")
        request.end_headers()
        request.wfile.write(body)

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(request.path)
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        if self.outcome is not None or parts.path != self.path:
            self._respond(request, 404, _page("Not found", "This address only receives one redirect.", False))
            return
        if "code" not in params and "error" not in params:
            self._respond(
                request, 400, _page("Waiting for authorization", "No authorization response here.", False)
            )
            return
        try:
            message = self._complete(params)
        except StateMismatch as exc:
            # Not the redirect of this authorization (a stale tab, or any web page forging one): refuse it and
            # keep waiting, so nobody but the person's own redirect can end the authorization.
            self.refused += 1
            self._respond(request, 400, _page("Authorization refused", str(exc), False))
            return
        except DropboxBoxError as exc:
            self.outcome = exc
            self._respond(request, 400, _page("Authorization failed", str(exc), False))
            return
        self.outcome = message
        self._respond(request, 200, _page("Authorization complete", message, True))

    def wait(self, timeout: float) -> str:
        """Serve until the one redirect is handled; its success text, or its error raised here."""
        deadline = time.monotonic() + timeout
        try:
            while self.outcome is None:
                if time.monotonic() >= deadline:
                    refused = (
                        f" ({self.refused} redirect(s) whose state does not match were refused)"
                        if self.refused
                        else ""
                    )
                    raise AuthorizationTimeout(
                        f"no authorization redirect reached {self.callback_url} within {timeout:g} s"
                        f"{refused}. If "
                        "the browser showed an error about the redirect URI (Dropbox: 'Invalid "
                        "redirect_uri', Box: 'redirect_uri_mismatch'), register "
                        f"{self.callback_url} as a redirect URI of the app (Dropbox App Console → "
                        "Settings → Redirect URIs; Box Developer Console → Configuration → OAuth 2.0 "
                        "Redirect URIs) or set the connection's callback_url to a URI the app has, then "
                        "run the command again. Otherwise finish the consent in the browser sooner "
                        "(--timeout SECONDS allows more time), or use --headless"
                    )
                self._server.handle_request()
        finally:
            self._server.server_close()
        if isinstance(self.outcome, DropboxBoxError):
            raise self.outcome
        return self.outcome
