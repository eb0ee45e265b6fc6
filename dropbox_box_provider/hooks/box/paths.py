"""Box path resolution: one I/O-free resolver driven by a sync and an async runner, and RemoteEntry.

Box has ids, not paths: ``/a/b`` is found by listing the root folder for ``a``, then ``a`` for ``b``. The
resolver is a generator that *yields* the requests it needs (``ListPage``, ``ProbeId``) and is *sent* their
answers, the way httpx's ``Auth.auth_flow`` serves both clients; the hook runs it with ``request`` or
``arequest``. So the sync and async paths are the same code and cannot drift.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, Literal

from dropbox_box_provider.errors import InvalidRemotePath, NotFound
from dropbox_box_provider.hooks.files import RemoteEntry
from dropbox_box_provider.hooks.matching import aware_time

ROOT_ID = "0"
ItemType = Literal["file", "folder"]
ITEM_TYPES: tuple[ItemType, ...] = ("file", "folder")
# The fields a listing needs for RemoteEntry (Box lists mini objects otherwise).
LIST_FIELDS = "type,id,name,size,sha1,modified_at,etag,sequence_id,file_version"


@dataclass(frozen=True)
class Item:
    """A resolved remote item: its Box id and whether it is a file or a folder."""

    id: str
    type: ItemType


ROOT = Item(ROOT_ID, "folder")


@dataclass(frozen=True)
class ListPage:
    """Request: one page of ``folder_id``'s items from ``marker`` (with ``fields``, else mini objects);
    answer: the page (entries, next_marker)."""

    folder_id: str
    marker: str | None = None
    fields: str | None = None


@dataclass(frozen=True)
class ProbeId:
    """Request: does a ``kind`` with ``item_id`` exist? answer: bool."""

    kind: ItemType
    item_id: str


@dataclass(frozen=True)
class GetItem:
    """Request: the full object of ``item``; answer: the object, or None when Box answers 404."""

    item: Item


@dataclass(frozen=True)
class Emit:
    """Not a request: a listed entry (and its path below the walked folder) for the runner to hand on."""

    relative: str
    entry: RemoteEntry


Step = ListPage | ProbeId | GetItem
Flow = Generator[Step, Any, Item]
WalkFlow = Generator[ListPage | Emit, Any, None]


def item_id_of(ref: str | int) -> str | None:
    """The Box id ``ref`` names (``id:123``, ``"123"`` or ``123``), or None for a path."""
    if isinstance(ref, int) and not isinstance(ref, bool):
        return str(ref)
    if isinstance(ref, str):
        text = ref[3:] if ref.startswith("id:") else ref
        if text.isascii() and text.isdigit():
            return text
        if ref.startswith("id:"):
            raise InvalidRemotePath(f"{ref!r} is not a Box id: Box ids are digits, e.g. 'id:123456'")
    return None


def split_path(path: str) -> list[str]:
    """``/a/b/c.csv`` -> ``["a", "b", "c.csv"]``; ``/`` -> ``[]``. Raises InvalidRemotePath on bad input."""
    if not isinstance(path, str) or not path.startswith("/"):
        raise InvalidRemotePath(
            f"{path!r} is neither a Box path nor a Box id: give a path starting with '/' "
            "(e.g. '/reports/2024.csv') or a file/folder id such as 'id:123456'"
        )
    parts = [p for p in path.split("/") if p]
    for part in parts:
        if part in (".", "..") or part != part.strip():
            raise InvalidRemotePath(
                f"Box path {path!r} has the segment {part!r}; Box names cannot be '.' or '..' or start/end "
                "with spaces: write the path without it"
            )
    return parts


def display(parts: list[str]) -> str:
    """``["a", "b"]`` -> ``/a/b``."""
    return "/" + "/".join(parts)


class PathCache:
    """Paths already resolved by this hook (lower-cased, as Box compares names), invalidated on change."""

    def __init__(self) -> None:
        self._items: dict[str, Item] = {}

    @staticmethod
    def key(parts: list[str]) -> str:
        return "/" + "/".join(p.lower() for p in parts)

    def get(self, parts: list[str]) -> Item | None:
        return self._items.get(self.key(parts))

    def remember(self, parts: list[str], item: Item) -> None:
        self._items[self.key(parts)] = item

    def forget(self, parts: list[str] | None, item_id: str | None = None) -> None:
        """Drop a path and everything below it (and any path naming ``item_id``)."""
        if parts is not None:
            key = self.key(parts)
            below = key.rstrip("/") + "/"
            for cached in [k for k in self._items if k == key or k.startswith(below)]:
                del self._items[cached]
        if item_id is not None:
            for cached in [k for k, v in self._items.items() if v.id == item_id]:
                self.forget(split_path(cached))

    def clear(self) -> None:
        self._items.clear()


def resolve(cache: PathCache, parts: list[str]) -> Generator[Step, Any, Item | None]:
    """The item at ``parts`` (None when absent), listing only folders the cache does not know, and stopping
    at the page that holds the wanted name; every sibling seen is cached on the way."""
    if not parts:
        return ROOT
    cached = cache.get(parts)
    if cached is not None:
        return cached
    current = ROOT
    for depth, name in enumerate(parts):
        found = cache.get(parts[: depth + 1])
        if found is None:
            if current.type != "folder":
                return None
            found = yield from _child(cache, current.id, name, parts[:depth])
            if found is None:
                return None
        current = found
    return current


def _child(
    cache: PathCache, folder_id: str, name: str, parents: list[str]
) -> Generator[Step, Any, Item | None]:
    wanted = name.lower()
    marker: str | None = None
    while True:
        page = yield ListPage(folder_id, marker)
        match = None
        for entry in page["entries"]:
            item = Item(str(entry["id"]), entry["type"])
            entry_name = entry.get("name")
            if entry_name:
                cache.remember([*parents, str(entry_name)], item)
                if match is None and str(entry_name).lower() == wanted:
                    match = item
        if match is not None:
            return match
        marker = page.get("next_marker")
        if not marker:
            return None


def lookup(cache: PathCache, ref: str | int, who: str, want: ItemType | None = None) -> Flow:
    """Resolve a path or id to an item, raising NotFound / InvalidRemotePath; an id's type is probed only
    when ``want`` does not say it."""
    item_id = item_id_of(ref)
    if item_id is not None:
        if want is not None:
            return Item(item_id, want)
        for kind in ITEM_TYPES:
            if (yield ProbeId(kind, item_id)):
                return Item(item_id, kind)
        raise NotFound(
            f"Box has no file or folder with id {item_id} visible to {who}; check the id and the "
            "connection's as_user",
            status=404,
            code="not_found",
        )
    item = yield from resolve(cache, split_path(str(ref)))
    if item is None:
        raise NotFound(
            f"Box has no item at {ref!r} (as seen by {who}); check the path, or create it first",
            status=404,
            code="not_found",
        )
    if want is not None and item.type != want:
        raise InvalidRemotePath(f"Box path {ref!r} is a {item.type}, not a {want}")
    return item


def fetch(
    cache: PathCache, ref: str | int, who: str, want: ItemType | None = None
) -> Generator[Step, Any, dict[str, Any]]:
    """Box's full object of the item ``ref`` names; NotFound (and forgotten) when it is gone. A remembered
    path whose item was since moved or renamed (by another hook or worker) is looked up afresh."""
    item = yield from lookup(cache, ref, who, want)
    body = yield GetItem(item)
    if body is not None and item_id_of(ref) is None and not _still_at(cache, split_path(str(ref)), body):
        cache.forget(split_path(str(ref)))
        item = yield from lookup(cache, ref, who, want)
        body = yield GetItem(item)
    if body is None:
        cache.forget(None if item_id_of(ref) is not None else split_path(str(ref)), item.id)
        raise NotFound(
            f"Box {item.type} {item.id} ({ref!r}) no longer exists for {who}", status=404, code="not_found"
        )
    result: dict[str, Any] = body
    return result


def _still_at(cache: PathCache, parts: list[str], body: dict[str, Any]) -> bool:
    """False when the object fetched for the remembered path ``parts`` now has another name or parent."""
    if not parts:
        return True
    if str(body.get("name", "")).lower() != parts[-1].lower():
        return False
    parent = cache.get(parts[:-1]) if len(parts) > 1 else ROOT
    parent_id = (body.get("parent") or {}).get("id")
    return parent is None or parent_id is None or str(parent_id) == parent.id


def path_of(body: dict[str, Any], fallback: str | None = None) -> str:
    """The display path of a Box object: ``fallback`` when known, else from its ``path_collection``."""
    if fallback is not None:
        return fallback
    if body.get("id") == ROOT_ID and body.get("type") == "folder":
        return "/"
    chain = (body.get("path_collection") or {}).get("entries") or []
    names = [str(e.get("name")) for e in chain if str(e.get("id")) != ROOT_ID]
    return display([*names, str(body.get("name", ""))])


def entry_of(body: dict[str, Any], path: str | None = None) -> RemoteEntry:
    """RemoteEntry of a Box file or folder object (``path`` when the caller knows it)."""
    is_file = body.get("type") == "file"
    size = body.get("size")
    is_root = str(body.get("id")) == ROOT_ID and not is_file
    return RemoteEntry(
        path=path_of(body, path),
        name="" if is_root else str(body.get("name", "")),
        id=str(body.get("id", "")),
        kind="file" if is_file else "folder",
        size=size if isinstance(size, int) else None,
        # Folders carry no time in RemoteEntry: Dropbox has none for them (Box's is in ``raw``).
        modified=aware_time(body.get("modified_at")) if is_file and body.get("modified_at") else None,
        content_hash=body.get("sha1") if is_file else None,
        hash_algorithm="sha1" if is_file else None,
        raw=body,
        etag=str(body["etag"]) if body.get("etag") is not None else None,
    )


def walk(cache: PathCache, folder: RemoteEntry, recursive: bool) -> WalkFlow:
    """Every entry below ``folder`` (breadth first when recursive) as ``Emit`` steps, listing pages with the
    fields RemoteEntry needs; every entry seen is cached by path."""
    pending = [(folder.id, folder.path, "")]
    while pending:
        folder_id, folder_path, prefix = pending.pop(0)
        marker: str | None = None
        while True:
            page = yield ListPage(folder_id, marker, LIST_FIELDS)
            for raw in page["entries"]:
                entry = entry_of(raw, f"{folder_path.rstrip('/')}/{raw.get('name', '')}")
                cache.remember(split_path(entry.path), Item(entry.id, entry.kind))
                yield Emit(prefix + entry.name, entry)
                if recursive and entry.kind == "folder":
                    pending.append((entry.id, entry.path, f"{prefix}{entry.name}/"))
            marker = page.get("next_marker")
            if not marker:
                break


def next_step(flow: WalkFlow, answer: Any) -> ListPage | Emit | None:
    """The walk's next step after sending ``answer``; None when it is done."""
    try:
        return flow.send(answer)
    except StopIteration:
        return None
