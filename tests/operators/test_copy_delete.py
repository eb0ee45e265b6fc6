"""DropboxCopyOperator / BoxCopyOperator and DropboxDeleteOperator / BoxDeleteOperator against the emulator:
globs, destination folder rules, templated paths, retries after a lost answer, metadata-only XComs; and one
DAG of both under real Airflow (``airflow dags test``)."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from typing import Any

import pytest

from dropbox_box_provider.errors import AlreadyExists, InvalidArgument, NotFound, PreconditionFailed
from dropbox_box_provider.operators.box import BoxCopyOperator, BoxDeleteOperator
from dropbox_box_provider.operators.dropbox import DropboxCopyOperator, DropboxDeleteOperator
from dropbox_box_provider.testing import EmulatedServices
from tests.operators.conftest import (
    Connections,
    box_connection,
    box_tokens,
    dropbox_connection,
    dropbox_tokens,
)
from tests.operators.test_example_dags import TEST_DAGS, Deployment, deployment, oauth_config

pytestmark = pytest.mark.timeout(120)
__all__ = ["deployment"]  # the real-Airflow fixture, shared with test_example_dags


@dataclass
class Service:
    name: str
    conn_id: str
    copy: type[Any]
    delete: type[Any]
    secrets: tuple[str, ...]

    def hook(self) -> Any:
        return self.copy(
            task_id="hook", conn_id=self.conn_id, source_path="/", destination_path="/"
        ).get_hook()


@pytest.fixture(params=["dropbox", "box"])
def service(
    request: pytest.FixtureRequest, emulated_services: EmulatedServices, connections: Connections
) -> Service:
    if request.param == "dropbox":
        tokens = dropbox_tokens(emulated_services)
        conn_id = connections.add("dbx_ops", dropbox_connection(emulated_services, tokens.refresh_token))
        return Service("dropbox", conn_id, DropboxCopyOperator, DropboxDeleteOperator, secret_values(tokens))
    tokens = box_tokens(emulated_services)
    conn_id = connections.add("box_ops", box_connection(emulated_services, tokens.refresh_token))
    return Service("box", conn_id, BoxCopyOperator, BoxDeleteOperator, secret_values(tokens))


def secret_values(tokens: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in (tokens.access_token, tokens.refresh_token) if v)


def run(operator: Any) -> Any:
    result = operator.execute({})
    json.dumps(result)  # XCom-able
    return result


def assert_no_secrets(service: Service, result: Any) -> None:
    text = json.dumps(result)
    hook = service.hook()
    for secret in (*service.secrets, hook.get_access_token()):
        assert secret not in text


def test_copy_glob_into_a_folder_keeps_names_and_is_repeatable(service: Service) -> None:
    files = service.hook()
    for name in ("a.csv", "Ünïcode b.csv", "notes.txt"):
        files.write_bytes(f"/In/{name}", name.encode())
    files.write_bytes("/In/sub/deep.csv", b"deep")
    copy = service.copy(
        task_id="copy", conn_id=service.conn_id, source_path="/In/*.CSV", destination_path="/Archive/2026"
    )
    copied = run(copy)
    assert sorted(c["path"] for c in copied) == ["/Archive/2026/a.csv", "/Archive/2026/Ünïcode b.csv"]
    assert {c["action"] for c in copied} == {"copied"} and all(c["source"].startswith("/In/") for c in copied)
    assert all(c["kind"] == "file" and c["content_hash"] and c["id"] for c in copied)
    assert files.read_bytes("/Archive/2026/Ünïcode b.csv") == "Ünïcode b.csv".encode()
    assert files.exists("/In/a.csv"), "a copy keeps its source"
    assert sorted(c["id"] for c in run(copy)) == sorted(c["id"] for c in copied), "a rerun finds them done"
    assert_no_secrets(service, copied)
    assert copy.remote_entries, "the Open in ... link has the destinations"


def test_copy_single_file_to_a_new_path_overwrite_and_lists(service: Service) -> None:
    files = service.hook()
    files.write_bytes("/Src/report.csv", b"v1")
    files.write_bytes("/Src/other.csv", b"other")
    single = service.copy(
        task_id="one", conn_id=service.conn_id, source_path="/Src/report.csv", destination_path="/Dst/r.csv"
    )
    assert run(single)[0]["path"] == "/Dst/r.csv"
    files.write_bytes("/Src/report.csv", b"v2 longer", overwrite=True)
    with pytest.raises(AlreadyExists, match="overwrite"):
        run(single)
    single.overwrite = True
    assert run(single)[0]["size"] == len(b"v2 longer")
    assert files.read_bytes("/Dst/r.csv") == b"v2 longer"
    files.mkdir("/Existing")
    into = service.copy(
        task_id="into", conn_id=service.conn_id, source_path="/Src/report.csv", destination_path="/Existing"
    )
    assert run(into)[0]["path"] == "/Existing/report.csv", "an existing folder means into it"
    several = service.copy(
        task_id="list",
        conn_id=service.conn_id,
        source_path=["/Src/report.csv", "/Src/other.csv"],
        destination_path="/Both",
    )
    assert sorted(c["path"] for c in run(several)) == ["/Both/other.csv", "/Both/report.csv"]
    folder = service.copy(
        task_id="dir", conn_id=service.conn_id, source_path="/Src", destination_path="/Src2"
    )
    assert run(folder)[0]["kind"] == "folder" and files.read_bytes("/Src2/other.csv") == b"other"
    with pytest.raises(NotFound):
        run(
            service.copy(
                task_id="no", conn_id=service.conn_id, source_path="/Nope.csv", destination_path="/x"
            )
        )
    nothing = service.copy(
        task_id="none", conn_id=service.conn_id, source_path="/Src/*.pdf", destination_path="/P/"
    )
    with pytest.raises(InvalidArgument, match="allow_empty"):
        run(nothing)
    nothing.allow_empty = True
    assert run(nothing) == []


def test_templated_paths_are_rendered(service: Service) -> None:
    files = service.hook()
    files.write_bytes("/Daily/2026-03-04/data.csv", b"data")
    copy = service.copy(
        task_id="tpl",
        conn_id=service.conn_id,
        source_path="/Daily/{{ ds }}/*.csv",
        destination_path="/Published/{{ ds }}/",
    )
    delete = service.delete(
        task_id="rm", conn_id=service.conn_id, remote_path=["/Daily/{{ ds }}"], recursive=True
    )
    assert {"source_path", "destination_path", "conn_id"} <= set(copy.template_fields)
    assert "remote_path" in delete.template_fields
    context: Any = {"ds": "2026-03-04"}
    copy.render_template_fields(context)
    delete.render_template_fields(context)
    assert copy.source_path == "/Daily/2026-03-04/*.csv"
    assert [c["path"] for c in run(copy)] == ["/Published/2026-03-04/data.csv"]
    assert [d["path"] for d in run(delete)] == ["/Daily/2026-03-04"]
    assert not files.exists("/Daily/2026-03-04")


def test_move_and_its_retry_after_success(service: Service) -> None:
    files = service.hook()
    files.write_bytes("/M/a.txt", b"move me")
    files.write_bytes("/M/b.txt", b"me too")
    move = service.copy(
        task_id="mv",
        conn_id=service.conn_id,
        source_path="/M/a.txt",
        destination_path="/Moved/a.txt",
        move=True,
    )
    moved = run(move)
    assert moved[0]["action"] == "moved" and moved[0]["path"] == "/Moved/a.txt"
    files = service.hook()  # a fresh hook: the first one remembers where /M/a.txt was
    assert not files.exists("/M/a.txt") and files.read_bytes("/Moved/a.txt") == b"move me"
    retried = run(move)  # the task retried after its first try moved the file
    assert retried[0]["action"] == "already_moved" and retried[0]["id"] == moved[0]["id"]
    glob = service.copy(
        task_id="mvg", conn_id=service.conn_id, source_path="/M/*.txt", destination_path="/Moved/", move=True
    )
    assert [m["path"] for m in run(glob)] == ["/Moved/b.txt"]
    assert list(service.hook().list("/M")) == []


def test_dropbox_move_and_copy_resent_after_a_lost_answer(
    emulated_services: EmulatedServices, connections: Connections
) -> None:
    tokens = dropbox_tokens(emulated_services)
    conn_id = connections.add("dbx_lost", dropbox_connection(emulated_services, tokens.refresh_token))
    move = DropboxCopyOperator(
        task_id="mv", conn_id=conn_id, source_path="/L/a.txt", destination_path="/L2/a.txt", move=True
    )
    files = move.get_hook()
    files.write_bytes("/L/a.txt", b"lost answer")
    files.write_bytes("/L/b.txt", b"copy me")
    emulated_services.client.fault("/api.dropboxapi.com/2/files/move_v2", drop=True, drop_after=True)
    assert run(move)[0]["path"] == "/L2/a.txt"
    emulated_services.client.fault("/api.dropboxapi.com/2/files/copy_v2", drop=True, drop_after=True)
    copy = DropboxCopyOperator(task_id="cp", conn_id=conn_id, source_path="/L/b.txt", destination_path="/L2/")
    assert run(copy)[0]["path"] == "/L2/b.txt"
    routes = emulated_services.client.stats()["dropbox"]["routes"]
    assert routes["/2/files/move_v2"]["0"] == 1 and routes["/2/files/copy_v2"]["0"] == 1, "answers were lost"
    assert sum(routes["/2/files/copy_v2"].values()) == 2, "the copy was resent and met its own first copy"
    assert files.read_bytes("/L2/a.txt") == b"lost answer" and not files.exists("/L/a.txt")


def test_delete_globs_folders_recursive_and_missing_ok(service: Service) -> None:
    files = service.hook()
    for path in ("/D/a.tmp", "/D/b.TMP", "/D/keep.csv", "/D/old.tmp/inside.txt", "/D/full/x.txt"):
        files.write_bytes(path, b"x")
    files.mkdir("/D/empty")
    deleted = run(service.delete(task_id="glob", conn_id=service.conn_id, remote_path="/D/*.tmp"))
    assert sorted(d["path"] for d in deleted) == ["/D/a.tmp", "/D/b.TMP"], "folders match only when recursive"
    assert all(d["action"] == "deleted" and d["kind"] == "file" for d in deleted)
    assert_no_secrets(service, deleted)
    assert files.exists("/D/old.tmp/inside.txt") and files.exists("/D/keep.csv")
    assert (
        run(service.delete(task_id="dir", conn_id=service.conn_id, remote_path="/D/empty"))[0]["kind"]
        == "folder"
    )
    with pytest.raises(PreconditionFailed, match="recursive"):
        run(service.delete(task_id="full", conn_id=service.conn_id, remote_path="/D/full"))
    both = service.delete(
        task_id="rec", conn_id=service.conn_id, remote_path=["/D/*.tmp", "/D/full"], recursive=True
    )
    assert sorted(d["path"] for d in run(both)) == ["/D/full", "/D/old.tmp"]
    with pytest.raises(NotFound):
        run(service.delete(task_id="gone", conn_id=service.conn_id, remote_path="/D/full"))
    with pytest.raises(InvalidArgument, match="missing_ok"):
        run(service.delete(task_id="none", conn_id=service.conn_id, remote_path="/D/*.tmp"))
    quiet = service.delete(
        task_id="ok",
        conn_id=service.conn_id,
        remote_path=["/D/full", "/D/*.tmp", "/Nowhere/*.x"],
        missing_ok=True,
    )
    assert run(quiet) == []
    assert [e.name for e in files.list("/D")] == ["keep.csv"]


@pytest.mark.airflow
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_copy_then_delete_in_a_real_dag_run(deployment: Deployment) -> None:
    emu = deployment.emulator
    airflow = deployment.airflow
    dags = airflow.home / "dags"
    dags.mkdir(exist_ok=True)
    shutil.copy(TEST_DAGS / "copy_delete_dag.py", dags / "copy_delete_dag.py")
    airflow.env["AIRFLOW__CORE__DAGS_FOLDER"] = str(dags)
    tokens = box_tokens(emu)
    airflow.env["OPERATORS_TEST_CONN_ID"] = deployment.connection(
        "box_dag", box_connection(emu, tokens.refresh_token)
    )
    deployment.seed("box_dag", oauth_config("box", emu, tokens.refresh_token), tokens)
    output = deployment.dags_test("box_copy_delete")
    assert deployment.last_run_state("box_copy_delete") == "success", output[-4000:]
    assert "COPY_DELETE_OK" in output, output[-4000:]
    assert tokens.access_token not in output and str(tokens.refresh_token) not in output


def test_globs_over_a_folder_of_several_listing_pages(
    service: Service, emulated_services: EmulatedServices, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Copy (move=False by default) and delete by glob where the folder's listing takes several pages
    (2 entries a page): every match on every page is acted on; the XComs carry metadata, no token."""
    from dropbox_box_provider.hooks.box import hook as box_hook_module
    from dropbox_box_provider.hooks.dropbox import DropboxHook

    monkeypatch.setattr(box_hook_module, "LIST_LIMIT", 2)
    list_arg = DropboxHook._list_arg
    monkeypatch.setattr(
        DropboxHook,
        "_list_arg",
        staticmethod(lambda path, recursive, limit: list_arg(path, recursive, limit or 2)),
    )
    files = service.hook()
    names = [f"dåta {i}.csv" for i in range(5)] + ["zürich.csv", "skip.txt"]
    for name in names:
        files.write_bytes(f"/Pägés/{name}", name.encode())
    copy = service.copy(
        task_id="copy_pages", conn_id=service.conn_id, source_path="/Pägés/*.csv", destination_path="/Cöpies/"
    )
    assert copy.move is False
    copied = run(copy)
    routes = emulated_services.client.stats()[service.name]["routes"]
    if service.name == "box":
        pages = routes[f"/2.0/folders/{files.info('/Pägés').id}/items"].get("200", 0)
    else:
        pages = routes.get("/2/files/list_folder/continue", {}).get("200", 0)
    assert pages >= 3, "the glob read the folder's listing over several pages"
    wanted = sorted(n for n in names if n.endswith(".csv"))
    assert sorted(c["name"] for c in copied) == wanted and {c["action"] for c in copied} == {"copied"}
    assert sorted(e.name for e in files.list("/Cöpies")) == wanted
    assert len(list(files.list("/Pägés"))) == len(names), "a copy keeps its sources"
    assert_no_secrets(service, copied)
    deleted = run(service.delete(task_id="rm_pages", conn_id=service.conn_id, remote_path="/Pägés/*.csv"))
    assert sorted(d["name"] for d in deleted) == wanted
    assert [e.name for e in files.list("/Pägés")] == ["skip.txt"]
    assert_no_secrets(service, deleted)
