"""Putting and reading files straight in an in-process emulator's state (no HTTP, no faults, no counters).

A test arranges its input and checks its output this way without disturbing what it measures: armed faults
and request counters only ever see the code under test.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dropbox_box_provider.errors import InvalidRemotePath, NotFound

if TYPE_CHECKING:
    from dropbox_box_provider.emulator.files import Node, Tree
    from dropbox_box_provider.emulator.state import EmulatorState


def _parts(path: str) -> list[str]:
    """The names of ``/a/b.txt`` (``[]`` for the root); refuses empty, ``.`` and ``..`` segments."""
    if not path.startswith("/"):
        raise InvalidRemotePath(f"remote path {path!r} must start with '/': e.g. '/inbox/report.csv'")
    parts = [p for p in path.split("/")[1:]]
    if parts == [""]:
        return []
    if any(p in ("", ".", "..") for p in parts):
        raise InvalidRemotePath(f"remote path {path!r} has an empty, '.' or '..' segment: write it plainly")
    return parts


def _tree(state: EmulatorState, service: str, account_id: str) -> Tree:
    account = state.account(service, account_id)
    if account is None:
        raise NotFound(
            f"the emulator has no {service} account {account_id!r}: use one of the seeded accounts"
        )
    return state.trees[state.tree_id(account)]


def _new_id(state: EmulatorState, service: str) -> str:
    from dropbox_box_provider.emulator.state import BOX, random_token

    return state.new_box_id() if service == BOX else "id:" + random_token(22)


def put_file(state: EmulatorState, service: str, account_id: str, path: str, data: bytes) -> None:
    """Write ``data`` at ``path`` in the account's tree, creating folders, replacing an existing file."""
    parts = _parts(path)
    if not parts:
        raise InvalidRemotePath("cannot write a file at '/': name the file, e.g. '/inbox/report.csv'")
    with state.lock:
        tree = _tree(state, service, account_id)
        node = tree.root
        for name in parts[:-1]:
            child = node.children.get(name.lower())
            if child is None:
                child = tree.add(node, name, True, _new_id(state, service))
            elif not child.folder:
                raise InvalidRemotePath(f"{path!r}: {child.path_display()!r} is a file, not a folder")
            node = child
        existing = node.children.get(parts[-1].lower())
        if existing is not None and existing.folder:
            raise InvalidRemotePath(f"{path!r} is a folder: choose another file name")
        target = existing or tree.add(node, parts[-1], False, _new_id(state, service))
        target.set_content(bytes(data))
        state.changed()


def _find(state: EmulatorState, service: str, account_id: str, path: str) -> Node | None:
    node: Node | None = _tree(state, service, account_id).root
    for name in _parts(path):
        if node is None or not node.folder:
            return None
        node = node.children.get(name.lower())
    return node


def read_file(state: EmulatorState, service: str, account_id: str, path: str) -> bytes:
    """The bytes of the file at ``path``; NotFound when nothing (or a folder) is there."""
    with state.lock:
        node = _find(state, service, account_id, path)
        if node is None or node.folder:
            raise NotFound(f"no {service} file at {path!r}: list the folder with list_files() to see what is")
        return node.content


def list_files(state: EmulatorState, service: str, account_id: str, folder: str = "/") -> list[str]:
    """Paths of every file below ``folder`` (recursively, sorted, as displayed)."""
    with state.lock:
        node = _find(state, service, account_id, folder)
        if node is None or not node.folder:
            return []
        return sorted(child.path_display() for child in node.walk() if not child.folder)
