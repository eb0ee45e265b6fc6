"""The demo's steps, in order. Each step says what happens, runs real processes and checks its claim."""

from __future__ import annotations

import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from demo import airflow, files
from demo.authorize import authorize_headless
from demo.console import Console, StepFailed, log_tail
from demo.emulator import JWT_GRANT, RunningEmulator, start_emulator
from demo.processes import ProcessSupervisor
from demo.secrets_check import leaks, stored_tokens
from demo.workspace import BOX_CONN, BOX_JWT_CONN, DROPBOX_CONN, Workspace, script
from dropbox_box_provider.store.base import TokenStore
from dropbox_box_provider.store.factory import open_store

#: Shortened access-token lifetime: beyond the hooks' 5-minute refresh margin (so tokens are still usable)
#: but inside the refresh DAG's 30-minute window (so the DAG finds both tokens due and refreshes them).
ACCESS_TOKEN_TTL = 600
OAUTH_CONNS = (DROPBOX_CONN, BOX_CONN)
ALL_CONNS = (DROPBOX_CONN, BOX_CONN, BOX_JWT_CONN)
STEPS = 10


@dataclass
class DemoRun:
    """One run of the demo in ``workspace``; ``ui`` adds the api-server at the end."""

    workspace: Workspace
    ui: bool = False
    console: Console = field(init=False)
    supervisor: ProcessSupervisor = field(default_factory=ProcessSupervisor)
    emulator: RunningEmulator | None = None
    secrets: set[str] = field(default_factory=set, repr=False)
    started: float = field(default_factory=time.monotonic)
    facts: dict[str, str] = field(default_factory=dict)
    migration: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.console = Console(STEPS + (1 if self.ui else 0))

    @property
    def store(self) -> TokenStore:
        return open_store(self.workspace.store_url, self.workspace.store_key)

    @property
    def emu(self) -> RunningEmulator:
        assert self.emulator is not None
        return self.emulator

    def remember_tokens(self) -> None:
        """Note the tokens the store holds now, to prove later that none was printed or logged."""
        self.secrets |= stored_tokens(self.store, ALL_CONNS)

    def versions(self) -> dict[str, int]:
        return {m.conn_id: m.version for m in self.store.list_meta()}

    # -- steps -------------------------------------------------------------------------------------

    def run(self) -> None:
        """All steps; raises StepFailed (or KeyboardInterrupt) on the first that does not hold."""
        try:
            self.fresh_workspace()
            self.start_emulator()
            self.prepare_airflow()
            self.authorize(DROPBOX_CONN, "Dropbox")
            self.authorize(BOX_CONN, "Box")
            self.fill_inbox()
            self.refresh_dag()
            self.sync_dag()
            self.service_account_token()
            self.status()
            self.summary()
            if self.ui:
                self.serve_ui()
        finally:
            self.supervisor.stop_all()

    def fresh_workspace(self) -> None:
        ws = self.workspace
        self.console.step(
            f"Fresh work directory {_short(ws.root)}",
            "Everything of a previous run is removed; a new Airflow home and new encryption keys are made.",
        )
        ws.recreate()
        self.console.detail(f"AIRFLOW_HOME   {_short(ws.airflow_home)} (sqlite metastore)")
        self.console.detail(f"token store    {_short(ws.store_path)} (sqlite, Fernet key generated now)")
        self.console.detail(f"logs           {_short(ws.logs)} (every command's full output)")
        self.console.done()

    def start_emulator(self) -> None:
        self.console.step(
            "Start the local Dropbox + Box emulator (--seed demo)",
            "It speaks both services' OAuth and file APIs on loopback; the demo apps are registered in it.",
        )
        self.emulator = start_emulator(self.supervisor, self.workspace)
        self.console.detail(f"listening on {self.emu.url} (pid {self.emu.pid})")
        self.emu.client.configure(access_token_ttl=ACCESS_TOKEN_TTL)
        self.console.detail(
            f"access tokens now live {ACCESS_TOKEN_TTL // 60} minutes instead of hours, so the refresh DAG "
            "below has real work to do"
        )
        self.workspace.define_connections(self.emu.url)
        self.console.done()

    def prepare_airflow(self) -> None:
        ws = self.workspace
        self.console.step(
            "Prepare Airflow: metastore, secrets backend, connections",
            "`airflow db migrate` starts in the background (it takes a while); the token-store secrets "
            "backend and three connections are configured through environment variables.",
        )
        self.migration = airflow.start_migrate(self.supervisor, ws)
        self.console.detail("[secrets] backend = TokenStoreBackend, store = the sqlite file above")
        for conn_id, definition in ws.connections.items():
            scheme = definition["extra"].get("auth_scheme", "oauth")
            self.console.detail(
                f"connection {conn_id:<16} type {definition['conn_type']:<10} {scheme:<6} Host = emulator"
            )
        env_file = ws.write_env_file()
        self.console.detail(
            f"`source {_short(env_file)}` lets you run airflow / dropbox-box-auth here yourself"
        )
        self.console.done()

    def authorize(self, conn_id: str, name: str) -> None:
        self.console.step(
            f"Authorize {conn_id} ({name}) with `dropbox-box-auth authorize {conn_id} --headless`",
            "The CLI prints the consent URL and waits; the emulator clicks Allow and the demo pastes back "
            + (
                "the code the page shows." if name == "Dropbox" else "the redirected address (state checked)."
            ),
        )
        consent, result = authorize_headless(self.supervisor, self.workspace, self.emu, conn_id)
        self.console.detail(f"CLI printed: {_shorten_url(consent.url)}")
        self.console.detail(
            "pasted: the authorization code" if consent.service == "dropbox"
            else "pasted: http://localhost:33333/?code=…&state=… (the redirect the browser would show)"
        )  # fmt: skip
        self.console.detail(f"CLI: {result}" if result else "CLI finished")
        self.remember_tokens()
        if self.store.read(conn_id) is None:
            raise StepFailed(f"the CLI finished but the token store holds no tokens for {conn_id!r}")
        self.console.done()

    def fill_inbox(self) -> None:
        self.console.step(
            f"Put {len(files.DEMO_FILES)} files into the Dropbox folder {files.INBOX}",
            "What a person would do in Dropbox; the sync DAG below picks them up.",
        )
        record = self.store.read(DROPBOX_CONN)
        assert record is not None
        files.upload_to_dropbox(self.emu.url, str(record.payload["access_token"]), files.DEMO_FILES)
        for name, content in files.DEMO_FILES.items():
            self.console.detail(f"{files.INBOX}/{name} ({len(content)} bytes)")
        self.console.done()

    def refresh_dag(self) -> None:
        self.console.step(
            "Run the oauth_token_refresh DAG (`airflow dags test`)",
            "A deferrable sensor sees each token expire within 30 minutes; the operator refreshes it through "
            "the token store. Box answers with a new refresh token (rotation), which the store keeps.",
        )
        if self.migration is not None:
            self.console.detail("waiting for `airflow db migrate` (started in step 3) ...")
            airflow.finish_migrate(self.supervisor, self.workspace, self.migration)
            self.migration = None
        before = self.versions()
        box_before = self.store.read(BOX_CONN)
        grants_before = (
            self.emu.grants("dropbox", "refresh_token"),
            self.emu.grants("box", "refresh_token"),
        )
        result = airflow.dags_test(
            self.supervisor, self.workspace, "oauth_token_refresh", {"conn_ids": list(OAUTH_CONNS)}
        )
        self.console.detail(f"tasks: {result.describe()}")
        dropbox_refreshes = self.emu.grants("dropbox", "refresh_token") - grants_before[0]
        box_refreshes = self.emu.grants("box", "refresh_token") - grants_before[1]
        after = self.versions()
        box_after = self.store.read(BOX_CONN)
        self.remember_tokens()
        rotated = (
            box_before is not None
            and box_after is not None
            and box_after.payload.get("refresh_token") != box_before.payload.get("refresh_token")
        )
        self.console.detail(f"emulator: Dropbox refresh grants {dropbox_refreshes}, Box {box_refreshes}")
        self.console.detail(
            "store: "
            + ", ".join(f"{c} version {before.get(c, 0)} -> {after.get(c, 0)}" for c in OAUTH_CONNS)
            + f"; Box refresh token rotated: {'yes' if rotated else 'no'}"
        )
        if dropbox_refreshes < 1 or box_refreshes < 1 or not rotated:
            raise StepFailed(
                "the refresh DAG succeeded but did not refresh both tokens and rotate Box's refresh token; "
                f"see {_short(self.workspace.logs / 'dags-test-oauth_token_refresh.log')}"
            )
        self.facts["refreshes"] = f"Dropbox {dropbox_refreshes}, Box {box_refreshes}"
        self.facts["rotations"] = f"{box_refreshes} (stored refresh token replaced, old one now invalid)"
        self.console.done()

    def sync_dag(self) -> None:
        self.console.step(
            "Run the dropbox_to_box_sync DAG (`airflow dags test`)",
            f"Copies new files from Dropbox {files.INBOX} to Box /{files.BOX_FOLDER} "
            "in one task (checksums verified on both sides; nothing staged on a worker's disk).",
        )
        conf = {
            "dropbox_conn_id": DROPBOX_CONN,
            "dropbox_folder": files.INBOX,
            "pattern": "*",
            "box_conn_id": BOX_CONN,
            "box_folder": f"/{files.BOX_FOLDER}",
        }
        result = airflow.dags_test(self.supervisor, self.workspace, "dropbox_to_box_sync", conf)
        self.console.detail(f"tasks: {result.describe()}")
        record = self.store.read(BOX_CONN)
        assert record is not None
        in_box = {
            f.name: f.sha1 for f in files.box_folder_files(self.emu.url, str(record.payload["access_token"]))
        }
        expected = {name: files.sha1_of(content) for name, content in files.DEMO_FILES.items()}
        for name in sorted(expected):
            same = (
                "same SHA-1 as the Dropbox original"
                if in_box.get(name) == expected[name]
                else "MISSING/DIFFERENT"
            )
            self.console.detail(f"Box /{files.BOX_FOLDER}/{name}: {same}")
        if in_box != expected:
            raise StepFailed(
                f"Box /{files.BOX_FOLDER} does not hold exactly the Dropbox files: {sorted(in_box)}"
            )
        self.facts["files"] = (
            f"{len(in_box)} of {len(expected)} (Dropbox {files.INBOX} -> Box /{files.BOX_FOLDER})"
        )
        self.remember_tokens()
        self.console.done()

    def service_account_token(self) -> None:
        self.console.step(
            f"Get a token for the Box service account: `dropbox-box-auth refresh {BOX_JWT_CONN}`",
            "A JWT connection needs no person: the key in the Box app config file signs an assertion, Box "
            "answers with a token, and the store keeps it for every task.",
        )
        before = self.emu.grants("box", JWT_GRANT)
        log = self.workspace.logs / f"refresh-{BOX_JWT_CONN}.log"
        code = self.supervisor.run(
            f"dropbox-box-auth refresh {BOX_JWT_CONN}",
            [script("dropbox-box-auth"), "refresh", BOX_JWT_CONN],
            env=self.workspace.env(),
            log_path=log,
            cwd=self.workspace.root,
            timeout=120,
        )
        said = log.read_text(errors="replace") if log.exists() else ""
        result = next((line for line in said.splitlines() if line.startswith("Refreshed ")), "")
        if code != 0:
            raise StepFailed(f"`dropbox-box-auth refresh {BOX_JWT_CONN}` exited {code}:\n{log_tail(log)}")
        self.console.detail(f"CLI: {result}" if result else "CLI finished")
        assertions = self.emu.grants("box", JWT_GRANT) - before
        self.console.detail(f"emulator: JWT bearer grants {assertions}")
        if assertions < 1 or self.store.read(BOX_JWT_CONN) is None:
            raise StepFailed("the CLI finished without a JWT grant at the emulator or a stored token")
        self.facts["jwt"] = f"{assertions} (service account token, no person involved)"
        self.remember_tokens()
        self.console.done()

    def status(self) -> None:
        self.console.step(
            "`dropbox-box-auth status`",
            "What the token store knows about each connection, from clear metadata (no token is decrypted "
            "for display).",
        )
        log = self.workspace.logs / "status.log"
        code = self.supervisor.run(
            "dropbox-box-auth status",
            [script("dropbox-box-auth"), "status"],
            env=self.workspace.env(),
            log_path=log,
            cwd=self.workspace.root,
            timeout=120,
        )
        table = log.read_text(errors="replace") if log.exists() else ""
        self.console.detail("\n".join(line.strip() for line in table.strip().splitlines()))
        if code != 0:
            raise StepFailed(f"`dropbox-box-auth status` exited {code}:\n{log_tail(log)}")
        self.console.done()

    def summary(self) -> None:
        failures = self.emu.failed_grants()
        versions = self.versions()
        secrets = self.secrets | {self.workspace.store_key, self.workspace.fernet_key}
        places = leaks(
            secrets, self.console.lines, [self.workspace.logs, self.workspace.airflow_home / "logs"]
        )
        rows = [
            ("files moved", self.facts.get("files", "-")),
            ("refresh grants", self.facts.get("refreshes", "-")),
            ("Box token rotations", self.facts.get("rotations", "-")),
            ("Box JWT grants", self.facts.get("jwt", "-")),
            ("failed token requests", ", ".join(f"{k} {v}" for k, v in failures.items()) or "none"),
            ("store record versions", ", ".join(f"{c} v{v}" for c, v in sorted(versions.items()))),
            ("secrets in output/logs", ", ".join(places) or f"none ({len(self.secrets)} tokens checked)"),
            ("total time", f"{time.monotonic() - self.started:.0f} s"),
        ]
        self.console.table("Summary", rows)
        if failures or places:
            raise StepFailed(
                "the emulator saw failed token requests" if failures else f"a secret appears in {places}"
            )

    def serve_ui(self) -> None:
        self.console.step(
            "Airflow UI (`airflow api-server`)",
            "The demo connections are copied into the metastore so the UI lists them with their forms.",
        )
        airflow.import_connections(self.supervisor, self.workspace)
        url, server = airflow.start_api_server(self.supervisor, self.workspace)
        self.console.detail(f"URL:   {url}  (connections: {url}/connections)")
        self.console.detail("login: none needed (SimpleAuthManager, every user is admin)")
        self.console.detail("Test button: enabled ([core] test_connection = Enabled)")
        self.console.detail(f"emulator still at {self.emu.url}; press Ctrl-C to stop everything")
        try:
            while server.poll() is None and self.emu.process.poll() is None:
                time.sleep(0.5)
        except KeyboardInterrupt:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # `uv run` forwards a second Ctrl-C: finish stopping
            self.console.detail("Ctrl-C: stopping the api-server and the emulator")
            self.supervisor.stop_all()
            return
        raise StepFailed(
            "a background process stopped on its own; see the logs in " + _short(self.workspace.logs)
        )


def _short(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _shorten_url(url: str, keep: int = 110) -> str:
    return url if len(url) <= keep else url[: keep - 1] + "…"
