"""What a DAG file imports at parse time stays cheap: the hooks and every trigger module (asset watchers)
load only the provider modules a DAG file uses, in a fresh process. The HTTP transport, token manager,
token store, OAuth flows and transfer code load with the first call (``dropbox_box_provider/lazy.py``).

Trigger modules are discovered, so a new ``dropbox_box_provider.triggers.*`` module is covered as soon as it
exists: it must stay as lazy as the hooks (import the hooks inside the functions that use them).
"""

from __future__ import annotations

import json
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import dropbox_box_provider.triggers

PACKAGE = "dropbox_box_provider"
HOOK_MODULES = ("dropbox_box_provider.hooks.dropbox", "dropbox_box_provider.hooks.box")
TRIGGER_MODULES = tuple(
    f"dropbox_box_provider.triggers.{info.name}"
    for info in pkgutil.iter_modules(dropbox_box_provider.triggers.__path__)
)

# Never in a DAG-parsing process.
# The official SDKs (the [sdk] extra) load only when get_sdk_client() is called.
NEVER = (
    "dropbox_box_provider.emulator",
    "dropbox_box_provider.cli",
    "uvicorn",
    "psycopg",
    "dropbox",
    "box_sdk_gen",
)
# `import airflow.sdk` itself loads SQLAlchemy's PostgreSQL dialect (airflow.models.dagbundle ->
# airflow.utils.sqlalchemy); the hooks must not add it where Airflow does not.
NOT_ADDED = ("sqlalchemy.dialects.postgresql",)
# Loaded by the first call, never by the import: token handling, HTTP, store, transfers, JWT signing.
ON_DEMAND = (
    "jwt",
    "dropbox_box_provider.auth.config",
    "dropbox_box_provider.auth.flows",
    "dropbox_box_provider.auth.jwt",
    "dropbox_box_provider.auth.manager",
    "dropbox_box_provider.auth.tokens",
    "dropbox_box_provider.auth.transport",
    "dropbox_box_provider.store",
    "dropbox_box_provider.secrets",
    "dropbox_box_provider.hooks.box.download",
    "dropbox_box_provider.hooks.box.upload",
    "dropbox_box_provider.hooks.dropbox.download",
    "dropbox_box_provider.hooks.dropbox.stream",
    "dropbox_box_provider.hooks.dropbox.upload",
    "dropbox_box_provider.hooks.box.paths",
    "dropbox_box_provider.hooks.hashing",
    "dropbox_box_provider.content_hash",
    # Remote-file calls beyond the RemoteFiles core; the change feeds' answers and typed changes.
    "dropbox_box_provider.hooks.file_api",
    "dropbox_box_provider.hooks.box.file_api",
    "dropbox_box_provider.hooks.dropbox.file_api",
    "dropbox_box_provider.hooks.changes",
    "dropbox_box_provider.hooks.box.event_feed",
    "dropbox_box_provider.hooks.dropbox.change_feed",
    # The change triggers' shared-stream producers: only the triggerer runs them.
    "airflow.triggers.shared_stream",
    "dropbox_box_provider.triggers.feeds.base",
    "dropbox_box_provider.triggers.feeds.box",
    "dropbox_box_provider.triggers.feeds.dropbox",
)
# Every provider module a DAG file may load while parsed: the hook classes and their bases (the change-feed
# mixins included), the endpoint table, the path, matching, progress and lineage helpers the hook modules
# bind, the upload size defaults in DropboxHook's signatures, and the trigger modules with the token
# policy. Anything else is unused at parse time.
PARSE_TIME = {
    "dropbox_box_provider",
    "dropbox_box_provider.auth",
    "dropbox_box_provider.auth.fields",
    "dropbox_box_provider.auth.masking",
    "dropbox_box_provider.auth.policy",
    "dropbox_box_provider.auth.services",
    "dropbox_box_provider.deprecation",
    "dropbox_box_provider.errors",
    "dropbox_box_provider.forms",
    "dropbox_box_provider.get_provider_info",
    "dropbox_box_provider.hooks",
    "dropbox_box_provider.hooks.base",
    "dropbox_box_provider.hooks.box",
    "dropbox_box_provider.hooks.box.events",
    "dropbox_box_provider.hooks.box.hook",
    "dropbox_box_provider.hooks.dropbox",
    "dropbox_box_provider.hooks.dropbox.changes",
    "dropbox_box_provider.hooks.dropbox.hook",
    "dropbox_box_provider.hooks.dropbox.limits",
    "dropbox_box_provider.hooks.dropbox.paths",
    "dropbox_box_provider.hooks.files",
    "dropbox_box_provider.hooks.matching",
    "dropbox_box_provider.hooks.progress",
    "dropbox_box_provider.lazy",
    "dropbox_box_provider.lineage",
    "dropbox_box_provider.triggers",
    "dropbox_box_provider.uris",
    *TRIGGER_MODULES,
}
# A DAG file with asset watchers: both hooks, every trigger module, and Airflow's own Asset/AssetWatcher.
DAG_FILE = "from airflow.sdk import Asset, AssetWatcher; " + "; ".join(
    f"import {module}" for module in (*HOOK_MODULES, *TRIGGER_MODULES)
)


