"""Provider metadata read by Airflow's ProvidersManager; the connection forms come from ``forms``."""

from __future__ import annotations

from typing import Any

from dropbox_box_provider import __version__
from dropbox_box_provider.forms import conn_fields, ui_field_behaviour

_CONNECTION_TYPES = (
    # (connection type, service, hook class, hook name)
    ("dropbox", "dropbox", "dropbox_box_provider.hooks.dropbox.DropboxHook", "Dropbox"),
    ("box_oauth", "box", "dropbox_box_provider.hooks.box.BoxHook", "Box (OAuth)"),
)


def get_provider_info() -> dict[str, Any]:
    """Return the provider description Airflow discovers through the entry point."""
    return {
        "package-name": "airflow-provider-dropbox-box",
        "name": "Dropbox and Box",
        "description": (
            "Dropbox and Box hooks whose OAuth 2 tokens stay valid: refreshed single-flight, rotated safely "
            "and shared across workers through a token store."
        ),
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Dropbox",
                "external-doc-url": "https://www.dropbox.com/developers/documentation/http/documentation",
                "tags": ["service"],
            },
            {
                "integration-name": "Box",
                "external-doc-url": "https://developer.box.com/reference/",
                "tags": ["service"],
            },
            {
                "integration-name": "Dropbox and Box OAuth tokens",
                "external-doc-url": "https://developer.box.com/guides/authentication/tokens/refresh/",
                "tags": ["service"],
            },
        ],
        "hooks": [
            {"integration-name": "Dropbox", "python-modules": ["dropbox_box_provider.hooks.dropbox"]},
            {"integration-name": "Box", "python-modules": ["dropbox_box_provider.hooks.box"]},
        ],
        "operators": [
            {
                "integration-name": "Dropbox",
                "python-modules": [
                    "dropbox_box_provider.operators.dropbox",
                    "dropbox_box_provider.operators.remote_transfer",
                ],
            },
            {"integration-name": "Box", "python-modules": ["dropbox_box_provider.operators.box"]},
            {
                "integration-name": "Dropbox and Box OAuth tokens",
                "python-modules": ["dropbox_box_provider.operators.refresh"],
            },
        ],
        "sensors": [
            {
                "integration-name": "Dropbox",
                "python-modules": [
                    "dropbox_box_provider.sensors.dropbox",
                    "dropbox_box_provider.sensors.token",
                ],
            },
            {"integration-name": "Box", "python-modules": ["dropbox_box_provider.sensors.box"]},
        ],
        "triggers": [
            {
                "integration-name": "Dropbox",
                "python-modules": [
                    "dropbox_box_provider.triggers.files",
                    "dropbox_box_provider.triggers.token",
                ],
            },
        ],
        "asset-uris": [
            {
                "schemes": [scheme],
                "handler": "dropbox_box_provider.lineage.sanitize_uri",
                "factory": f"dropbox_box_provider.lineage.create_{scheme}_asset",
                "to_openlineage_converter": "dropbox_box_provider.lineage.convert_asset_to_openlineage",
            }
            for scheme in ("dropbox", "box")
        ],
        "filesystems": ["dropbox_box_provider.fs.dropbox", "dropbox_box_provider.fs.box"],
        "secrets-backends": ["dropbox_box_provider.secrets.token_store.TokenStoreBackend"],
        "connection-types": [
            {
                "connection-type": conn_type,
                "hook-class-name": hook_class,
                "hook-name": hook_name,
                "conn-fields": conn_fields(service),
                "ui-field-behaviour": ui_field_behaviour(service),
            }
            for conn_type, service, hook_class, hook_name in _CONNECTION_TYPES
        ],
    }
