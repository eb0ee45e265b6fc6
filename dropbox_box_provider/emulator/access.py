"""Who an API call acts as: the bearer token, then Dropbox Select-User / Path-Root or Box As-User."""

from __future__ import annotations

import json
from dataclasses import dataclass

from starlette.requests import Request

from dropbox_box_provider.emulator import grants
from dropbox_box_provider.emulator.files import Tree
from dropbox_box_provider.emulator.responses import (
    ApiError,
    box_error,
    box_unauthorized,
    dropbox_auth_error,
    dropbox_bad_request,
    dropbox_error,
    dropbox_missing_scope,
)
from dropbox_box_provider.emulator.state import (
    BOX,
    DROPBOX,
    AccessToken,
    Account,
    EmulatorState,
    random_token,
)

TEAM_APP_NEEDS_SELECT_USER = (
    "This API function operates on a single Dropbox account, but the OAuth 2 access token you provided is "
    "for an entire Dropbox Business team. Since your API app key has team member file access permissions, "
    "you can "
    'operate on a team member\'s Dropbox by providing the "Dropbox-API-Select-User" HTTP header or '
    '"select_user" URL parameter to specify the exact user <https://www.dropbox.com/developers/documentation/'
    "http/teams>."
)


#: The scope each Dropbox route needs (checked only for apps registered with explicit ``scopes``).
DROPBOX_ROUTE_SCOPES = {
    "users/get_current_account": "account_info.read",
    "files/list_folder": "files.metadata.read",
    "files/list_folder/continue": "files.metadata.read",
    "files/get_metadata": "files.metadata.read",
    "files/create_folder_v2": "files.content.write",
    "files/delete_v2": "files.content.write",
    "files/upload": "files.content.write",
    "files/upload_session/start": "files.content.write",
    "files/upload_session/append_v2": "files.content.write",
    "files/upload_session/append": "files.content.write",
    "files/upload_session/finish": "files.content.write",
    "files/download": "files.content.read",
}


@dataclass
class Caller:
    """The authenticated token, the account acted as, and the file tree the call works on."""

    token: AccessToken
    account: Account
    tree_id: str
    tree: Tree


def emulator_state(request: Request) -> EmulatorState:
    """The state attached to the app."""
    state: EmulatorState = request.app.state.emulator
    return state


def dropbox_caller(request: Request, route: str) -> Caller:
    """Resolve a Dropbox call; raises :class:`ApiError` with Dropbox's exact 400/401/422 answers."""
    state = emulator_state(request)
    try:
        token = grants.authenticate(state, DROPBOX, request.headers.get("authorization"))
    except grants.AuthFailure as exc:
        if exc.kind == "missing":
            raise ApiError(
                dropbox_bad_request(
                    route, 'Must provide HTTP header "Authorization" or URL parameter "authorization".'
                )
            ) from exc
        raise ApiError(
            dropbox_auth_error("expired_access_token" if exc.kind == "expired" else "invalid_access_token")
        ) from exc
    with state.lock:
        account = state.account(DROPBOX, token.account_id)
        assert account is not None
        select_user = request.headers.get("dropbox-api-select-user")
        select_admin = request.headers.get("dropbox-api-select-admin")
        if token.team:
            selected = select_user or select_admin
            if not selected:
                raise ApiError(dropbox_bad_request(route, TEAM_APP_NEEDS_SELECT_USER))
            member = state.account(DROPBOX, selected)
            if (
                member is None
                or member.team_id is None
                or member.team_id != account.team_id
                or (not select_user and member.role != "admin")
            ):
                # A member id that is not (an admin) on this team: 401, as AuthError.invalid_select_*.
                tag = "invalid_select_user" if select_user else "invalid_select_admin"
                raise ApiError(dropbox_auth_error(tag))
            account = member
        elif select_user or select_admin:
            raise ApiError(
                dropbox_bad_request(
                    route, "Unexpected select user header: this token does not belong to a team app."
                )
            )
        app = state.apps.get((DROPBOX, token.client_id))
        required = DROPBOX_ROUTE_SCOPES.get(route)
        granted = (token.scope or "").split()
        if app is not None and app.scopes is not None and required is not None and required not in granted:
            raise ApiError(dropbox_missing_scope(required))
        tree_id = state.tree_id(account)
        path_root = request.headers.get("dropbox-api-path-root")
        if path_root:
            tree_id = _path_root_tree(state, route, account, path_root)
        if app is not None and app.app_folder:
            tree_id = f"{tree_id}:app_folder:{app.client_id}"
            if tree_id not in state.trees:
                state.trees[tree_id] = Tree("id:" + random_token(22))
        return Caller(token, account, tree_id, state.trees[tree_id])


def _path_root_tree(state: EmulatorState, route: str, account: Account, header: str) -> str:
    try:
        root = json.loads(header)
        tag = root[".tag"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ApiError(
            dropbox_bad_request(route, 'HTTP header "Dropbox-API-Path-Root": could not decode input as JSON')
        ) from exc
    if tag == "home":
        return state.tree_id(account)
    namespace = (
        root.get("namespace_id") if tag == "namespace_id" else root.get("root") if tag == "root" else None
    )
    if namespace is None:
        raise ApiError(
            dropbox_bad_request(route, f'HTTP header "Dropbox-API-Path-Root": unknown tag {tag!r}')
        )
    owner = next(
        (a for a in state.accounts.values() if a.service == DROPBOX and a.namespace_id == str(namespace)),
        None,
    )
    allowed = owner is not None and (
        owner.id == account.id or (owner.team_id is not None and owner.team_id == account.team_id)
    )
    if not allowed or owner is None:
        raise ApiError(dropbox_error(422, "no_permission", {".tag": "no_permission"}))
    return state.tree_id(owner)


def box_caller(request: Request) -> Caller:
    """Resolve a Box call; raises :class:`ApiError` with Box's 401 (empty body) or 403 for a bad As-User."""
    state = emulator_state(request)
    try:
        token = grants.authenticate(state, BOX, request.headers.get("authorization"))
    except grants.AuthFailure as exc:
        raise ApiError(box_unauthorized(invalid=exc.kind != "missing")) from exc
    with state.lock:
        account = state.account(BOX, token.account_id)
        assert account is not None
        as_user = request.headers.get("as-user")
        if as_user:
            target = state.account(BOX, as_user.strip())
            if (
                target is None
                or account.role not in ("admin", "service")
                or target.enterprise_id is None
                or target.enterprise_id != account.enterprise_id
            ):
                raise ApiError(
                    box_error(
                        403,
                        "access_denied_insufficient_permissions",
                        "Access denied - insufficient permission",
                    )
                )
            account = target
        tree_id = state.tree_id(account)
        return Caller(token, account, tree_id, state.trees[tree_id])
