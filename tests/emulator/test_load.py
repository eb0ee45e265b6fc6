"""The emulator under load: concurrent token requests stay consistent, large uploads work."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from dropbox_box_provider.emulator import seed
from tests.emulator.helpers import BOX_TOKEN, box_refresh, box_tokens, dropbox_tokens

MIB = 1024 * 1024


BURST = """
import sys, urllib.parse, urllib.request
url, count, client_id, secret, enterprise = sys.argv[1], int(sys.argv[2]), *sys.argv[3:6]
body = urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": client_id,
    "client_secret": secret, "box_subject_type": "enterprise", "box_subject_id": enterprise}).encode()
ok = 0
for _ in range(count):
    with urllib.request.urlopen(url, data=body) as answer:
        ok += answer.status == 200
print(ok)
"""


def test_sixteen_processes_hammer_the_token_endpoint(fresh_emulator):
    args = [
        fresh_emulator.url + BOX_TOKEN,
        "20",
        seed.DEMO_BOX_CCG_CLIENT_ID,
        seed.DEMO_BOX_CCG_CLIENT_SECRET,
        seed.DEMO_BOX_ENTERPRISE_ID,
    ]
    started = time.monotonic()
    workers = [
        subprocess.Popen([sys.executable, "-c", BURST, *args], stdout=subprocess.PIPE, text=True)
        for _ in range(16)
    ]
    outputs = [worker.communicate(timeout=60)[0] for worker in workers]
    assert sum(int(out.strip()) for out in outputs) == 320
    assert fresh_emulator.client.stats()["box"]["token"]["client_credentials"]["ok"] == 320
    assert time.monotonic() - started < 30


def test_concurrent_reuse_of_one_box_refresh_token_succeeds_once(fresh_emulator):
    tokens = box_tokens(fresh_emulator.url, fresh_emulator.client)
    with ThreadPoolExecutor(16) as pool:
        answers = list(
            pool.map(lambda _: box_refresh(fresh_emulator.url, tokens["refresh_token"]), range(16))
        )
    assert sorted(a.status_code for a in answers) == [200] + [400] * 15
    stats = fresh_emulator.client.stats()["box"]["token"]["refresh_token"]
    assert stats == {"ok": 1, "invalid_grant": 15}


@pytest.mark.slow
def test_200_mib_dropbox_session_and_150_mib_limit(fresh_emulator):
    token = dropbox_tokens(fresh_emulator.url, fresh_emulator.client)["access_token"]
    chunk = os.urandom(50 * MIB)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/octet-stream"}
    url = fresh_emulator.url + "/content.dropboxapi.com/2/files/"
    with httpx.Client(timeout=120, headers=headers) as http:
        too_big = http.post(
            url + "upload",
            content=chunk * 3 + b"x",
            headers={"Dropbox-API-Arg": json.dumps({"path": "/big.bin"})},
        )
        assert too_big.status_code == 409 and too_big.json()["error_summary"].startswith("payload_too_large")
        session = http.post(
            url + "upload_session/start", content=chunk, headers={"Dropbox-API-Arg": "{}"}
        ).json()["session_id"]
        for index in range(1, 4):
            arg = {"cursor": {"session_id": session, "offset": index * 50 * MIB}}
            assert (
                http.post(
                    url + "upload_session/append_v2",
                    content=chunk,
                    headers={"Dropbox-API-Arg": json.dumps(arg)},
                ).status_code
                == 200
            )
        arg = {"cursor": {"session_id": session, "offset": 200 * MIB}, "commit": {"path": "/big.bin"}}
        done = http.post(
            url + "upload_session/finish", content=b"tail", headers={"Dropbox-API-Arg": json.dumps(arg)}
        )
        assert done.status_code == 200 and done.json()["size"] == 200 * MIB + 4
        ranged = http.post(
            url + "download",
            headers={"Dropbox-API-Arg": json.dumps({"path": "/big.bin"}), "Range": f"bytes={200 * MIB - 2}-"},
        )
        assert ranged.status_code == 206 and ranged.content == chunk[-2:] + b"tail"
        whole = http.post(url + "download", headers={"Dropbox-API-Arg": json.dumps({"path": "/big.bin"})})
        assert hashlib.sha256(whole.content).digest() == hashlib.sha256(chunk * 4 + b"tail").digest()
