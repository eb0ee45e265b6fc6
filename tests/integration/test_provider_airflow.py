"""The provider as real Airflow sees it: CLI discovery, ProvidersManager, api-server form metadata."""

from __future__ import annotations

import json
from typing import Any

import httpx
import jsonschema
import pytest

from dropbox_box_provider.auth.fields import FIELD_SPECS, iter_extra_specs, standard_spec
from dropbox_box_provider.get_provider_info import get_provider_info
from tests.fixtures.airflow import AirflowEnv

pytestmark = pytest.mark.airflow

CONN_TYPES = {"dropbox": "dropbox", "box_oauth": "box"}
HOOKS = {
    "dropbox": ("dropbox_box_provider.hooks.dropbox.DropboxHook", "Dropbox"),
    "box_oauth": ("dropbox_box_provider.hooks.box.BoxHook", "Box (OAuth)"),
}


def test_provider_info_matches_airflow_schema() -> None:
    import airflow

    schema_path = f"{airflow.__path__[0]}/provider_info.schema.json"
    with open(schema_path) as f:
        jsonschema.validate(get_provider_info(), json.load(f))


def test_every_registered_module_and_class_imports() -> None:
    """A module named in the provider info that fails to import would be skipped silently by Airflow."""
    import importlib

    info = get_provider_info()
    integrations = {i["integration-name"] for i in info["integrations"]}
    for kind in ("hooks", "operators", "sensors", "triggers"):
        for entry in info[kind]:
            assert entry["integration-name"] in integrations
            for module in entry["python-modules"]:
                importlib.import_module(module)
    links = info["extra-links"]
    for dotted in [
        *info["secrets-backends"],
        *(c["hook-class-name"] for c in info["connection-types"]),
        *links,
    ]:
        module, _, name = dotted.rpartition(".")
        assert isinstance(getattr(importlib.import_module(module), name), type)


def test_integrations_are_per_service_with_their_own_modules() -> None:
    info = get_provider_info()
    assert [i["integration-name"] for i in info["integrations"]] == ["Dropbox", "Box"]

    def modules(kind: str, service: str) -> set[str]:
        return {m for e in info[kind] if e["integration-name"] == service for m in e["python-modules"]}

    shared = {"operators": "refresh", "sensors": "token", "triggers": "token"}
    for service, own in (("Dropbox", "dropbox"), ("Box", "box")):
        other = "box" if own == "dropbox" else "dropbox"
        assert modules("hooks", service) == {f"dropbox_box_provider.hooks.{own}"}
        # Remote-to-remote operators move files between both services: they belong to both integrations.
        both = {"operators": {"dropbox_box_provider.operators.remote_transfer"}, "sensors": set()}
        for kind in ("operators", "sensors"):
            assert modules(kind, service) == {
                f"dropbox_box_provider.{kind}.{own}",
                f"dropbox_box_provider.{kind}.{shared[kind]}",
                *both[kind],
            }
            assert f"dropbox_box_provider.{kind}.{other}" not in modules(kind, service)
        feed = "dropbox_changes" if own == "dropbox" else "box_events"
        assert modules("triggers", service) == {
            "dropbox_box_provider.triggers.files",
            "dropbox_box_provider.triggers.token",
            f"dropbox_box_provider.triggers.{feed}",
        }


