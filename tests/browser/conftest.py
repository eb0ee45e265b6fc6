"""Fixtures of the browser tests: Debian's Chromium driven by Playwright, a fresh profile per test.

Playwright's own browser download cannot work offline, so the tests drive ``/usr/bin/chromium``; where it
(or the Playwright package) is missing they skip, and fail under ``REQUIRE_BROWSER=1``.
"""

from __future__ import annotations

import base64
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.fixtures.environment import skip_or_fail

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
# Background networking and QUIC make Chromium dial out; the closed network refuses those connections.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]
#: Tall enough that a whole connection dialog fits, so element screenshots show every field.
VIEWPORT = {"width": 1280, "height": 2600}
#: Set BROWSER_SCREENS_DIR to also collect the final form screenshots there (docs/screenshots come from it).
SHARED_SCREENS = os.environ.get("BROWSER_SCREENS_DIR")
ACTION_TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """One headless Chromium per test module; each test opens its own context (a fresh profile).

    Module scope, not session: Playwright's sync API keeps an asyncio loop running in this thread while
    it is started, and any later test of the worker that calls ``asyncio.run`` would fail.
    """
    if not CHROMIUM.exists():
        skip_or_fail("REQUIRE_BROWSER", f"Chromium not found at {CHROMIUM}: apt-get install chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("REQUIRE_BROWSER", "the playwright package is missing: uv sync --frozen")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(chromium: Browser) -> Iterator[Page]:
    """A page in a new incognito-like context: no cookies, storage or cache from another test."""
    context = chromium.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


class Screenshots:
    """Screenshots of one test under its tmp dir; failures name them so a CI log points at the pictures."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.paths: list[Path] = []

    def path(self, name: str) -> Path:
        """Where screenshot ``name`` goes; remembered for the failure message."""
        target = self.directory / f"{len(self.paths):02d}-{name}.png"
        self.paths.append(target)
        return target

    def note(self) -> str:
        return "screenshots:\n" + "\n".join(f"  {p}" for p in self.paths if p.exists())

    def stack(self, page: Page, name: str, parts: list[Path]) -> Path:
        """One PNG of ``parts`` stacked vertically, drawn by a scratch page (no imaging library needed)."""
        sources = [f"data:image/png;base64,{base64.b64encode(p.read_bytes()).decode()}" for p in parts]
        images = "".join(f"<img style='display:block' src='{source}'>" for source in sources)
        canvas = page.context.new_page()
        try:
            canvas.set_content(f"<html><body style='margin:0;background:#fff'>{images}</body></html>")
            target = self.path(name)
            canvas.screenshot(path=str(target), full_page=True)
        finally:
            canvas.close()
        return target

    @contextmanager
    def on_failure(self, page: Page) -> Iterator[None]:
        """Turn any failure inside into an AssertionError naming the screenshots, a last one included."""
        try:
            yield
        except Exception as exc:
            with suppress(Exception):
                page.screenshot(path=str(self.path("failure")), full_page=True)
            raise AssertionError(f"{type(exc).__name__}: {exc}\n{self.note()}") from exc

    def publish(self, source: Path, name: str) -> None:
        """Copy a final screenshot to BROWSER_SCREENS_DIR, when set."""
        if SHARED_SCREENS:
            Path(SHARED_SCREENS).mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, Path(SHARED_SCREENS) / name)


@pytest.fixture
def screenshots(tmp_path: Path) -> Screenshots:
    """The test's screenshot directory (``<tmp_path>/screenshots``)."""
    return Screenshots(tmp_path / "screenshots")
