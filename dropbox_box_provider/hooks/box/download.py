"""Box downloads: Box answers 302 to a pre-signed URL; the bytes are streamed with Range resumes after a
break, a fresh link is asked for when the old one expired, the size is checked, and the SHA-1 unless the
hook's ``verify_checksums`` is off."""

from __future__ import annotations

import hashlib
import time
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from dropbox_box_provider.auth import services
from dropbox_box_provider.auth.services import BOX
from dropbox_box_provider.errors import ChecksumMismatch, ServiceError, TransportError
from dropbox_box_provider.hooks.hashing import Hash, OverlappedHash

if TYPE_CHECKING:
    from dropbox_box_provider.hooks.box.hook import BoxHook
    from dropbox_box_provider.hooks.progress import TransferProgress

API = BOX.api_base
# Downloads may answer 202 + Retry-After while Box prepares the file.
MAX_NOT_READY_WAITS = 60
MAX_NOT_READY_WAIT = 10.0


def content_location(hook: BoxHook, file_id: str, version: str | None = None) -> str:
    """The pre-signed download URL (real form) from Box's 302, waiting out 202 + Retry-After; ``version``
    names an earlier file version."""
    params = {"version": version} if version else None
    for _ in range(MAX_NOT_READY_WAITS):
        url = f"{API}/files/{file_id}/content"
        with hook.stream("GET", url, params=params, expected=(200, 202, 302)) as response:
            status, headers = response.status_code, response.headers
        if status == 302 and headers.get("location"):
            return hook.as_real_url(headers["location"])
        if status != 202:
            raise ServiceError(
                f"Box answered the download of file {file_id} with HTTP {status} instead of a redirect "
                "to its download URL; check that the connection's Host points at Box or its emulator",
                status,
                "unexpected_download_answer",
            )
        time.sleep(min(services.retry_after_seconds(response) or 1.0, MAX_NOT_READY_WAIT))
    raise ServiceError(
        f"Box kept answering 202 (not ready) to the download of file {file_id}; run the task again later",
        202,
        "download_not_ready",
    )


def download_url(hook: BoxHook, real_url: str) -> str:
    """A Box-hosted download URL through the connection's Host override; any other host as given."""
    parts = urlsplit(real_url)
    if parts.scheme == "https" and parts.hostname in BOX.hosts:
        return hook.api_url(real_url)
    return real_url


def declared_total(response: httpx.Response) -> int | None:
    """The file's whole size as the download answer states it: ``Content-Range``'s total on a 206, else
    ``Content-Length`` on a 200 sent as is (not compressed); None when it states none."""
    if response.status_code == 206:
        total = response.headers.get("content-range", "").rpartition("/")[2]
    elif response.status_code == 200 and response.headers.get("content-encoding", "identity") == "identity":
        total = response.headers.get("content-length", "")
    else:
        return None
    return int(total) if total.isascii() and total.isdigit() else None