def test_config_section_declares_the_defaults_the_code_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    from dropbox_box_provider import provider_config
    from dropbox_box_provider.deprecation import reset_warnings
    from dropbox_box_provider.errors import AuthConfigError

    options = get_provider_info()["config"]["dropbox_box"]["options"]
    assert set(options) == {
        "token_store",
        "refresh_margin",
        "lease_seconds",
        "max_active_transfers",
        "max_concurrent_transfers",
    }
    assert options["refresh_margin"]["default"] == str(provider_config.DEFAULT_REFRESH_MARGIN)
    assert options["lease_seconds"]["default"] == f"{provider_config.DEFAULT_LEASE_SECONDS:g}"
    assert options["max_active_transfers"]["default"] == str(provider_config.DEFAULT_MAX_ACTIVE_TRANSFERS)
    assert options["max_concurrent_transfers"]["version_deprecated"]
    monkeypatch.setenv("AIRFLOW__DROPBOX_BOX__REFRESH_MARGIN", "42")
    monkeypatch.setenv("AIRFLOW__DROPBOX_BOX__MAX_CONCURRENT_TRANSFERS", "2")
    monkeypatch.setenv("AIRFLOW__DROPBOX_BOX__TOKEN_STORE", "memory://configured")
    assert provider_config.default_refresh_margin() == 42
    reset_warnings()
    with pytest.warns(DeprecationWarning, match="max_active_transfers"):
        assert provider_config.max_active_transfers() == 2  # the old name, read when only it is set
    monkeypatch.setenv("AIRFLOW__DROPBOX_BOX__MAX_ACTIVE_TRANSFERS", "3")
    assert provider_config.max_active_transfers() == 3
    assert provider_config.default_token_store() == "memory://configured"
    monkeypatch.setenv("AIRFLOW__DROPBOX_BOX__REFRESH_MARGIN", "soon")
    with pytest.raises(AuthConfigError, match=r"\[dropbox_box\] refresh_margin = 'soon'.*e\.g\. 300"):
        provider_config.default_refresh_margin()


