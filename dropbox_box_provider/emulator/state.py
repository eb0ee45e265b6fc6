"""The emulator's in-memory model: apps, accounts, codes, tokens, file trees, config, faults and stats.

Every mutation happens under ``EmulatorState.lock`` (one lock: the model is small and operations are fast).
"""

from __future__ import annotations

import copy
import secrets
import string
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from dropbox_box_provider.emulator.files import Tree

DROPBOX = "dropbox"
BOX = "box"
SERVICES = (DROPBOX, BOX)

GRANT_CODE = "authorization_code"
GRANT_REFRESH = "refresh_token"
GRANT_JWT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
GRANT_CCG = "client_credentials"
GRANTS = {DROPBOX: (GRANT_CODE, GRANT_REFRESH), BOX: (GRANT_CODE, GRANT_REFRESH, GRANT_JWT, GRANT_CCG)}

DEFAULT_CONFIG: dict[str, Any] = {
    "dropbox_access_token_ttl": 14400.0,
    "box_access_token_ttl": 3600.0,
    "refresh_token_ttl": 60 * 86400.0,
    "box_refresh_grace": False,
    "code_ttl": 30.0,
    "box_commit_pending": 0,
    # Seconds a pre-signed dl.boxcloud.com link stays valid; a stale link answers 403.
    "box_download_link_ttl": 900.0,
    # Upload sessions for files below this size get 8 MiB parts; each 4x larger band doubles the part size
    # (so 1 GB gets 32 MiB parts, as Box answers); tests lower it to see the growth with small files.
    "box_part_size_threshold": float(128 * 1024 * 1024),
    # Milliseconds every API request waits before it is handled (a network-like round trip on loopback).
    "latency_ms": 0.0,
    # Dropbox write requests (upload and session commits, folder/delete/move/copy) allowed at once per
    # account; one more answers 409 too_many_write_operations (0: unlimited). A batch commit is one write.
    "dropbox_write_concurrency": 0,
    # Change feeds: a long-poll waits its timeout times this scale (tests shrink 30 s to a fraction);
    # Dropbox longpoll answers carry ``backoff`` when set (0: never); a change cursor older than
    # ``dropbox_cursor_max_age`` seconds answers 409 ``reset`` (0: never); Box's real-time server
    # answers ``reconnect`` after ``box_realtime_retry_timeout`` seconds (scaled).
    "longpoll_time_scale": 1.0,
    "dropbox_longpoll_backoff": 0.0,
    "dropbox_cursor_max_age": 0.0,
    "box_realtime_retry_timeout": 610.0,
}

_ALNUM = string.ascii_letters + string.digits


def random_token(length: int, alphabet: str = _ALNUM) -> str:
    """A random string of ``length`` characters from ``alphabet``."""
    return "".join(secrets.choice(alphabet) for _ in range(length))


@dataclass
class App:
    """A registered OAuth client."""

    service: str
    client_id: str
    client_secret: str | None = None
    redirect_uris: list[str] = field(default_factory=list)
    public_keys: dict[str, str] = field(default_factory=dict)
    enterprise_id: str | None = None
    users: list[str] = field(default_factory=list)
    team: bool = False
    team_id: str | None = None
    service_account_id: str | None = None
    # Dropbox: the permissions ticked in the App Console (None: every scope), and App folder access
    # (the app sees only its own folder, modelled as a tree of its own per account).
    scopes: list[str] | None = None
    app_folder: bool = False


@dataclass
class Account:
    """A Dropbox account or a Box user; ``tree_id`` names the file tree it owns."""

    service: str
    id: str
    name: str
    email: str
    role: str = "user"
    enterprise_id: str | None = None
    team_id: str | None = None
    member_id: str | None = None
    namespace_id: str | None = None
    uid: str | None = None


@dataclass
class AuthCode:
    """An authorization code waiting to be exchanged."""

    code: str
    service: str
    client_id: str
    account_id: str
    redirect_uri: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    scope: str | None
    token_access_type: str | None
    issued_at: float
    used: bool = False


@dataclass
class AccessToken:
    """A bearer token; ``family`` ties it to the refresh-token chain it came from."""

    token: str
    service: str
    client_id: str
    account_id: str
    expires_at: float
    family: str | None = None
    scope: str | None = None
    team: bool = False
    revoked: bool = False
    used: bool = False


@dataclass
class RefreshToken:
    """A refresh token; Box ones are consumed on use (``successor`` remembers the pair for the grace)."""

    token: str
    service: str
    client_id: str
    account_id: str
    issued_at: float
    family: str
    scope: str | None = None
    team: bool = False
    pkce: bool = False
    revoked: bool = False
    consumed_at: float | None = None
    successor_access: str | None = None
    successor_refresh: str | None = None