def _matches(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def loaded_modules(statement: str, home: Path) -> set[str]:
    """The module names a fresh interpreter holds after ``statement``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env["AIRFLOW_HOME"] = str(home)
    code = f"{statement}; import sys, json; print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


@pytest.fixture(scope="module")
def airflow_baseline(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    return loaded_modules("from airflow.sdk import BaseHook", tmp_path_factory.mktemp("baseline"))


@pytest.fixture(scope="module")
def watcher_baseline(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """What Airflow itself loads for any asset watcher (``AssetWatcher`` validates its trigger against
    ``airflow.triggers.base.BaseEventTrigger``)."""
    statement = "from airflow.sdk import BaseHook, Asset, AssetWatcher; import airflow.triggers.base"
    return loaded_modules(statement, tmp_path_factory.mktemp("watcher"))


def test_trigger_modules_are_discovered() -> None:
    assert "dropbox_box_provider.triggers.files" in TRIGGER_MODULES
    assert "dropbox_box_provider.triggers.token" in TRIGGER_MODULES


@pytest.mark.parametrize(
    "statement",
    [*(f"import {m}" for m in (*HOOK_MODULES, *TRIGGER_MODULES)), DAG_FILE],
    ids=[*HOOK_MODULES, *TRIGGER_MODULES, "dag file with asset watchers"],
)
def test_dag_file_imports_load_only_what_a_dag_file_uses(
    statement: str, tmp_path: Path, airflow_baseline: set[str], watcher_baseline: set[str]
) -> None:
    loaded = loaded_modules(statement, tmp_path)
    added = loaded - airflow_baseline
    imported = [part.removeprefix("import ") for part in statement.split("; ") if part.startswith("import ")]
    assert set(imported) <= loaded  # the probe really imported them
    assert sorted(n for n in loaded if _matches(n, NEVER)) == []
    assert sorted(n for n in added if _matches(n, NOT_ADDED)) == []
    assert sorted(n for n in added if _matches(n, ON_DEMAND)) == []
    assert sorted(n for n in added if n.startswith(PACKAGE) and n not in PARSE_TIME) == []
    # No third-party distribution beyond Airflow's own modules (standard library modules are fine).
    foreign = {n.partition(".")[0] for n in loaded - watcher_baseline}
    foreign -= {*sys.stdlib_module_names, PACKAGE, "airflow"}
    assert sorted(n for n in foreign if not n.startswith("_")) == []


def test_first_call_loads_the_deferred_modules(tmp_path: Path) -> None:
    """The stand-ins resolve on use and then bind the real module: a hook's constructor loads the transport
    (through ``hooks.base``); the hook module's own name binds it at its first use."""
    statement = (
        "from dropbox_box_provider.hooks import base; "
        "from dropbox_box_provider.hooks.dropbox import hook as module; "
        "hook = module.DropboxHook('lazy_probe'); "
        "from dropbox_box_provider.auth import transport; "
        "assert base.transport is transport and hook.retry_policy is transport.DEFAULT_RETRY_POLICY; "
        "assert module.transport.may_have_acted is transport.may_have_acted; "
        "assert module.transport is transport"
    )
    loaded = loaded_modules(statement, tmp_path)
    assert "dropbox_box_provider.auth.transport" in loaded


def test_a_change_trigger_loads_its_producer_when_the_stream_starts(tmp_path: Path) -> None:
    """A DAG file builds asset watchers without Airflow's shared-stream machinery; the triggerer's
    ``create_shared_stream_producer`` loads the service's producer, a ``SharedStreamProducer``."""
    statement = (
        "import sys; "
        "from airflow.sdk import Asset, AssetWatcher; "
        "from dropbox_box_provider.triggers.box_events import BoxEventTrigger; "
        "from dropbox_box_provider.triggers.dropbox_changes import DropboxChangeTrigger; "
        "triggers = [BoxEventTrigger(conn_id='box_probe'), DropboxChangeTrigger(conn_id='dbx_probe')]; "
        "watchers = [AssetWatcher(name=f'probe_{i}', trigger=t) for i, t in enumerate(triggers)]; "
        "asset = Asset('probe', watchers=watchers); "
        "assert 'airflow.triggers.shared_stream' not in sys.modules; "
        "producers = [type(t).create_shared_stream_producer(t.serialize()[1]) for t in triggers]; "
        "from airflow.triggers.shared_stream import SharedStreamProducer; "
        "from dropbox_box_provider.triggers.feeds.box import BoxFeed; "
        "from dropbox_box_provider.triggers.feeds.dropbox import DropboxFeed; "
        "assert [type(p) for p in producers] == [BoxFeed, DropboxFeed]; "
        "assert all(isinstance(p, SharedStreamProducer) for p in producers)"
    )
    loaded = loaded_modules(statement, tmp_path)
    assert "dropbox_box_provider.triggers.feeds.base" in loaded
