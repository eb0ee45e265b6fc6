"""Checks that must hold on every supported Airflow (3.1 reads the hooks' form methods, 3.2+ conn-fields).

`.ci/compat` runs this module under the oldest supported Airflow with COMPAT_AIRFLOW=3.1 set; there nothing
may skip. In the main suite (newest Airflow, no wtforms) the wtforms check skips with its reason.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dropbox_box_provider.auth.fields import iter_extra_specs
from dropbox_box_provider.hooks.base import BaseOAuthHook
from dropbox_box_provider.hooks.box import BoxHook
from dropbox_box_provider.hooks.dropbox import DropboxHook
from tests.fixtures.airflow import AirflowEnv, airflow_environment

COMPAT = os.environ.get("COMPAT_AIRFLOW")
HOOKS: list[type[BaseOAuthHook]] = [DropboxHook, BoxHook]


def skip_unless_allowed(reason: str) -> None:
    if COMPAT:
        pytest.fail(f"{reason} (COMPAT_AIRFLOW={COMPAT} forbids skipping)")
    pytest.skip(reason)


@pytest.fixture
def bare_airflow(tmp_path: Path) -> AirflowEnv:
    """An isolated home without a metastore: provider discovery needs none."""
    return airflow_environment(tmp_path / "home", "x" * 43 + "=", "compat-jwt-secret")


def test_runs_the_airflow_it_claims() -> None:
    import airflow

    if COMPAT:
        assert airflow.__version__.startswith(f"{COMPAT}."), airflow.__version__
    major, minor = (int(p) for p in airflow.__version__.split(".")[:2])
    assert (major, minor) >= (3, 1)


@pytest.mark.airflow
def test_provider_discovery_and_ui_metadata(bare_airflow: AirflowEnv) -> None:
    """ProvidersManager finds both hooks, and the UI's hook_meta service renders every field."""
    probe = """
import json, warnings
warnings.filterwarnings("ignore")
from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService
metas = {m.connection_type: m.model_dump() for m in HookMetaService.hook_meta_data()}
print("RESULT" + json.dumps({k: metas.get(k) for k in ("dropbox", "box_oauth")}, default=str))
"""
    out = bare_airflow.python(probe).stdout
    metas = json.loads(out[out.index("RESULT") + len("RESULT") :])
    for hook in HOOKS:
        meta = metas[hook.conn_type]
        assert meta is not None, f"{hook.conn_type} not registered"
        assert meta["hook_name"] == hook.hook_name
        assert meta["hook_class_name"] == f"{hook.__module__}.{hook.__name__}"
        assert (
            meta["standard_fields"]["login"]["title"]
            == {"dropbox": "App key", "box": "Client ID"}[hook.service]
        )
        assert meta["standard_fields"]["port"]["hidden"] is True
        extra = meta["extra_fields"]
        specs = list(iter_extra_specs(hook.service))
        assert set(extra) == {s.name for s in specs}
        for spec in specs:
            schema = extra[spec.name]["schema"]
            assert schema["title"] == spec.label
            assert (schema.get("format") == "password") is spec.secret, spec.name
            if spec.enum:
                assert [v for v in schema["enum"] if v is not None] == list(spec.enum)


@pytest.mark.parametrize("hook", HOOKS, ids=lambda h: h.conn_type)
def test_form_widgets_build_with_wtforms(hook: type[BaseOAuthHook]) -> None:
    """The hook-method form path of Airflow < 3.2: real WTForms fields that validate like the config does."""
    try:
        import flask_appbuilder  # noqa: F401
        import wtforms
    except ImportError as error:
        skip_unless_allowed(f"{error.name} is not installed (Airflow >= 3.2 renders conn-fields without it)")
    assert "get_connection_form_widgets" in hook.__dict__  # Airflow 3.1 ignores inherited form methods
    assert "get_ui_field_behaviour" in hook.__dict__
    widgets = hook.get_connection_form_widgets()
    specs = {s.name: s for s in iter_extra_specs(hook.service)}
    assert list(widgets) == list(specs)
    for name, unbound in widgets.items():
        spec = specs[name]
        expected = (
            "PasswordField" if spec.secret else ("IntegerField" if spec.type == "integer" else "StringField")
        )
        assert unbound.field_class.__name__ == expected, name

    form_class = type("ConnForm", (wtforms.Form,), dict(widgets))
    good = form_class(PostData(initiate_oauth="REFRESH", refresh_margin="60", scopes=""))
    assert good.validate(), good.errors
    assert good.data["refresh_margin"] == 60
    bad = form_class(PostData(initiate_oauth="SOMETIMES", refresh_margin="soon"))
    assert not bad.validate()
    assert set(bad.errors) == {"initiate_oauth", "refresh_margin"}


