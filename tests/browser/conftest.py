"""A real headless Chromium (Debian's, never a downloaded one) driven by Playwright."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from launcher.stack import REPO_ROOT
from tests.system import ensure_program


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Module scope: Playwright's sync API runs an event loop in this thread until it stops,
    and a later test in the same worker could not start one of its own (`asyncio.run`)."""
    from playwright.sync_api import sync_playwright

    executable = ensure_program("chromium", ("chromium",))
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=executable, headless=True, args=["--no-sandbox"]
        )
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    """Where screenshots land (a CI artifact); the README's pictures are picked from here."""
    folder = Path(os.environ.get("TEST_ARTIFACTS", REPO_ROOT / "test-artifacts")) / "browser"
    folder.mkdir(parents=True, exist_ok=True)
    return folder
