"""``dropbox-box-auth``: argument parsing, dispatch to the command modules, and error reporting.

Every error the provider raises on purpose becomes one clear message on stderr and a non-zero exit;
tracebacks only with ``--debug``. No command prints a token or secret unless asked (``--show-token``).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import textwrap
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from dropbox_box_provider.auth.config import DEFAULT_CALLBACK_URL
from dropbox_box_provider.cli.context import StoreChoice

PROG = "dropbox-box-auth"
EXIT_ERROR = 1
EXIT_INTERRUPTED = 130
DEFAULT_TIMEOUT = 300.0

Handler = Callable[[argparse.Namespace], int]


def _epilog(*examples: str) -> str:
    return "examples:\n" + "\n".join(f"  {example}" for example in examples)


def _parser_kwargs(description: str, *examples: str) -> dict[str, Any]:
    return {
        "description": textwrap.dedent(description).strip(),
        "epilog": _epilog(*examples),
        "formatter_class": argparse.RawDescriptionHelpFormatter,
    }


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show tracebacks and Airflow's log output")
    return common


def _store_options() -> argparse.ArgumentParser:
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument(
        "--store",
        metavar="URL",
        help="token store URL or sqlite path (default: where the hooks look: the connection's "
        "oauth_settings_location, the token store secrets backend's store, "
        "else $AIRFLOW_HOME/oauth_tokens.db)",
    )
    options.add_argument(
        "--key-file",
        metavar="FILE",
        help="read the store's Fernet key(s), comma-separated NEW,OLD, from the first line of FILE (default: "
        "$DROPBOX_BOX_AUTH_KEY, else the backend's key, else [core] fernet_key)",
    )
    options.add_argument(
        "--key",
        metavar="KEYS",
        help="the key(s) as an argument: works, but warns (argv is visible to other users); use --key-file",
    )
    return options


def _passphrase_options() -> argparse.ArgumentParser:
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument(
        "--passphrase-file", metavar="FILE", help="read the passphrase from the first line of FILE"
    )
    options.add_argument(
        "--passphrase",
        help=argparse.SUPPRESS,  # works, with a warning: argv is visible to other users
    )
    return options


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (also used to render the CLI reference)."""
    common, store, secret = _common(), _store_options(), _passphrase_options()
    parser = argparse.ArgumentParser(
        prog=PROG,
        **_parser_kwargs(
            """
            Authorize Dropbox and Box connections of Apache Airflow and manage their stored tokens.

            Connections are read exactly as Airflow reads them (secrets backend, AIRFLOW_CONN_* variables,
            the metastore) from this shell's AIRFLOW_HOME and configuration; tokens go to the token store
            the hooks use. Run `dropbox-box-auth COMMAND --help` for each command.
            """,
            f"{PROG} authorize dropbox_default",
            f"{PROG} authorize box_default --headless",
            f"{PROG} status",
        ),
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "authorize",
        parents=[common, store],
        help="authorize a connection in a browser (desktop flow, or --headless)",
        **_parser_kwargs(
            f"""
            Desktop flow (InitiateOAuth=GETANDREFRESH): listen on the connection's callback_url (default
            {DEFAULT_CALLBACK_URL}, always on 127.0.0.1), open the consent page in a browser, receive the
            redirect, check its state, exchange the code (with PKCE for a Dropbox app without secret) and
            store the tokens where the hooks find them.

            --headless (no browser on this machine): print the URL to open on any other device, then read
            the code (Dropbox shows it) or the whole redirected address (Box) pasted on stdin.
            """,
            f"{PROG} authorize dropbox_default",
            f"{PROG} authorize box_default --callback-url http://localhost:8080 --no-browser",
            f"{PROG} authorize dropbox_default --headless",
            f"echo 'http://localhost:33333/?code=...&state=...' | {PROG} authorize box_default --headless",
        ),
    )
    p.add_argument("conn_id", metavar="CONN_ID")
    p.add_argument("--callback-url", metavar="URL", help="redirect URI to use instead of the connection's")
    p.add_argument("--no-browser", action="store_true", help="print the URL instead of opening a browser")
    p.add_argument(
        "--headless", action="store_true", help="no callback server: paste the code or redirected address"
    )
    p.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS",
        help=f"how long to wait for the redirect (default {DEFAULT_TIMEOUT:g})",
    )  # fmt: skip
    p.add_argument("--force", action="store_true", help="overwrite a stored record that cannot be decrypted")
    p.set_defaults(handler=_authorize)

    p = sub.add_parser(
        "url",
        parents=[common, store],
        help="print the authorization URL (GetOAuthAuthorizationURL)",
        **_parser_kwargs(
            """
            Web mode, step 1: print the URL a person opens to authorize the app. Its state, redirect URI
            and (Dropbox PKCE app) code verifier are kept, encrypted, with the connection in the token store,
            where `exchange` checks and uses them; they travel with `export`/`import`.
            """,
            f"{PROG} url box_default --callback-url https://airflow.example.com/oauth/box",
            f"{PROG} url dropbox_default --json",
        ),
    )
    p.add_argument("conn_id", metavar="CONN_ID")
    p.add_argument(
        "--callback-url", metavar="URL", help="redirect URI (default: the connection's callback_url)"
    )
    p.add_argument(
        "--json", action="store_true", help="print url, state, code_verifier, redirect_uri as JSON"
    )
    p.set_defaults(handler=_url)

    p = sub.add_parser(
        "exchange",
        parents=[common, store],
        help="exchange an authorization code for tokens (GetOAuthAccessToken)",
        **_parser_kwargs(
            """
            Web mode, step 2: read the `code` of the redirect (or the whole redirected address) from stdin,
            check the address's state against the one `url` recorded (before anything else), exchange the
            code with the recorded redirect URI and PKCE verifier, and store the tokens. A bare code
            (Dropbox's no-redirect flow) carries no state. CODE as an argument works but warns.
            """,
            f"{PROG} exchange box_default",
            f"pbpaste | {PROG} exchange dropbox_default",
        ),
    )
    p.add_argument("conn_id", metavar="CONN_ID")
    p.add_argument(
        "code",
        metavar="CODE",
        nargs="?",
        help="omit it (or give -) to paste the code or redirected address on stdin",
    )
    p.add_argument(
        "--callback-url",
        metavar="URL",
        help="the redirect URI the authorization URL used (default: recorded)",
    )
    p.add_argument(
        "--code-verifier-file", metavar="FILE", help="read the PKCE verifier from FILE (default: recorded)"
    )
    p.add_argument("--code-verifier", metavar="VERIFIER", help=argparse.SUPPRESS)  # works, with a warning
    p.add_argument(
        "--state", help="check the redirected address's state against this value (default: recorded)"
    )
    p.add_argument("--force", action="store_true", help="overwrite a stored record that cannot be decrypted")
    p.set_defaults(handler=_exchange)

    p = sub.add_parser(
        "refresh",
        parents=[common, store],
        help="get a new access token now (RefreshOAuthAccessToken)",
        **_parser_kwargs(
            """
            Refresh the access token now (Box JWT/CCG: fetch a new one) through the same single-flight
            token manager the hooks use, and store it. Prints the expiry; the token only with --show-token.
            """,
            f"{PROG} refresh box_default",
            f"{PROG} refresh dropbox_default --show-token",
        ),
    )
    p.add_argument("conn_id", metavar="CONN_ID")
    p.add_argument("--show-token", action="store_true", help="also print the new access token on stdout")
    p.set_defaults(handler=_refresh)

    p = sub.add_parser(
        "revoke",
        parents=[common, store],
        help="revoke the stored grant and forget its tokens",
        **_parser_kwargs(
            """
            Revoke the connection's stored grant at Dropbox/Box and delete its tokens from the store. A
            connection definition saved in the store stays.
            """,
            f"{PROG} revoke dropbox_default",
        ),
    )
    p.add_argument("conn_id", metavar="CONN_ID")
    p.set_defaults(handler=_revoke)

    p = sub.add_parser(
        "status",
        parents=[common, store],
        help="show stored tokens; exit 1 when a connection needs re-authorization",
        **_parser_kwargs(
            """
            A table of connections: service, auth scheme, account, when the access token expires, the
            refresh token's age (Box: days left of its 60), last refresh and the store. Default: every
            connection in the store. Exit status 1 when any needs re-authorization (no tokens and no way
            to get them, a Box refresh token older than 60 days, a record that cannot be decrypted) or
            cannot be read.
            """,
            f"{PROG} status",
            f"{PROG} status box_default dropbox_default --json",
        ),
    )
    p.add_argument("conn_ids", nargs="*", metavar="CONN_ID")
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    p.set_defaults(handler=_status)

    p = sub.add_parser(
        "export",
        parents=[common, store, secret],
        help="write a connection and its tokens to an encrypted file (headless Option 2)",
        **_parser_kwargs(
            """
            Write the connection's full definition and its stored tokens to FILE, encrypted with a
            passphrase (scrypt + Fernet), mode 0600. Copy FILE to the headless machine and run `import`.
            Passphrase: --passphrase-file, $DROPBOX_BOX_AUTH_PASSPHRASE, or a prompt.
            """,
            f"{PROG} export box_default --out box_default.settings",
            f"{PROG} export dropbox_default --out /tmp/db.settings --passphrase-file ~/.pass --force",
        ),
    )
    p.add_argument("conn_id", metavar="CONN_ID")
    p.add_argument("--out", required=True, metavar="FILE", help="the file to write")
    p.add_argument("--force", action="store_true", help="replace FILE if it exists")
    p.set_defaults(handler=_export)

    p = sub.add_parser(
        "import",
        parents=[common, store, secret],
        help="load a file written by `export` into this machine's token store",
        **_parser_kwargs(
            """
            Decrypt and check FILE completely, then save the connection definition into the token store
            (the token store secrets backend serves it to Airflow) and its tokens where the hooks find
            them. A wrong passphrase or a modified file changes nothing.
            """,
            f"{PROG} import box_default.settings",
            f"DROPBOX_BOX_AUTH_PASSPHRASE=... {PROG} import box_default.settings --force",
        ),
    )
    p.add_argument("file", metavar="FILE")
    p.add_argument("--force", action="store_true", help="replace a connection the store already holds")
    p.set_defaults(handler=_import)

    p = sub.add_parser(
        "save-connection",
        parents=[common, store],
        help="copy a connection definition into the token store",
        **_parser_kwargs(
            """
            Copy the connection as Airflow resolves it now (e.g. from an AIRFLOW_CONN_* variable or the
            metastore) into the token store, so the token store secrets backend serves it everywhere.
            """,
            f"{PROG} save-connection box_default",
        ),
    )
    p.add_argument("conn_id", metavar="CONN_ID")
    p.set_defaults(handler=_save_connection)

    p = sub.add_parser(
        "rotate-keys",
        parents=[common, store],
        help="re-encrypt the token store with its first key",
        **_parser_kwargs(
            """
            Re-encrypt every record with the first of the configured Fernet keys. Put the new key first
            (NEW,OLD) in --key or the backend's `key`, run this, then drop the old key.
            """,
            f"{PROG} rotate-keys --key-file /run/secrets/token_store_keys   # NEW_KEY,OLD_KEY",
        ),
    )
    p.set_defaults(handler=_rotate_keys)
    return parser