class PostData(dict[str, str]):
    """Form data as a browser posts it (WTForms reads it through ``getlist``)."""

    def __init__(self, **values: str) -> None:
        super().__init__(values)

    def getlist(self, key: str) -> list[str]:
        return [self[key]] if key in self else []


@pytest.mark.parametrize("hook", HOOKS, ids=lambda h: h.conn_type)
def test_ui_field_behaviour_matches_airflow_schema(hook: type[BaseOAuthHook]) -> None:
    import airflow
    import jsonschema

    schema_file = Path(airflow.__path__[0]) / "customized_form_field_behaviours.schema.json"
    behaviour = hook.get_ui_field_behaviour()
    jsonschema.validate(behaviour, json.loads(schema_file.read_text()))
    assert behaviour["hidden_fields"] == ["schema", "port"]
    login, secret = {"dropbox": ("App key", "App secret"), "box": ("Client ID", "Client secret")}[
        hook.service
    ]
    assert behaviour["relabeling"] == {
        "login": login,
        "password": secret,
        "host": "Endpoint override (optional)",
    }


# The change-feed triggers (and their producers) need Airflow 3.3; every other module must import on 3.1.
EVENT_TRIGGER_MODULES = (
    "dropbox_box_provider.triggers.dropbox_changes",
    "dropbox_box_provider.triggers.box_events",
)
NEEDS_3_3 = (
    "dropbox_box_provider.triggers._feed",
    "dropbox_box_provider.triggers.feeds.",
    *EVENT_TRIGGER_MODULES,
)
# Test and development tooling (the emulator's web server and its test kit) is not the provider's runtime;
# the SDK bridges need the optional ``sdk`` extra (the official SDKs), which the compat run does not install.
NOT_RUNTIME = (
    "dropbox_box_provider.emulator",
    "dropbox_box_provider.testing",
    "dropbox_box_provider.hooks.dropbox.sdk",
    "dropbox_box_provider.hooks.box.sdk",
)


def test_change_triggers_need_airflow_3_3_and_everything_else_imports() -> None:
    """On Airflow < 3.3 importing a change trigger raises EventTriggerUnavailable (an ImportError) naming
    Airflow 3.3, and every other provider module imports; on 3.3+ the triggers are event triggers. Run in a
    fresh interpreter so no module imported by another test hides a missing one."""
    import airflow

    probe = f"""
import importlib, json, pkgutil, warnings
warnings.filterwarnings("ignore")
import dropbox_box_provider
from dropbox_box_provider.errors import EventTriggerUnavailable
result = {{"triggers": {{}}, "failed": {{}}, "imported": 0}}
for name in {EVENT_TRIGGER_MODULES!r}:
    try:
        module = importlib.import_module(name)
    except EventTriggerUnavailable as exc:
        result["triggers"][name] = ["unavailable", isinstance(exc, ImportError), str(exc)]
    else:
        from airflow.triggers.base import BaseEventTrigger
        classes = [c for c in vars(module).values() if isinstance(c, type) and c.__module__ == name]
        result["triggers"][name] = ["imported", all(issubclass(c, BaseEventTrigger) for c in classes), ""]
for info in pkgutil.walk_packages(dropbox_box_provider.__path__, "dropbox_box_provider."):
    if info.name.startswith({NEEDS_3_3!r} + {NOT_RUNTIME!r}) or info.name.endswith(".__main__"):
        continue
    try:
        importlib.import_module(info.name)
        result["imported"] += 1
    except Exception as exc:
        result["failed"][info.name] = repr(exc)
print("RESULT" + json.dumps(result))
"""
    completed = subprocess.run(
        [sys.executable, "-c", probe], check=False, capture_output=True, text=True, timeout=300
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    out = completed.stdout
    result = json.loads(out[out.index("RESULT") + len("RESULT") :])
    assert result["failed"] == {}, result["failed"]
    assert result["imported"] >= 20, result
    major, minor = (int(p) for p in airflow.__version__.split(".")[:2])
    for name in EVENT_TRIGGER_MODULES:
        outcome, flag, message = result["triggers"][name]
        if (major, minor) < (3, 3):
            assert outcome == "unavailable" and flag, (name, result["triggers"][name])
            assert "Airflow 3.3" in message and "RemoteFileTrigger" in message, message
        else:
            assert outcome == "imported" and flag, (name, result["triggers"][name])