def fetch_into(hook: BoxHook, info: dict[str, Any], handle: IO[bytes], version: str | None = None) -> None:
    """Stream a file's (or its ``version``'s) bytes into ``handle``, resuming with Range after a broken
    link; the size is checked (a download that ends short resumes, then fails), and the SHA-1 when the hook
    verifies checksums and ``info`` carries one.

    ``info`` is Box's file object, or only ``{"id": ...}`` (then the size comes from the download answer's
    Content-Length). The download URL is pre-signed, so it is fetched without the bearer token (as
    box-sdk-gen's HTTP stack does when the redirect leaves api.box.com).
    """
    file_id = str(info["id"])
    name = str(info.get("name") or f"id:{file_id}")
    listed = info.get("size")
    size: int | None = listed if isinstance(listed, int) and not isinstance(listed, bool) else None
    verifying = hook.verify_checksums and bool(info.get("sha1"))

    def new_hasher() -> Hash | None:
        return hashlib.sha1(usedforsecurity=False) if verifying else None

    policy = hook.retry_policy
    progress: TransferProgress | None = None
    with OverlappedHash(new_hasher(), size) as digest:
        written = 0
        location: str | None = None
        start = time.monotonic()
        attempt = 0
        plain = hook.plain_client()
        while True:
            attempt += 1
            try:
                if location is None:
                    location = content_location(hook, file_id, version)
                headers = {"Range": f"bytes={written}-"} if written else {}
                with plain.stream("GET", download_url(hook, location), headers=headers) as response:
                    status = response.status_code
                    resumed = status == 206 and response.headers.get("content-range", "").startswith(
                        f"bytes {written}-"
                    )
                    if status in (200, 206) and written and not resumed:
                        handle.seek(0)  # the server sent the whole file (or another range): start over
                        handle.truncate()
                        digest.restart(new_hasher())
                        written = 0
                        if progress is not None:
                            progress.reset_to(0)
                    if status in (403, 404, 410):
                        location = None  # the pre-signed link expired: ask Box for a new one
                        raise httpx.ReadError(f"the download link answered HTTP {status}")
                    if status not in (200, 206) or (status == 206 and not resumed):
                        response.read()
                        delay = policy.next_delay(attempt, response, time.monotonic() - start)
                        if delay is None:
                            raise services.error_from_response("box", response, hook.conn_id)
                        time.sleep(delay)
                        continue
                    size = declared_total(response) or size
                    if progress is None:
                        progress = hook.progress("download", name, size or 0)
                    # The transport's own chunks (1 MiB): a chunk size here would re-chunk in Python.
                    for block in response.iter_bytes():
                        handle.write(block)
                        digest.update(block)
                        written += len(block)
                        progress.update(len(block))
                if size is not None and written < size:
                    raise httpx.ReadError(f"the download ended after {written} of {size} bytes")
                break
            except httpx.TransportError as exc:
                delay = policy.next_delay(attempt, exc, time.monotonic() - start)
                if delay is None:
                    of = f" of {size}" if size is not None else ""
                    raise TransportError(
                        f"downloading Box file {name!r} ({file_id}) failed after {attempt} attempt(s) at "
                        f"{written}{of} bytes ({type(exc).__name__}); nothing was written to the "
                        "destination. Run the task again",
                        code="download_failed",
                    ) from exc
                hook.log.warning("Box download of %r interrupted (%s); resuming in %.2f s", name, exc, delay)
                time.sleep(delay)
        actual = digest.hexdigest()
    if progress is not None:
        progress.finish()
    expected = info.get("sha1")
    if actual is not None and actual != expected:
        raise ChecksumMismatch(
            f"the downloaded bytes of {name!r} have SHA-1 {actual} but Box lists {expected}; "
            "nothing was written to the destination. Download it again"
        )


def read_range(hook: BoxHook, file_id: str, start: int, end: int) -> bytes:
    """Bytes ``start`` to ``end`` (exclusive) of a file: its pre-signed URL fetched with Range (fsspec
    reads). A link that expired between the redirect and the read is asked for once more."""
    if end <= start:
        return b""
    plain = hook.plain_client()
    for _ in range(2):
        location = download_url(hook, content_location(hook, file_id))
        with plain.stream("GET", location, headers={"Range": f"bytes={start}-{end - 1}"}) as response:
            if response.status_code in (403, 404, 410):
                response.read()
                continue
            try:
                data = b"".join(response.iter_bytes())  # not kept on the response
            except httpx.HTTPError as exc:
                raise hook.read_error(exc, f"ranged download of file {file_id}", 0) from exc
            if response.status_code == 200:
                return data[start:end]
            if response.status_code == 206:
                return data
            raise services.error_from_response("box", response, hook.conn_id)
    raise TransportError(
        f"the download link of Box file {file_id} kept expiring; run the task again", code="download_failed"
    )