def test_hooks_use_the_configured_refresh_margin_and_token_store(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """A connection without refresh_margin / oauth_settings_location takes [dropbox_box]'s; its own wins."""
    from cryptography.fernet import Fernet

    from dropbox_box_provider.hooks.dropbox import DropboxHook
    from dropbox_box_provider.secrets.token_store import forget_configured_backend

    forget_configured_backend()
    monkeypatch.setenv("AIRFLOW__CORE__FERNET_KEY", Fernet.generate_key().decode())
    monkeypatch.setenv("AIRFLOW__DROPBOX_BOX__REFRESH_MARGIN", "42")
    monkeypatch.setenv("AIRFLOW__DROPBOX_BOX__TOKEN_STORE", f"sqlite:///{tmp_path}/configured.db")
    plain = {"conn_type": "dropbox", "login": "app", "password": "secret"}
    monkeypatch.setenv("AIRFLOW_CONN_CFG_PLAIN", json.dumps(plain))
    own = {**plain, "extra": {"refresh_margin": 7, "oauth_settings_location": f"{tmp_path}/own.db"}}
    monkeypatch.setenv("AIRFLOW_CONN_CFG_OWN", json.dumps(own))
    hook = DropboxHook("cfg_plain")
    assert hook.get_auth_config().refresh_margin == 42
    assert hook.token_store.url == f"sqlite:///{tmp_path}/configured.db"
    mine = DropboxHook("cfg_own")
    assert mine.get_auth_config().refresh_margin == 7
    assert mine.token_store.url == f"sqlite:///{tmp_path}/own.db"


def test_providers_list_shows_the_package(airflow_env: AirflowEnv) -> None:
    out = airflow_env.run("providers", "list", "--output", "json").stdout
    packages = {p["package_name"]: p for p in json.loads(out[out.index("[") :])}
    assert packages["airflow-provider-dropbox-box"]["version"] == "0.1.0"


PM_PROBE = """
import json, warnings
# A warning naming our hooks (e.g. form methods used instead of conn-fields) fails the probe.
warnings.filterwarnings("error", message=".*dropbox_box_provider.*")
from airflow.providers_manager import ProvidersManager
pm = ProvidersManager()
warnings.filterwarnings("ignore", message=".*ProvidersManager.hooks is deprecated.*")
out = {}
for conn_type in ("dropbox", "box_oauth"):
    info = pm.hooks[conn_type]
    out[conn_type] = {
        "hook_class_name": info.hook_class_name, "hook_name": info.hook_name,
        "package_name": info.package_name, "conn_id_attr": info.connection_id_attribute_name,
        "widgets": sorted(k for k in pm.connection_form_widgets if k.startswith(f"extra__{conn_type}__")),
        "behaviour": pm.field_behaviours.get(conn_type),
    }
print("RESULT" + json.dumps(out))
"""


def test_providers_manager_registers_both_connection_types(airflow_env: AirflowEnv) -> None:
    out = airflow_env.python(PM_PROBE).stdout
    result = json.loads(out[out.index("RESULT") + len("RESULT") :])
    for conn_type, service in CONN_TYPES.items():
        got = result[conn_type]
        assert (got["hook_class_name"], got["hook_name"]) == HOOKS[conn_type]
        assert got["package_name"] == "airflow-provider-dropbox-box"
        assert got["conn_id_attr"] == "conn_id"
        assert got["widgets"] == sorted(f"extra__{conn_type}__{s.name}" for s in iter_extra_specs(service))
        assert got["behaviour"]["hidden_fields"] == ["schema", "port"]
        assert got["behaviour"]["relabeling"]["login"] == standard_spec("login").label_for(service)


def test_hook_meta_lists_every_field_of_both_types(api_server: str) -> None:
    response = httpx.get(f"{api_server}/ui/connections/hook_meta", timeout=60)
    assert response.status_code == 200, response.text
    metas = {m["connection_type"]: m for m in response.json()}
    for conn_type, service in CONN_TYPES.items():
        meta = metas[conn_type]
        assert (meta["hook_class_name"], meta["hook_name"]) == HOOKS[conn_type]
        standard = meta["standard_fields"]
        login, secret = {"dropbox": ("App key", "App secret"), "box": ("Client ID", "Client secret")}[service]
        assert (standard["login"]["title"], standard["password"]["title"]) == (login, secret)
        assert standard["host"]["title"] == "Endpoint override (optional)"
        assert standard["host"]["placeholder"] == f"empty: the real {service.capitalize()}"
        assert "127.0.0.1" not in str(standard)  # no emulator URL that reads as a required setting
        assert standard["port"]["hidden"] is True
        assert standard["url_schema"]["hidden"] is True
        extra = meta["extra_fields"]
        expected = list(iter_extra_specs(service))
        assert set(extra) == {spec.name for spec in expected}
        for spec in expected:
            schema = extra[spec.name]["schema"]
            assert schema["title"] == spec.label
            assert extra[spec.name]["description"] == spec.description
            assert (schema.get("format") == "password") is spec.secret, spec.name
            if spec.enum:
                assert [v for v in schema["enum"] if v is not None] == list(spec.enum)
                if None in schema["enum"]:  # the empty choice has a label, not the word "null"
                    assert schema["values_display"]["null"].startswith("("), spec.name
            if spec.default is not None:
                assert extra[spec.name]["value"] == spec.default
        assert list(extra) == [spec.name for spec in expected]  # the form's order
    assert "access_type" in metas["dropbox"]["extra_fields"]
    assert "jwt_cert" not in metas["dropbox"]["extra_fields"]
    assert "jwt_public_key_id" in metas["box_oauth"]["extra_fields"]


def test_api_redacts_secret_extras_but_not_jwt_public_key_id(api_server: str) -> None:
    """``jwt_public_key_id`` contains "key" yet is no secret: Airflow must show it; real secrets it hides."""
    extras = {
        "auth_scheme": "jwt",
        "jwt_public_key_id": "kid-visible-123",
        "subject_id": "900001",
        "access_token": "tok-should-be-hidden",
        "jwt_cert_password": "pw-should-be-hidden",
    }
    body = {
        "connection_id": "box_redaction_probe",
        "conn_type": "box_oauth",
        "login": "demo-box-jwt-app",
        "password": "demo-box-jwt-secret",
        "extra": json.dumps(extras),
    }
    created = httpx.post(f"{api_server}/api/v2/connections", json=body, timeout=30)
    assert created.status_code in (200, 201), created.text
    got = httpx.get(f"{api_server}/api/v2/connections/box_redaction_probe", timeout=30).json()
    shown = json.loads(got["extra"])
    assert shown["jwt_public_key_id"] == "kid-visible-123"
    assert shown["subject_id"] == "900001"
    assert shown["access_token"] == "***"
    assert shown["jwt_cert_password"] == "***"
    assert got["password"] == "***"


def test_non_secret_field_names_are_not_redacted_by_airflow() -> None:
    from airflow._shared.secrets_masker import DEFAULT_SENSITIVE_FIELDS

    def sensitive(name: str) -> bool:
        return any(word in name.lower() for word in DEFAULT_SENSITIVE_FIELDS)

    for spec in FIELD_SPECS:
        for name in (spec.name, *spec.aliases):
            if not spec.secret:
                assert not sensitive(name), f"{name} would have its value redacted"
    assert sensitive("access_token") and sensitive("refresh_token") and sensitive("jwt_cert_password")
