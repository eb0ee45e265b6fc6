"""Change feeds of both services as one type: ``Change`` (added, modified, deleted, moved) with a stable
identity for de-duplication, and ``ChangePage`` (the changes plus the position after them).

Dropbox reports the latest state of each changed path (a new file and a new version both arrive as file
metadata, a move as a delete plus the new path); Box reports events (``ITEM_UPLOAD``, ``ITEM_MOVE``, ...).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Literal

from dropbox_box_provider.hooks.files import RemoteEntry

ChangeKind = Literal["added", "modified", "deleted", "moved"]
CHANGE_KINDS: tuple[ChangeKind, ...] = ("added", "modified", "deleted", "moved")


@dataclass(frozen=True)
class Change:
    """One change of one item: its kind, path (the old path for a delete), the entry (None when deleted)
    and ``identity``, equal for every delivery of the same change (Dropbox path + rev, Box event id)."""

    kind: ChangeKind
    path: str
    identity: str
    entry: RemoteEntry | None = None
    previous_path: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def name(self) -> str:
        """The item's name (last path component)."""
        return self.path.rstrip("/").rsplit("/", 1)[-1]

    @property
    def is_folder(self) -> bool:
        """True when the changed item is a folder (deletes of unknown kind count as files)."""
        return self.entry is not None and not self.entry.is_file

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON for trigger events and XComs: kind, path, identity and the file's metadata."""
        return {
            "kind": self.kind,
            "path": self.path,
            "name": self.name,
            "identity": self.identity,
            "previous_path": self.previous_path,
            "entry": self.entry.to_dict() if self.entry is not None else None,
        }


@dataclass(frozen=True)
class ChangePage:
    """Changes read from a feed and the position after them (a Dropbox cursor, a Box stream position);
    ``has_more`` says another page is ready at once."""

    changes: list[Change]
    position: str
    has_more: bool = False


class RecentIdentities:
    """The last ``size`` change identities seen: drops redeliveries of at-least-once feeds in bounded
    memory."""

    def __init__(self, size: int = 10_000) -> None:
        self.size = size
        self._seen: OrderedDict[str, None] = OrderedDict()

    def first_time(self, identity: str) -> bool:
        """True the first time ``identity`` is offered within the window, False for a repeat."""
        if identity in self._seen:
            self._seen.move_to_end(identity)
            return False
        self._seen[identity] = None
        while len(self._seen) > self.size:
            self._seen.popitem(last=False)
        return True

    def forget(self, identity: str) -> None:
        """Drop ``identity`` from the window (the next offer of it is news again)."""
        self._seen.pop(identity, None)

    def __contains__(self, identity: object) -> bool:
        return identity in self._seen

    def __len__(self) -> int:
        return len(self._seen)