# -- handlers ------------------------------------------------------------------------------------------


def _choice(args: argparse.Namespace) -> StoreChoice:
    from dropbox_box_provider.cli.inputs import store_key

    key = store_key(getattr(args, "key", None), getattr(args, "key_file", None))
    return StoreChoice(getattr(args, "store", None), key)


def _authorize(args: argparse.Namespace) -> int:
    from dropbox_box_provider.cli import authorize
    from dropbox_box_provider.cli.context import load_config, store_for
    from dropbox_box_provider.cli.output import say

    config = load_config(args.conn_id)
    authorize.check_authorizable(config)
    store = store_for(config, _choice(args))
    if args.headless:
        redirect = args.callback_url
        if redirect is None:
            redirect = (
                config.effective_callback_url if config.service == "box" else (config.callback_url or "")
            )
        auth = authorize.Authorization.start(args.conn_id, config, store, redirect, args.force)
        say(authorize.run_headless(auth, sys.stdin))
        return 0
    callback_url = args.callback_url or config.effective_callback_url
    auth = authorize.Authorization.start(args.conn_id, config, store, callback_url, args.force)
    say(authorize.run_desktop(auth, callback_url, open_browser=not args.no_browser, timeout=args.timeout))
    return 0


def _url(args: argparse.Namespace) -> int:
    from dropbox_box_provider.auth import flows
    from dropbox_box_provider.cli import authorize, pending
    from dropbox_box_provider.cli.context import load_config, store_for

    config = load_config(args.conn_id)
    authorize.check_authorizable(config)
    store = store_for(config, _choice(args))
    request = flows.authorization_url(config, callback_url=args.callback_url)
    pending.save(store, args.conn_id, config, pending.from_request(request))
    authorize.describe_request(request, args.json, args.conn_id)
    return 0


