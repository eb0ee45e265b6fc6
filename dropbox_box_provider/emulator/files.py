"""The emulator's file tree: one per Dropbox namespace or Box user, names unique case-insensitively."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any

from dropbox_box_provider.content_hash import dropbox_content_hash

# Earlier revisions a file keeps for ``rev:`` paths, bounded in count and bytes: the emulator holds file
# bytes in memory, and benchmarks overwrite large files again and again.
MAX_REVISIONS = 10
MAX_REVISION_BYTES = 64 * 1024 * 1024


class Node:
    """A file or folder; files keep their bytes in memory (one immutable ``bytes`` per version)."""

    __slots__ = (
        "children",
        "content",
        "content_hash",
        "created_at",
        "folder",
        "id",
        "modified_at",
        "name",
        "parent",
        "rev",
        "revisions",
        "sha1",
        "shared_link",
        "version",
        "version_id",
    )

    def __init__(self, node_id: str, name: str, folder: bool, parent: Node | None) -> None:
        self.id = node_id
        self.name = name
        self.folder = folder
        self.parent = parent
        self.children: dict[str, Node] = {}
        self.revisions: dict[str, Revision] = {}
        self.content = b""
        self.sha1 = hashlib.sha1(b"", usedforsecurity=False).hexdigest()
        self.content_hash = dropbox_content_hash(b"")
        self.rev = secrets.token_hex(8)
        self.version = 0
        self.version_id = str(secrets.randbelow(10**11) + 10**11)
        self.created_at = time.time()
        self.modified_at = self.created_at
        self.shared_link: dict[str, Any] | None = None  # the service's shared-link settings, once made

    @property
    def size(self) -> int:
        """Bytes of a file, or the total bytes below a folder."""
        if not self.folder:
            return len(self.content)
        return sum(child.size for child in self.children.values())

    def set_content(self, content: bytes, sha1: str | None = None, content_hash: str | None = None) -> None:
        """Replace the bytes, recompute both services' hashes, start a new version (keeping the old one)."""
        if self.version:
            self.revisions[self.rev] = Revision(
                self.rev, self.content, self.sha1, self.content_hash, self.modified_at, self.version_id
            )
            while len(self.revisions) > MAX_REVISIONS or (
                self.revisions and sum(len(r.content) for r in self.revisions.values()) > MAX_REVISION_BYTES
            ):
                del self.revisions[next(iter(self.revisions))]
        self.content = content
        self.sha1 = sha1 or hashlib.sha1(content, usedforsecurity=False).hexdigest()
        self.content_hash = content_hash or dropbox_content_hash(content)
        self.touch()

    def touch(self) -> None:
        """Mark a change: new Dropbox rev, new Box etag/sequence and file version."""
        self.rev = secrets.token_hex(8) + "0"
        self.version += 1
        self.version_id = str(secrets.randbelow(10**11) + 10**11)
        self.modified_at = time.time()

    def ancestors(self) -> list[Node]:
        """Folders from the root down to (not including) this node."""
        chain: list[Node] = []
        node = self.parent
        while node is not None:
            chain.append(node)
            node = node.parent
        return list(reversed(chain))

    def path_display(self) -> str:
        """Dropbox display path ("" for the root)."""
        if self.parent is None:
            return ""
        return "/" + "/".join([*(a.name for a in self.ancestors()[1:]), self.name])

    def walk(self) -> Iterator[Node]:
        """Descendants in depth-first order, every folder before its contents."""
        for child in sorted(self.children.values(), key=lambda n: n.name.lower()):
            yield child
            if child.folder:
                yield from child.walk()


class Revision:
    """An earlier version of a file: a Dropbox ``rev:`` path, or a Box file version (``version_id``)."""

    __slots__ = ("content", "content_hash", "modified_at", "rev", "sha1", "version_id")

    def __init__(  # noqa: PLR0917
        self, rev: str, content: bytes, sha1: str, content_hash: str, modified_at: float, version_id: str = ""
    ) -> None:
        self.rev = rev
        self.content = content
        self.sha1 = sha1
        self.content_hash = content_hash
        self.modified_at = modified_at
        self.version_id = version_id


