"""Helpers of the browser tests: the app's pages, waiting for Streamlit to finish drawing, screenshots."""
from __future__ import annotations

import ast
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-output" / "screenshots"
READY_TIMEOUT_MS = 90_000


def app_pages() -> list[tuple[str, str]]:
    """(file, title) of every page app.py registers, read from its source (importing it would run Streamlit)."""
    out = []
    for node in ast.walk(ast.parse((ROOT / "app.py").read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "Page":
            title = next(k.value.value for k in node.keywords if k.arg == "title")
            out.append((node.args[0].value, title))
    return out


def wait_ready(tab, settle_ms: int = 600) -> None:
    """Wait until Streamlit has drawn the page and stopped running: no status widget, no skeletons, for a while."""
    tab.wait_for_selector('[data-testid="stAppViewContainer"]')
    tab.wait_for_selector('[data-testid="stMain"] h1, [data-testid="stException"]')
    # Hidden tabs keep their placeholders, so only what is visible counts as still drawing.
    # Elements of the previous run are marked stale until the new run redraws them.
    busy = ('[data-testid="stStatusWidget"]:visible, [data-testid="stSkeleton"]:visible, '
            '[data-testid="stSpinner"]:visible, [data-stale="true"]')
    quiet_since = None
    deadline = time.monotonic() + READY_TIMEOUT_MS / 1000
    while time.monotonic() < deadline:
        if tab.locator(busy).count():
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif (time.monotonic() - quiet_since) * 1000 >= settle_ms:
            return
        tab.wait_for_timeout(100)
    raise AssertionError("the app kept running for longer than the page timeout")


def screenshot(tab, name: str) -> Path:
    """A screenshot of the whole page under test-output/screenshots/ (git-ignored).

    Streamlit scrolls inside its main block, so a "full page" screenshot would stop at the window's edge:
    the window is stretched to the content's height for the shot.
    """
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    size = tab.viewport_size
    height = tab.evaluate("Math.max(...[...document.querySelectorAll('[data-testid=stMain], "
                          "[data-testid=stMainBlockContainer]')].map(e => e.scrollHeight))")
    tab.set_viewport_size({"width": size["width"], "height": min(max(height + 80, size["height"]), 12_000)})
    try:
        tab.wait_for_timeout(400)  # charts redraw at the new size
        tab.screenshot(path=str(path), full_page=True)
    finally:
        tab.set_viewport_size(size)
    return path
