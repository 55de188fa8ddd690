"""Headless Chromium for the tests that look at pages as a reader's browser shows them (JupyterLab, the book).

Debian's ``chromium`` (``make browser`` installs it) is driven by Python playwright, whose PyPI package brings its
own driver; playwright's own browser downloads are never used. The browser starts with an empty profile, and
requests to any host but this machine are answered with an error before they leave it, so a page can only show
what it was given. Use it as::

    with browser_page() as (page, errors):
        page.goto(url)
        ...
        assert not errors, errors

``errors`` collects the console errors and uncaught exceptions of the page, except failed loads of resources
from other hosts (a badge image, a font), which are expected without a network.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from urllib.parse import urlparse

#: Chromium's switches: headless, and nothing that would reach the network or change the profile by itself.
CHROMIUM_ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync")
LOCAL_HOSTS = ("127.0.0.1", "localhost", "")  # "" for file: and data: URLs


def chromium_path() -> str:
    """The ``chromium`` executable on the PATH (Debian's package puts it in /usr/bin)."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        raise RuntimeError("Chromium is not installed: run `make browser` (Debian/Ubuntu: apt-get install chromium)")
    return path


def is_local(url: str) -> bool:
    return urlparse(url).hostname in LOCAL_HOSTS or urlparse(url).scheme in ("file", "data", "blob", "about")


@contextlib.contextmanager
def browser_page(width: int = 1400, height: int = 1000, timeout_s: float = 60):
    """A page of a fresh headless Chromium: yields ``(page, errors)``; the browser and its profile are gone
    afterwards. ``timeout_s`` bounds every single playwright action or wait that gives no timeout of its own."""
    from playwright.sync_api import sync_playwright

    errors: list[str] = []

    def on_console(message):
        url = (message.location or {}).get("url", "")
        if message.type == "error" and not ("Failed to load resource" in message.text and not is_local(url)):
            errors.append(f"console: {message.text} ({url})")

    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile, sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=chromium_path(), headless=True, args=list(CHROMIUM_ARGS),
            viewport={"width": width, "height": height})
        try:
            context.set_default_timeout(timeout_s * 1000)
            context.route("**/*", lambda route: route.continue_() if is_local(route.request.url) else route.abort())
            page = context.pages[0] if context.pages else context.new_page()
            page.on("console", on_console)
            page.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))
            yield page, errors
        finally:
            context.close()
