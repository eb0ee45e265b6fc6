"""Getting a person's authorization: desktop (browser + local callback), headless (pasted code) and the
web-mode pair ``url`` / ``exchange``. Every path ends in one code exchange and one store write."""

from __future__ import annotations

import json
import webbrowser
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, TextIO
from urllib.parse import parse_qsl, urlsplit

from dropbox_box_provider.auth import flows
from dropbox_box_provider.auth.config import AuthConfig
from dropbox_box_provider.auth.manager import TokenManager
from dropbox_box_provider.auth.services import endpoints_for
from dropbox_box_provider.auth.tokens import TokenSet
from dropbox_box_provider.cli import pending
from dropbox_box_provider.cli.account import describe_account
from dropbox_box_provider.cli.callback import CallbackServer
from dropbox_box_provider.cli.errors import AuthorizationDenied, CliError
from dropbox_box_provider.cli.output import note, say, until
from dropbox_box_provider.errors import AuthConfigError, DropboxBoxError

if TYPE_CHECKING:
    from dropbox_box_provider.store.base import TokenStore

ACCOUNT_KEY = "account"  # TokenSet.extra key holding "Name <email> (id)" for `status`


def check_authorizable(config: AuthConfig) -> None:
    """Only user-OAuth connections that use stored tokens are authorized by a person."""
    conn_id = config.conn_id or "<conn_id>"
    if config.is_service_account:
        raise AuthConfigError(
            [
                f"auth_scheme {config.auth_scheme!r} is a Box service account: it needs no browser "
                f"authorization; get a token with `dropbox-box-auth refresh {conn_id}`"
            ],
            config.conn_id,
        )
    if config.uses_static_token:
        raise AuthConfigError(
            [
                "this connection uses its access_token as given (auth_scheme static or initiate_oauth OFF), "
                "so authorized tokens would be ignored: set auth_scheme to oauth and initiate_oauth to "
                "GETANDREFRESH or REFRESH first"
            ],
            config.conn_id,
        )


def code_from_pasted(text: str) -> tuple[str | None, dict[str, str]]:
    """A pasted bare code, or the query of a pasted redirect URL: (code, params); params empty for a code."""
    text = text.strip()
    if "://" in text or text.startswith("?") or "code=" in text or "error=" in text:
        query = urlsplit(text).query if "://" in text else text.lstrip("?")
        params = dict(parse_qsl(query, keep_blank_values=True))
        return params.get("code"), params
    return (text or None), {}


@dataclass
class Authorization:
    """One authorization attempt of one connection: the URL it sent and how to finish it."""

    conn_id: str
    config: AuthConfig
    store: TokenStore
    request: flows.AuthorizationRequest
    force: bool = False

    @classmethod
    def start(
        cls,
        conn_id: str,
        config: AuthConfig,
        store: TokenStore,
        redirect_uri: str | None,
        force: bool = False,
    ) -> Authorization:
        """Build the authorization URL; ``redirect_uri`` "" means none (Dropbox's no-redirect flow)."""
        check_authorizable(config)
        request = flows.authorization_url(config, callback_url=redirect_uri)
        return cls(conn_id, config, store, request, force)

    def finish_from_redirect(self, params: dict[str, str]) -> str:
        """Finish from the redirect's query: the state must match before anything else (a forged
        ``error=`` must not end the authorization), then a denial or error raises."""
        flows.verify_state(self.request.state, params.get("state"), self.conn_id)
        if "error" in params:
            raise denied(self.conn_id, self.config, params)
        code = params.get("code")
        if not code:
            raise CliError("the redirect carries no authorization code; start again")
        return self.finish_with_code(code)

    def finish_with_code(self, code: str) -> str:
        """Exchange ``code`` as the authorization URL asked for, store the tokens, describe the result."""
        tokens = flows.exchange_code(
            self.config,
            code,
            callback_url=self.request.redirect_uri or "",
            code_verifier=self.request.code_verifier,
        )
        return save_tokens(self.conn_id, self.config, self.store, tokens, self.force)


def denied(conn_id: str, config: AuthConfig, params: dict[str, str]) -> AuthorizationDenied:
    """The typed error of an ``error=...`` redirect (a consent denial or a service-side problem)."""
    name = endpoints_for(config.service).display_name
    error = params.get("error", "error")
    description = " ".join(params.get("error_description", "").split())[:300]
    said = f"{error}: {description}" if description else error
    if error == "access_denied":
        return AuthorizationDenied(
            f"access to {name} was denied in the browser ({said}); nothing was stored. To connect "
            f"{conn_id!r}, run `dropbox-box-auth authorize {conn_id}` again and click Allow"
        )
    return AuthorizationDenied(
        f"{name} answered the authorization with an error ({said}); nothing was stored. Check the app's "
        "redirect URIs and scopes in its developer console, then run the command again"
    )


