"""Who a fresh access token belongs to (Dropbox users/get_current_account, Box users/me), for the CLI's
confirmation line; one request, no token in any message."""

from __future__ import annotations

import json
from typing import Any

from dropbox_box_provider.auth import services, transport
from dropbox_box_provider.auth.config import AuthConfig
from dropbox_box_provider.errors import ServiceError


def _request(config: AuthConfig, access_token: str) -> Any:
    endpoints = services.endpoints_for(config.service)
    http = transport.shared_client()
    headers = {"Authorization": f"Bearer {access_token}"}
    if config.service == "dropbox":
        url = services.resolve_url(config, endpoints.api_base + "/users/get_current_account")
        headers["Content-Type"] = "application/json"
        if config.select_user:
            headers["Dropbox-API-Select-User"] = config.select_user
        return http.build_request("POST", url, content=b"null", headers=headers)
    url = services.resolve_url(config, endpoints.api_base + "/users/me")
    if config.as_user:
        headers["As-User"] = config.as_user
    return http.build_request("GET", url, headers=headers)


def describe_account(config: AuthConfig, access_token: str) -> str:
    """``Name <email>`` (plus the account id) of the token's user; raises a typed error on failure."""
    response = transport.send(transport.shared_client(), _request(config, access_token))
    if response.status_code != 200:
        raise services.error_from_response(config.service, response, config.conn_id, redact=(access_token,))
    try:
        body = json.loads(response.content)
        if config.service == "dropbox":
            name, email, ident = body["name"]["display_name"], body["email"], body["account_id"]
        else:
            name, email, ident = body["name"], body["login"], body["id"]
    except (ValueError, KeyError, TypeError):
        raise ServiceError(
            f"the account lookup answered HTTP 200 with an unexpected body; check that the connection's Host "
            f"points at {services.endpoints_for(config.service).display_name} or its emulator"
        ) from None
    return f"{name} <{email}> ({ident})"
