"""Deferred imports: a module bound to a name at import time but loaded at its first attribute access.

DAG files import the hooks and triggers while they are parsed; the modules those need only when a call is
made (HTTP transport, token manager and store, transfers) load on first use instead. Modules named here
must stay lazy: ``tests/integration/test_hook_imports.py`` fails when a DAG-file import loads them.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType
from typing import Any, cast


class LazyModule:
    """Stands in for module ``name`` under ``binding`` in ``namespace`` (a module's ``globals()``) until
    first used; then imports it (under the import system's own lock) and rebinds the name to the real
    module, so every later lookup is an ordinary global."""

    __slots__ = ("_binding", "_name", "_namespace")

    def __init__(self, name: str, namespace: dict[str, Any], binding: str) -> None:
        self._name = name
        self._namespace = namespace
        self._binding = binding

    def __getattr__(self, attribute: str) -> Any:
        module = importlib.import_module(self._name)
        if self._namespace.get(self._binding) is self:
            self._namespace[self._binding] = module
        return getattr(module, attribute)

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}>"


def lazy_module(name: str, namespace: dict[str, Any], binding: str | None = None) -> ModuleType:
    """Module ``name`` for the global ``binding`` (default: its last component) of ``namespace``: the
    module itself when already imported, else a stand-in that imports it at its first attribute access.

    Use it under ``if TYPE_CHECKING: from … import name`` / ``else:`` so type checkers see the module.
    """
    loaded = sys.modules.get(name)
    if loaded is not None:
        return loaded
    return cast(ModuleType, LazyModule(name, namespace, binding or name.rpartition(".")[2]))