def save_tokens(conn_id: str, config: AuthConfig, store: TokenStore, tokens: TokenSet, force: bool) -> str:
    """Store freshly exchanged tokens (with the account they belong to) and say what was connected."""
    name = endpoints_for(config.service).display_name
    try:
        account = describe_account(config, tokens.access_token)
        tokens = replace(tokens, extra={**tokens.extra, ACCOUNT_KEY: account})
    except DropboxBoxError as exc:
        account = f"unknown (the account lookup failed: {exc})"
    TokenManager(store).store_tokens(conn_id, config, tokens, force=force)
    refresh = "with a refresh token" if tokens.refresh_token else "without a refresh token (online access)"
    return (
        f"Connected {conn_id!r} to {name} as {account}. Access token expires {until(tokens.expires_at)}, "
        f"{refresh}; tokens saved in {store.url}."
    )


def _print_url(url: str) -> None:
    note("Open this address in a browser and allow access:")
    say(url)


def run_desktop(auth: Authorization, callback_url: str, *, open_browser: bool, timeout: float) -> str:
    """Desktop flow: listen on the callback, send the person to the consent page, wait for one redirect."""
    server = CallbackServer(callback_url, auth.finish_from_redirect)
    if open_browser and webbrowser.open(auth.request.url):
        note(f"A browser window opened for {auth.conn_id!r}. If it did not, open this address:")
        say(auth.request.url)
    else:
        _print_url(auth.request.url)
    note(f"Waiting up to {timeout:g} s for the redirect to {callback_url} ...")
    return server.wait(timeout)


def run_headless(auth: Authorization, stdin: TextIO) -> str:
    """Headless flow (Option 1): print the URL, read back the code or the redirected address, exchange it."""
    _print_url(auth.request.url)
    if auth.request.redirect_uri:
        note(
            f"After you click Allow the browser goes to {auth.request.redirect_uri}?code=... (the page may "
            "fail to load: that is expected). Copy the whole address from the address bar, or just the value "
            "of its `code` parameter, and paste it here."
        )
    else:
        note("After you click Allow the page shows an authorization code. Copy it and paste it here.")
    note("Code or redirected address: ")
    line = stdin.readline()
    code, params = code_from_pasted(line)
    if params:
        return auth.finish_from_redirect(params)
    if not code:
        raise CliError("nothing was pasted, so no code could be exchanged; run the command again")
    return auth.finish_with_code(code)


def describe_request(request: flows.AuthorizationRequest, as_json: bool, conn_id: str) -> None:
    """Print what ``url`` produced: the URL, and what the later ``exchange`` must repeat."""
    if as_json:
        say(
            json.dumps(
                {
                    "url": request.url,
                    "state": request.state,
                    "code_verifier": request.code_verifier,
                    "redirect_uri": request.redirect_uri,
                }
            )
        )
        return
    say(request.url)
    note(f"state (the redirect must carry it back): {request.state}")
    if request.redirect_uri:
        note(f"redirect URI: {request.redirect_uri}")
    kept = "state, redirect URI and PKCE code verifier" if request.code_verifier else "state and redirect URI"
    note(
        f"The {kept} are kept in the token store (they travel with `export`). Then run "
        f"`dropbox-box-auth exchange {conn_id}` and paste the code or the redirected address"
    )


def exchange_pasted(
    conn_id: str,
    config: AuthConfig,
    store: TokenStore,
    text: str,
    *,
    state: str | None,
    callback_url: str | None,
    code_verifier: str | None,
    force: bool,
) -> str:
    """``exchange``: check a pasted redirect's state first (``--state``, else the one ``url`` recorded), then
    exchange its code; a bare code (Dropbox's no-redirect flow) carries no state. Uses the recorded PKCE
    verifier and redirect URI unless given, and forgets the pending authorization once it is used."""
    code, params = code_from_pasted(text)
    recorded = pending.load(store, conn_id)
    if params:
        expected = state or (recorded or {}).get("state")
        if not expected:
            raise CliError(
                f"no pending authorization of {conn_id!r} in token store {store.url} to check the redirect's "
                f"state against: run `dropbox-box-auth url {conn_id}` on this machine (or import the "
                "settings exported after it), or pass the state it printed with --state"
            )
        flows.verify_state(expected, params.get("state"), conn_id)
        if "error" in params:
            pending.discard(store, conn_id)
            raise denied(conn_id, config, params)
    elif state is not None:
        flows.verify_state(state, None, conn_id)
    if not code:
        raise CliError("no authorization code given: paste the `code` value of the redirect (or the address)")
    if recorded is not None:
        code_verifier = code_verifier or recorded.get("code_verifier")
        if callback_url is None:
            callback_url = recorded.get("redirect_uri") or ""
    tokens = flows.exchange_code(config, code, callback_url=callback_url, code_verifier=code_verifier)
    result = save_tokens(conn_id, config, store, tokens, force)
    if recorded is not None:
        pending.discard(store, conn_id)
    return result
