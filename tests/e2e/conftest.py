"""The real app in a real browser: a Streamlit server on a demo database and headless system Chromium."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.helpers import READY_TIMEOUT_MS

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
DEMO_SCALE = "1500"  # small: the server builds nothing and every page answers in seconds
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]


@dataclass(frozen=True)
class Server:
    """A running app: its address, its database file and its process."""

    url: str
    db: Path
    proc: subprocess.Popen[bytes]
    log: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(db: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMLIT_")}
    env.update(REVOPS_DB=str(db), PYTHONPATH=str(ROOT), STREAMLIT_BROWSER_GATHER_USAGE_STATS="false")
    return env


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"streamlit exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"streamlit did not answer /_stcore/health within {timeout} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    """`streamlit run app.py` on a fresh demo database (built by the CLI first), stopped after the module."""
    if not CHROMIUM.exists():  # no server to start when no browser can look at it
        pytest.skip(f"{CHROMIUM} is missing: install it with `apt-get install chromium` to run the browser tests")
    tmp = tmp_path_factory.mktemp("e2e")
    db = tmp / "revops.duckdb"
    demo = subprocess.run([sys.executable, "-m", "revops", "demo", "--db", str(db), "--scale", DEMO_SCALE],
                          cwd=ROOT, env=_env(db), capture_output=True, text=True, timeout=300)
    assert demo.returncode == 0, demo.stderr
    port = _free_port()
    log = tmp / "streamlit.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
             "--server.port", str(port), "--server.address", "127.0.0.1"],
            cwd=ROOT, env=_env(db), stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc, log)
        yield Server(url, db, proc, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def browser():
    """Headless system Chromium through playwright (its own browser download does not work here)."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install it with `apt-get install chromium` to run the browser tests")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def tab(browser):
    """One browser tab (one app session) for the module; any JavaScript dialog, e.g. an alert(), fails it."""
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(READY_TIMEOUT_MS)
    dialogs: list[str] = []

    def _on_dialog(dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", _on_dialog)
    try:
        yield page
    finally:
        context.close()
    assert not dialogs, f"the page opened a JavaScript dialog: {dialogs}"
