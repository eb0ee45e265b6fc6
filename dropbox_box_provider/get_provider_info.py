"""Provider metadata read by Airflow's ProvidersManager (placeholder until the foundation lands)."""

from __future__ import annotations

from typing import Any


def get_provider_info() -> dict[str, Any]:
    """Return the provider description Airflow discovers through the entry point."""
    return {
        "package-name": "airflow-provider-dropbox-box",
        "name": "Dropbox and Box",
        "description": "Dropbox and Box hooks with safe, shared OAuth 2 token refresh.",
        "versions": ["0.1.0"],
    }
