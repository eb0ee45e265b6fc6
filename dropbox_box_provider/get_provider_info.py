"""Provider metadata read by Airflow's ProvidersManager; the connection forms come from ``forms``."""

from __future__ import annotations

from typing import Any

from dropbox_box_provider import __version__
from dropbox_box_provider.forms import conn_fields, ui_field_behaviour

#: ``[dropbox_box]``: defaults read by the code (dropbox_box_provider.provider_config); a connection's own
#: field or an operator argument wins over them.
CONFIG: dict[str, Any] = {
    "dropbox_box": {
        "description": "Defaults of the Dropbox and Box provider; connections and tasks may override them.",
        "options": {
            "token_store": {
                "description": (
                    "Token store used when neither the token store secrets backend's `store` kwarg nor the "
                    "connection's `oauth_settings_location` names one: sqlite:////path/tokens.db, a file "
                    "path, postgresql+psycopg://user:password@host:5432/db or memory://NAME. Empty: the "
                    "sqlite file $AIRFLOW_HOME/oauth_tokens.db."
                ),
                "version_added": "0.2.0",
                "type": "string",
                "example": "postgresql+psycopg://airflow@db.internal:5432/airflow_tokens",
                "default": "",
            },
            "refresh_margin": {
                "description": (
                    "Seconds before expiry at which an access token counts as expired and is refreshed, for "
                    "connections without their own `refresh_margin` (capped at half the token's lifetime)."
                ),
                "version_added": "0.2.0",
                "type": "integer",
                "example": "600",
                "default": "300",
            },
            "lease_seconds": {
                "description": (
                    "How long a refresh lease holds a connection's refresh for one process; a crashed "
                    "holder's lease expires after this. Must outlast the slowest token request."
                ),
                "version_added": "0.2.0",
                "type": "float",
                "example": "30",
                "default": "10",
            },
            "max_active_transfers": {
                "description": (
                    "Files an upload, download or transfer operator moves at once when its path is a glob "
                    "(the operator's `max_active_transfers` argument wins); a 429 pauses them all."
                ),
                "version_added": "0.3.0",
                "type": "integer",
                "example": "8",
                "default": "4",
            },
            "max_concurrent_transfers": {
                "description": "Deprecated: the old name of `max_active_transfers` (read if only it is set).",
                "version_added": "0.2.0",
                "version_deprecated": "0.3.0",
                "type": "integer",
                "example": "8",
                "default": None,
            },
        },
    }
}

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
        ],
        "hooks": [
            {"integration-name": "Dropbox", "python-modules": ["dropbox_box_provider.hooks.dropbox"]},
            {"integration-name": "Box", "python-modules": ["dropbox_box_provider.hooks.box"]},
        ],
        # The token refresh operator, sensor and trigger and the file trigger serve both services.
        "operators": [
            {
                "integration-name": "Dropbox",
                "python-modules": [
                    "dropbox_box_provider.operators.dropbox",
                    "dropbox_box_provider.operators.refresh",
                    "dropbox_box_provider.operators.remote_transfer",
                ],
            },
            {
                "integration-name": "Box",
                "python-modules": [
                    "dropbox_box_provider.operators.box",
                    "dropbox_box_provider.operators.refresh",
                    "dropbox_box_provider.operators.remote_transfer",
                ],
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
            {
                "integration-name": "Box",
                "python-modules": ["dropbox_box_provider.sensors.box", "dropbox_box_provider.sensors.token"],
            },
        ],
        "triggers": [
            {
                "integration-name": service,
                "python-modules": [
                    "dropbox_box_provider.triggers.files",
                    "dropbox_box_provider.triggers.token",
                    f"dropbox_box_provider.triggers.{feed}",
                ],
            }
            for service, feed in (("Dropbox", "dropbox_changes"), ("Box", "box_events"))
        ],
        "extra-links": [
            "dropbox_box_provider.operators.links.DropboxFileLink",
            "dropbox_box_provider.operators.links.BoxFileLink",
        ],
        "config": CONFIG,
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
