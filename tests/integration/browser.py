"""A real browser for the tests: Debian's headless Chromium, driven by Playwright, on the
JupyterLab the lab serves; notebooks are put in a folder of their own inside notebooks/."""

from __future__ import annotations

import contextlib
import json
import shutil
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from playwright.sync_api import Browser, Page, sync_playwright

from labkit import services
from labkit.config import PROJECT_ROOT, Settings

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = PROJECT_ROOT / "build" / "screenshots"
FOLDER = "_browser_test"  # a folder of its own inside notebooks/, removed afterwards
# Chromium's own background traffic is refused on closed networks; keep it quiet.
CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip


def jupyter_api(settings: Settings, method: str, path: str) -> object:
    request = urllib.request.Request(
        f"http://127.0.0.1:{settings.jupyter_port}{path}",
        method=method,
        headers={"Authorization": f"token {services.JUPYTER.token(settings)}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        body = response.read()
    return json.loads(body) if body else None


@contextlib.contextmanager
def notebook_folder(settings: Settings) -> Iterator[Path]:
    """JupyterLab running, and a folder of its own inside notebooks/ for the test's notebooks;
    afterwards their kernels are shut down and the folder removed."""
    services.start(services.JUPYTER, settings)
    services.wait_ready(services.JUPYTER, settings, timeout=120)
    folder = services.NOTEBOOKS_DIR / FOLDER
    folder.mkdir(exist_ok=True)
    try:
        yield folder
    finally:
        sessions = jupyter_api(settings, "GET", "/api/sessions")
        for session in sessions if isinstance(sessions, list) else []:
            if session["path"].startswith(FOLDER):
                jupyter_api(settings, "DELETE", f"/api/sessions/{session['id']}")
        shutil.rmtree(folder, ignore_errors=True)


def notebook_url(settings: Settings, path: str) -> str:
    quoted = urllib.parse.quote(path)
    token = services.JUPYTER.token(settings)
    return f"http://127.0.0.1:{settings.jupyter_port}/lab/tree/{quoted}?token={token}"


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), "Chromium is missing: `make test` installs Debian's chromium"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()


def open_notebook(browser: Browser, url: str, height: int = 1000) -> Page:
    """A page ``height`` pixels high with the notebook open in JupyterLab, its kernel chosen."""
    page = browser.new_page(viewport={"width": 1400, "height": height})
    page.goto(url)
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=60_000)
    # JupyterLab may ask which kernel to start (the notebook's own), or start it itself.
    with contextlib.suppress(Exception):
        page.locator(".jp-Dialog button", has_text="Select").click(timeout=5_000)
    return page
