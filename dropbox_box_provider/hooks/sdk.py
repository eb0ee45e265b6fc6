"""What both SDK bridges share: tokens served by a hook's TokenManager, remembered per thread, and the typed
error for a missing ``[sdk]`` extra.

The official SDKs keep one token per client and refresh it on their own, with no lock shared between
workers. The bridges hand them this source instead, so every token they send comes from the token store and
every renewal is the manager's single-flight refresh.
"""

from __future__ import annotations

import importlib
import threading
from types import ModuleType
from typing import TYPE_CHECKING

from dropbox_box_provider.errors import MissingDependency

if TYPE_CHECKING:
    from dropbox_box_provider.auth.tokens import TokenSet
    from dropbox_box_provider.hooks.base import BaseOAuthHook

SDK_EXTRA_HINT = "pip install 'airflow-provider-dropbox-box[sdk]'"


def import_sdk(module: str, distribution: str) -> ModuleType:
    """Import an official SDK module, or raise MissingDependency naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependency(
            f"get_sdk_client() needs the official {distribution} SDK, which is not installed "
            f"({type(exc).__name__}: {exc}): `{SDK_EXTRA_HINT}`"
        ) from None


class HookTokenSource:
    """Access tokens for an SDK client, drawn from ``hook``'s TokenManager.

    ``token()`` serves the manager's valid token and remembers it for the calling thread; ``renew()`` is
    what an SDK calls after a 401: it replaces the token that thread sent, through the manager's lease, and
    only if the store still holds it (so a burst of 401s across workers makes one refresh).
    """

    def __init__(self, hook: BaseOAuthHook) -> None:
        self.hook = hook
        self._sent = threading.local()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(conn_id={self.hook.conn_id!r})"

    def token_set(self) -> TokenSet:
        """The manager's valid TokenSet (refreshed once per expiry across workers), remembered as sent."""
        tokens = self.hook.get_token_set()
        self._sent.token = tokens.access_token
        return tokens

    def token(self) -> str:
        """The manager's valid access token, remembered as the one this thread is about to send."""
        return self.token_set().access_token

    def last_sent(self) -> str | None:
        """The access token this thread was last given, if any."""
        token: str | None = getattr(self._sent, "token", None)
        return token

    def renew(self) -> TokenSet:
        """A token other than the one this thread last sent (the service refused it)."""
        sent = self.last_sent()
        if sent is None:
            return self.token_set()
        tokens = self.hook.replace_rejected_token(sent)
        self._sent.token = tokens.access_token
        return tokens