def _exchange(args: argparse.Namespace) -> int:
    from dropbox_box_provider.cli import authorize, inputs
    from dropbox_box_provider.cli.context import load_config, store_for
    from dropbox_box_provider.cli.output import say

    text = inputs.code_or_stdin(args.code)
    verifier = inputs.code_verifier(args.code_verifier, args.code_verifier_file)
    config = load_config(args.conn_id)
    authorize.check_authorizable(config)
    store = store_for(config, _choice(args))
    result = authorize.exchange_pasted(
        args.conn_id,
        config,
        store,
        text,
        state=args.state,
        callback_url=args.callback_url,
        code_verifier=verifier,
        force=args.force,
    )
    say(result)
    return 0


def _refresh(args: argparse.Namespace) -> int:
    from dropbox_box_provider.cli import maintenance
    from dropbox_box_provider.cli.output import note

    note(maintenance.refresh(args.conn_id, _choice(args), show_token=args.show_token))
    return 0


def _revoke(args: argparse.Namespace) -> int:
    from dropbox_box_provider.cli import maintenance
    from dropbox_box_provider.cli.output import say

    say(maintenance.revoke(args.conn_id, _choice(args)))
    return 0


def _status(args: argparse.Namespace) -> int:
    from dropbox_box_provider.cli import status

    rows = status.collect(args.conn_ids, _choice(args))
    status.render(rows, args.json)
    return EXIT_ERROR if any(row.needs_action for row in rows) else 0