class Tree:
    """One account's files: a root folder, an id index, and the trash (Box deletes move items there)."""

    def __init__(self, root_id: str) -> None:
        self.root = Node(root_id, "", True, None)
        self.index: dict[str, Node] = {root_id: self.root}
        self.trash: dict[str, tuple[Node, str, float]] = {}  # item id -> (item, former parent id, when)
        self.trashed: dict[str, Node] = {}  # every id inside the trash (items and their contents)

    def find_revision(self, rev: str) -> tuple[Node, Revision | None] | None:
        """The live file holding ``rev`` as its current (None) or an earlier revision."""
        for node in self.index.values():
            if node.folder:
                continue
            if node.rev == rev:
                return node, None
            if rev in node.revisions:
                return node, node.revisions[rev]
        return None

    def add(self, parent: Node, name: str, folder: bool, node_id: str) -> Node:
        """Create a child; the caller has checked the name is free."""
        node = Node(node_id, name, folder, parent)
        parent.children[name.lower()] = node
        self.index[node_id] = node
        parent.modified_at = time.time()
        return node

    def remove(self, node: Node) -> None:
        """Delete a node and everything below it."""
        for child in list(node.walk()):
            self.index.pop(child.id, None)
        self.index.pop(node.id, None)
        if node.parent is not None:
            node.parent.children.pop(node.name.lower(), None)
            node.parent.modified_at = time.time()

    def move(self, node: Node, parent: Node, name: str) -> Node:
        """Move (or rename) a node under ``parent`` as ``name``; the caller has checked the name is free."""
        if node.parent is not None:
            node.parent.children.pop(node.name.lower(), None)
            node.parent.modified_at = time.time()
        node.parent, node.name = parent, name
        parent.children[name.lower()] = node
        parent.modified_at = time.time()
        return node

    def copy(self, node: Node, parent: Node, name: str, new_id: Callable[[], str]) -> Node:
        """A deep copy of ``node`` under ``parent`` as ``name``, with new ids (``new_id()`` each)."""
        clone = self.add(parent, name, node.folder, new_id())
        if not node.folder:
            clone.set_content(node.content, node.sha1, node.content_hash)
        for child in list(node.children.values()):
            self.copy(child, clone, child.name, new_id)
        return clone

    def is_within(self, node: Node, folder: Node) -> bool:
        """True when ``node`` is ``folder`` or below it."""
        current: Node | None = node
        while current is not None:
            if current is folder:
                return True
            current = current.parent
        return False

    def move_to_trash(self, node: Node) -> None:
        """Box delete: detach ``node`` with its contents into the trash, restorable by id."""
        parent_id = node.parent.id if node.parent is not None else self.root.id
        self.remove(node)
        self.trash[node.id] = (node, parent_id, time.time())
        self.trashed[node.id] = node
        for child in node.walk():
            self.trashed[child.id] = child

    def restore(self, node: Node, parent: Node, name: str) -> None:
        """Put a trashed item (and its contents) back under ``parent`` as ``name``."""
        del self.trash[node.id]
        for item in [node, *node.walk()]:
            self.trashed.pop(item.id, None)
            self.index[item.id] = item
        node.name, node.parent = name, parent
        parent.children[name.lower()] = node
        parent.modified_at = time.time()

    def purge(self, node: Node) -> None:
        """Delete a trashed item for good."""
        del self.trash[node.id]
        for item in [node, *node.walk()]:
            self.trashed.pop(item.id, None)

    def to_json(self) -> dict[str, Any]:
        """Serializable form (file bytes as base64) for --state persistence."""

        def dump(node: Node) -> dict[str, Any]:
            item: dict[str, Any] = {
                "id": node.id,
                "name": node.name,
                "folder": node.folder,
                "rev": node.rev,
                "version": node.version,
                "version_id": node.version_id,
                "created_at": node.created_at,
                "modified_at": node.modified_at,
            }
            if node.folder:
                item["children"] = [dump(c) for c in node.children.values()]
            else:
                item["content"] = base64.b64encode(node.content).decode("ascii")
            return item

        return dump(self.root)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Tree:
        """Inverse of :meth:`to_json`."""
        tree = cls(data["id"])

        def load(parent: Node, item: dict[str, Any]) -> None:
            node = tree.add(parent, item["name"], item["folder"], item["id"])
            if not node.folder:
                node.set_content(base64.b64decode(item["content"]))
            node.rev, node.version, node.version_id = item["rev"], item["version"], item["version_id"]
            node.created_at, node.modified_at = item["created_at"], item["modified_at"]
            for child in item.get("children", []):
                load(node, child)

        for child in data.get("children", []):
            load(tree.root, child)
        return tree