@dataclass
class Fault:
    """An injected failure for the next ``count`` requests whose path matches ``route`` (a glob)."""

    route: str
    status: int | None = None
    retry_after: int | None = None
    delay: float | None = None
    drop: bool = False
    count: int = 1
    error: str | None = None
    # With ``drop``: let the app act and answer, then drop the connection instead of sending the answer
    # (a lost answer: the request took effect but the client cannot know).
    drop_after: bool = False


@dataclass
class DropboxUploadSession:
    """An open Dropbox upload session: its bytes as a list of chunks (no quadratic copies)."""

    session_id: str
    tree_id: str
    chunks: list[bytes] = field(default_factory=list)
    offset: int = 0
    closed: bool = False
    created_at: float = field(default_factory=time.time)


@dataclass
class BoxUploadSession:
    """An open Box chunked upload session."""

    id: str
    tree_id: str
    folder_id: str | None
    file_id: str | None
    file_name: str | None
    file_size: int
    part_size: int
    parts: dict[int, tuple[str, bytes, str]] = field(default_factory=dict)  # offset -> (part_id, data, sha1)
    created_at: float = field(default_factory=time.time)
    commit_attempts: int = 0


def empty_stats() -> dict[str, Any]:
    """Stats with every known grant pre-filled so readers can index without KeyError."""
    return {
        service: {
            "requests": 0,
            "token": {grant: {"ok": 0, "invalid_grant": 0} for grant in GRANTS[service]},
            "routes": {},
            "max_in_flight": 0,
        }
        for service in SERVICES
    }