def _export(args: argparse.Namespace) -> int:
    from dropbox_box_provider.cli import transfer
    from dropbox_box_provider.cli.output import say

    secret = transfer.passphrase(args.passphrase_file, args.passphrase, confirm=True)
    say(transfer.export_connection(args.conn_id, args.out, _choice(args), secret, force=args.force))
    return 0


def _import(args: argparse.Namespace) -> int:
    from dropbox_box_provider.cli import transfer
    from dropbox_box_provider.cli.output import say

    secret = transfer.passphrase(args.passphrase_file, args.passphrase, confirm=False)
    say(transfer.import_settings(args.file, _choice(args), secret, force=args.force))
    return 0


def _save_connection(args: argparse.Namespace) -> int:
    from dropbox_box_provider.cli import transfer
    from dropbox_box_provider.cli.output import say

    say(transfer.save_connection(args.conn_id, _choice(args)))
    return 0


def _rotate_keys(args: argparse.Namespace) -> int:
    from dropbox_box_provider.cli import maintenance
    from dropbox_box_provider.cli.output import say

    say(maintenance.rotate_keys(_choice(args)))
    return 0


# -- entry point ---------------------------------------------------------------------------------------


def _quiet_airflow() -> None:
    """Keep Airflow's own log lines (config warnings, masking notices) out of the CLI's output."""
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "ERROR")
    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore")


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).replace("\n  - ", "; ").split()) or type(error).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the process exit status."""
    from dropbox_box_provider.errors import DropboxBoxError

    args = build_parser().parse_args(argv)
    if not args.debug:
        _quiet_airflow()
    handler: Handler = args.handler
    try:
        return handler(args)
    except DropboxBoxError as exc:
        if args.debug:
            raise
        print(f"{PROG}: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; nothing more was written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        if args.debug:
            raise
        print(
            f"{PROG}: error: unexpected {type(exc).__name__}: {_one_line(exc)} (run again with --debug "
            "for the traceback, and please report it)",
            file=sys.stderr,
        )
        return EXIT_ERROR
