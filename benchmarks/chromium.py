"""Debian's Chromium as the browser tests, the page benchmark and the screenshots launch it."""

from __future__ import annotations

from typing import Any

PATH = "/usr/bin/chromium"
# Root has no sandbox; the machine has no network, so nothing may phone home.
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def launch(playwright: Any) -> Any:
    """A headless Chromium browser from a sync Playwright instance."""
    return playwright.chromium.launch(executable_path=PATH, args=ARGS)