class EmulatorState:
    """Everything the emulator knows; guarded by ``lock``."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.changes = 0
        self.seed_apps: list[App] = []
        self.seed_accounts: list[Account] = []
        self.seed_config: dict[str, Any] = {}  # start-up settings (--latency-ms) that survive a reset
        self.in_flight: dict[str, int] = {}
        self.writes_in_flight: dict[str, int] = {}
        self.reset()

    def reset(self) -> None:
        """Back to the seeded state: seeded apps and accounts, empty trees, default config, no faults."""
        with self.lock:
            self.config: dict[str, Any] = {**DEFAULT_CONFIG, **self.seed_config}
            self.apps: dict[tuple[str, str], App] = {}
            self.accounts: dict[tuple[str, str], Account] = {}
            self.codes: dict[str, AuthCode] = {}
            self.access_tokens: dict[str, AccessToken] = {}
            self.refresh_tokens: dict[str, RefreshToken] = {}
            self.used_jtis: dict[str, float] = {}
            self.trees: dict[str, Tree] = {}
            self.dropbox_sessions: dict[str, DropboxUploadSession] = {}
            self.box_sessions: dict[str, BoxUploadSession] = {}
            self.batch_jobs: dict[str, list[dict[str, Any]]] = {}  # finish_batch job id -> entries
            self.cursors: dict[str, dict[str, Any]] = {}
            self.download_links: dict[str, tuple[str, bytes, float]] = {}  # token -> (name, bytes, expiry)
            self.faults: list[Fault] = []
            self.stats: dict[str, Any] = empty_stats()
            self.next_box_id = 1000000
            for account in self.seed_accounts:
                self.add_account(copy.deepcopy(account))
            for app in self.seed_apps:
                self.apps[(app.service, app.client_id)] = copy.deepcopy(app)
            self.changed()

    def changed(self) -> None:
        """Note a persistent change (the --state writer saves when this counter moves)."""
        self.changes += 1

    # accounts and trees -------------------------------------------------------------------------

    def add_account(self, account: Account) -> Account:
        """Register an account (idempotent) and create its file tree."""
        with self.lock:
            existing = self.accounts.get((account.service, account.id))
            if existing is not None:
                return existing
            self.accounts[(account.service, account.id)] = account
            tree_id = self.tree_id(account)
            if tree_id not in self.trees:
                root_id = "0" if account.service == BOX else "id:" + random_token(22)
                self.trees[tree_id] = Tree(root_id)
            self.changed()
            return account

    def tree_id(self, account: Account) -> str:
        """Key of the account's own tree: Dropbox namespace id or Box user id."""
        if account.service == DROPBOX:
            return f"dropbox:{account.namespace_id}"
        return f"box:{account.id}"

    def account(self, service: str, account_id: str) -> Account | None:
        """Look an account up by id (Dropbox: account id or team member id)."""
        found = self.accounts.get((service, account_id))
        if found is None and service == DROPBOX:
            for candidate in self.accounts.values():
                if candidate.service == DROPBOX and account_id in (candidate.member_id, candidate.uid):
                    return candidate
        return found

    def new_box_id(self) -> str:
        """A fresh numeric Box item id, unique across every tree."""
        with self.lock:
            self.next_box_id += 1
            return str(self.next_box_id)

    # stats ----------------------------------------------------------------------------------------

    def count_route(self, service: str, route: str, status: int) -> None:
        """Count one answered request of ``route`` with ``status``."""
        with self.lock:
            bucket = self.stats[service]
            bucket["requests"] += 1
            statuses = bucket["routes"].setdefault(route, {})
            statuses[str(status)] = statuses.get(str(status), 0) + 1

    def enter(self, service: str) -> None:
        """A request of ``service`` started; its high-water mark of requests at once is in the stats."""
        with self.lock:
            now = self.in_flight[service] = self.in_flight.get(service, 0) + 1
            bucket = self.stats[service]
            bucket["max_in_flight"] = max(bucket.get("max_in_flight", 0), now)

    def leave(self, service: str) -> None:
        """A request of ``service`` was answered."""
        with self.lock:
            self.in_flight[service] = max(0, self.in_flight.get(service, 0) - 1)

    def start_write(self, key: str) -> bool:
        """Admit a Dropbox write of account ``key`` unless ``dropbox_write_concurrency`` are running."""
        with self.lock:
            limit = int(self.config.get("dropbox_write_concurrency") or 0)
            running = self.writes_in_flight.get(key, 0)
            if limit and running >= limit:
                return False
            self.writes_in_flight[key] = running + 1
            return True

    def end_write(self, key: str) -> None:
        """A write admitted by ``start_write`` finished."""
        with self.lock:
            self.writes_in_flight[key] = max(0, self.writes_in_flight.get(key, 0) - 1)

    def count_grant(self, service: str, grant: str, outcome: str) -> None:
        """Count one token-endpoint answer for ``grant`` ("ok" or the OAuth error code)."""
        with self.lock:
            grants = self.stats[service]["token"].setdefault(grant, {"ok": 0, "invalid_grant": 0})
            grants[outcome] = grants.get(outcome, 0) + 1

    def snapshot_stats(self) -> dict[str, Any]:
        """A deep copy of the stats, safe to serialize outside the lock."""
        with self.lock:
            snapshot = copy.deepcopy(self.stats)
            for service, bucket in snapshot.items():
                bucket["in_flight"] = self.in_flight.get(service, 0)
            return snapshot

    # faults ---------------------------------------------------------------------------------------

    def take_fault(self, path: str) -> Fault | None:
        """The first armed fault matching ``path``, consuming one of its uses."""
        from fnmatch import fnmatchcase

        with self.lock:
            for fault in self.faults:
                if fault.count > 0 and fnmatchcase(path, fault.route):
                    fault.count -= 1
                    taken = copy.copy(fault)
                    self.faults = [f for f in self.faults if f.count > 0]
                    return taken
        return None

    # persistence ----------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """Apps, accounts, tokens and files as JSON (the --state file)."""
        with self.lock:
            return {
                "version": 1,
                "config": dict(self.config),
                "next_box_id": self.next_box_id,
                "apps": [asdict(a) for a in self.apps.values()],
                "accounts": [asdict(a) for a in self.accounts.values()],
                "access_tokens": [asdict(t) for t in self.access_tokens.values()],
                "refresh_tokens": [asdict(t) for t in self.refresh_tokens.values()],
                "trees": {key: tree.to_json() for key, tree in self.trees.items()},
            }

    def load_json(self, data: dict[str, Any]) -> None:
        """Replace apps, accounts, tokens and files with a saved :meth:`to_json` document."""
        with self.lock:
            self.config.update(data.get("config", {}))
            self.next_box_id = int(data.get("next_box_id", self.next_box_id))
            self.apps = {(a["service"], a["client_id"]): App(**a) for a in data.get("apps", [])}
            self.accounts = {(a["service"], a["id"]): Account(**a) for a in data.get("accounts", [])}
            self.access_tokens = {t["token"]: AccessToken(**t) for t in data.get("access_tokens", [])}
            self.refresh_tokens = {t["token"]: RefreshToken(**t) for t in data.get("refresh_tokens", [])}
            self.trees = {key: Tree.from_json(tree) for key, tree in data.get("trees", {}).items()}
            for account in self.accounts.values():
                self.trees.setdefault(
                    self.tree_id(account), Tree("0" if account.service == BOX else "id:root")
                )
