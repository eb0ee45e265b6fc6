"""Dropbox batch commits: ``files/upload_session/finish_batch_v2`` (synchronous) and the older
``finish_batch`` + ``finish_batch/check`` (an async job, already complete when polled).

Each entry names a **closed** session (``close: true`` on its last start/append) and the offset of its end;
up to 1,000 entries per call. The answer holds one ``success`` (file metadata) or ``failure``
(``UploadSessionFinishError``) per entry, in order; the route itself has no error union. The whole batch is
one write into the namespace: it takes one ``dropbox_write_concurrency`` slot, and when none is free every
entry fails with ``too_many_write_operations`` (the client commits them again).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dropbox_box_provider.content_hash import dropbox_content_hash
from dropbox_box_provider.emulator.access import Caller, dropbox_caller, emulator_state
from dropbox_box_provider.emulator.dropbox_api import API, LARGE, _field, _rpc_arg, commit_file
from dropbox_box_provider.emulator.middleware import WRITE_ADMITTED
from dropbox_box_provider.emulator.responses import ApiError, dropbox_bad_request, json_response
from dropbox_box_provider.emulator.state import EmulatorState, random_token

MAX_ENTRIES = 1000
SESSION_LIFETIME = 7 * 86400


def _lookup_failure(tag: str, **extra: Any) -> dict[str, Any]:
    return {".tag": "lookup_failed", "lookup_failed": {".tag": tag, **extra}}


def _entries(arg: Any, route: str) -> list[dict[str, Any]]:
    entries = _field(arg, "entries", route, kind=list)
    if len(entries) > MAX_ENTRIES:
        raise ApiError(
            dropbox_bad_request(
                route, f"request body: entries: list has more than {MAX_ENTRIES} items ({len(entries)})"
            )
        )
    for entry in entries:
        _field(_field(entry, "cursor", route, kind=dict), "session_id", route)
        _field(entry["cursor"], "offset", route, kind=int)
        _field(_field(entry, "commit", route, kind=dict), "path", route)
    return list(entries)


def _take_session(caller: Caller, state: EmulatorState, cursor: dict[str, Any]) -> Any:
    """The closed session of ``cursor`` (removed from the open sessions), or a failure union."""
    session = state.dropbox_sessions.get(cursor["session_id"])
    if (
        session is None
        or session.tree_id != caller.tree_id
        or time.time() - session.created_at > SESSION_LIFETIME
    ):
        return _lookup_failure("not_found")
    if cursor["offset"] != session.offset:
        return _lookup_failure("incorrect_offset", correct_offset=session.offset)
    if not session.closed:
        return _lookup_failure("not_closed")
    return session


async def _commit_all(request: Request, route: str) -> list[dict[str, Any]]:
    """Commit every entry in order; the per-entry results (FileMetadata or failure)."""
    arg = await _rpc_arg(request, route)
    entries = _entries(arg, route)
    caller = dropbox_caller(request, route)
    state = emulator_state(request)
    if not request.scope.get(WRITE_ADMITTED, True):  # another write was running when the batch came
        contended = {".tag": "too_many_write_operations"}
        return [{".tag": "failure", "failure": contended} for _ in entries]
    results: list[dict[str, Any]] = []
    for entry in entries:
        with state.lock:
            found = _take_session(caller, state, entry["cursor"])
        if isinstance(found, dict):
            results.append({".tag": "failure", "failure": found})
            continue
        chunks = list(found.chunks)

        def compute(parts: list[bytes] = chunks) -> tuple[bytes, str, str]:
            data = b"".join(parts)
            sha1 = hashlib.sha1(data, usedforsecurity=False).hexdigest()
            return data, sha1, dropbox_content_hash(data)

        data, sha1, content_hash = await asyncio.to_thread(compute) if found.offset > LARGE else compute()
        with state.lock:
            response = commit_file(
                caller, entry["commit"], route, data, sha1, content_hash, found.session_id, state
            )
            body = json.loads(bytes(response.body))
            if response.status_code == 200:
                state.dropbox_sessions.pop(found.session_id, None)  # committed: the session is used up
                state.changed()
                results.append({".tag": "success", **body})
            else:
                results.append({".tag": "failure", "failure": body["error"]})
    return results


async def finish_batch_v2(request: Request) -> Response:
    """files/upload_session/finish_batch_v2: ``{"entries": [success | failure, ...]}``."""
    entries = await _commit_all(request, "files/upload_session/finish_batch_v2")
    return json_response({"entries": entries})


async def finish_batch(request: Request) -> Response:
    """files/upload_session/finish_batch (v1, deprecated): the job runs at once; its id is polled."""
    entries = await _commit_all(request, "files/upload_session/finish_batch")
    state = emulator_state(request)
    job_id = "dbjid:" + random_token(40)
    with state.lock:
        state.batch_jobs[job_id] = entries
    return json_response({".tag": "async_job_id", "async_job_id": job_id})


async def finish_batch_check(request: Request) -> Response:
    """files/upload_session/finish_batch/check: ``complete`` and the entries, or 409 invalid_async_job_id."""
    route = "files/upload_session/finish_batch/check"
    arg = await _rpc_arg(request, route)
    job_id = _field(arg, "async_job_id", route)
    dropbox_caller(request, route)
    state = emulator_state(request)
    with state.lock:
        entries = state.batch_jobs.get(job_id)
    if entries is None:
        return json_response(
            {"error_summary": "invalid_async_job_id/..", "error": {".tag": "invalid_async_job_id"}}, 409
        )
    return json_response({".tag": "complete", "entries": entries})


def routes() -> list[Route]:
    """The batch-commit routes at /api.dropboxapi.com/2/."""
    return [
        Route(API + "files/upload_session/finish_batch_v2", finish_batch_v2, methods=["POST"]),
        Route(API + "files/upload_session/finish_batch", finish_batch, methods=["POST"]),
        Route(API + "files/upload_session/finish_batch/check", finish_batch_check, methods=["POST"]),
    ]
