"""``emulated_services()`` from a test runner that is not pytest: a unittest module run by ``python -m
unittest`` in a process of its own (no pytest imported, no plugin), as a DAG author on unittest writes it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.testing_kit.test_example_project import user_environment

UNITTEST_MODULE = """
import contextlib
import json
import os
import subprocess
import sys
import unittest

from airflow.sdk import Connection

from dropbox_box_provider.testing import emulated_services

CHILD = (
    "from dropbox_box_provider.hooks.dropbox import DropboxHook; "
    "print(DropboxHook().read_bytes('/in/a.csv'))"
)


class ArchiveTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = contextlib.ExitStack()
        cls.services = cls.stack.enter_context(emulated_services())
        cls.stack.enter_context(cls.services.apply_environ())

    @classmethod
    def tearDownClass(cls):
        cls.stack.close()

    def setUp(self):
        self.services.reset()

    def test_no_pytest_here(self):
        self.assertNotIn("pytest", sys.modules)
        self.assertTrue(self.services.url.startswith("http://127.0.0.1:"))

    def test_connection_objects_match_their_airflow_conn_values(self):
        env = self.services.environ()
        expected = {"dropbox_default", "box_default", "box_jwt", "box_ccg"}
        self.assertEqual(set(self.services.connections), expected)
        for conn_id, conn in self.services.connections.items():
            self.assertIsInstance(conn, Connection)
            from_env = Connection.from_json(env["AIRFLOW_CONN_" + conn_id.upper()], conn_id=conn_id)
            self.assertEqual(from_env.to_dict(), conn.to_dict())
            self.assertEqual(Connection.get(conn_id).to_dict()["host"], self.services.url)

    def test_all_four_connections_work_at_once(self):
        from dropbox_box_provider.hooks.box import BoxHook
        from dropbox_box_provider.hooks.dropbox import DropboxHook

        self.services.put_file("dropbox", "/in/a.csv", "id\\n1\\n")
        self.assertEqual(DropboxHook().read_bytes("/in/a.csv"), b"id\\n1\\n")
        conn_ids = ("box_default", "box_jwt", "box_ccg")
        users = [BoxHook(conn_id).get_current_user()["id"] for conn_id in conn_ids]
        self.assertEqual(users, ["10001", "20001", "20002"])
        self.assertEqual(self.services.refreshes(), 0)

    def test_a_subprocess_shares_the_token_store(self):
        from dropbox_box_provider.hooks.dropbox import DropboxHook

        self.services.put_file("dropbox", "/in/a.csv", "x")
        self.services.expire_tokens("dropbox")
        env = {**os.environ, **self.services.environ()}
        proc = subprocess.run(
            [sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=120
        )
        self.assertEqual(proc.returncode, 0, proc.stderr[-2000:])
        self.assertEqual(proc.stdout.strip(), "b'x'")
        self.assertEqual(DropboxHook().read_bytes("/in/a.csv"), b"x")  # the child's refresh, seen here
        self.assertEqual(self.services.refreshes("dropbox"), 1)
        self.assertEqual(self.services.grants("dropbox"), {"refresh_token": {"ok": 1}})

    def test_a_429_storm_counted_then_reset(self):
        from dropbox_box_provider.hooks.dropbox import DropboxHook

        self.services.put_file("dropbox", "/in/a.csv", "x")
        self.services.rate_limit("dropbox", count=2, retry_after=1)
        self.assertEqual(DropboxHook().read_bytes("/in/a.csv"), b"x")
        self.assertEqual(self.services.request_count("dropbox", "/2/files/download", 429), 2)
        self.services.reset()
        self.assertEqual(self.services.requests("dropbox"), {})
        self.assertEqual(self.services.list_files("dropbox"), [])


if __name__ == "__main__":
    unittest.main()
"""


@pytest.mark.timeout(400)
def test_emulated_services_under_unittest(tmp_path: Path) -> None:
    (tmp_path / "test_archive_unittest.py").write_text(UNITTEST_MODULE)
    env = {**user_environment(), "AIRFLOW_HOME": str(tmp_path / "airflow_home")}
    proc = subprocess.run(
        [sys.executable, "-m", "unittest", "-v", "test_archive_unittest"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=360, check=False,
    )  # fmt: skip
    output = proc.stdout[-3000:] + proc.stderr[-6000:]
    assert proc.returncode == 0, output
    assert "Ran 5 tests" in proc.stderr and "OK" in proc.stderr, output
