"""A real browser (Debian's headless Chromium, driven by Playwright) runs notebook 01 in the
JupyterLab the lab serves, and sees its sliders and plots."""

import contextlib
import json
import shutil
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import papermill
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import sync_playwright

from labkit import services
from labkit.config import PROJECT_ROOT

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = PROJECT_ROOT / "build" / "screenshots"
FOLDER = "_browser_test"  # a folder of its own inside notebooks/, removed afterwards
# Chromium's own background traffic is refused on closed networks; keep it quiet.
CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip


def _api(settings, method: str, path: str) -> object:
    request = urllib.request.Request(
        f"http://127.0.0.1:{settings.jupyter_port}{path}",
        method=method,
        headers={"Authorization": f"token {services.JUPYTER.token(settings)}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        body = response.read()
    return json.loads(body) if body else None


@pytest.fixture
def notebook_in_jupyterlab(stack):
    """JupyterLab running, and notebook 01 with quick parameters (not executed) beside it."""
    services.start(services.JUPYTER, stack)
    services.wait_ready(services.JUPYTER, stack, timeout=120)
    folder = services.NOTEBOOKS_DIR / FOLDER
    folder.mkdir(exist_ok=True)
    name = f"01_sensors-{uuid.uuid4().hex[:6]}.ipynb"  # a fresh name: a fresh kernel
    papermill.execute_notebook(
        str(services.NOTEBOOKS_DIR / "01_sensors.ipynb"),
        str(folder / name),
        parameters={"days": 1, "speed": 86400.0, "live_seconds": 4},
        prepare_only=True,
    )
    yield f"{FOLDER}/{name}"
    for session in _api(stack, "GET", "/api/sessions"):
        if session["path"].startswith(FOLDER):
            _api(stack, "DELETE", f"/api/sessions/{session['id']}")
    shutil.rmtree(folder, ignore_errors=True)


def test_notebook_01_runs_in_jupyterlab_with_its_sliders_and_plots(stack, notebook_in_jupyterlab):
    assert Path(CHROMIUM).exists(), "Chromium is missing: `make test` installs Debian's chromium"
    path = urllib.parse.quote(notebook_in_jupyterlab)
    url = f"http://127.0.0.1:{stack.jupyter_port}/lab/tree/{path}?token={services.JUPYTER.token(stack)}"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    idle = ".jp-Notebook-ExecutionIndicator[data-status='idle']"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            page.goto(url)
            page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=60_000)
            # JupyterLab may ask which kernel to start (the notebook's own), or start it itself.
            with contextlib.suppress(PlaywrightTimeout):
                page.locator(".jp-Dialog button", has_text="Select").click(timeout=5_000)
            page.wait_for_selector(idle, timeout=60_000)
            page.get_by_role("menuitem", name="Run", exact=True).click()
            page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
            cells = page.locator(".jp-Notebook .jp-CodeCell")
            last = cells.nth(cells.count() - 1).locator(".jp-InputArea-prompt")
            # Run All ends with the last code cell numbered and the kernel idle again.
            page.wait_for_function(
                "el => /\\[[0-9]+\\]/.test(el.textContent)",
                arg=last.element_handle(),
                timeout=180_000,
            )
            page.wait_for_selector(idle, timeout=60_000)
            # JupyterLab renders only the cells in view: visit each to look at its output.
            sliders = images = errors = 0
            for index in range(cells.count()):
                cell = cells.nth(index)
                cell.scroll_into_view_if_needed()
                found_sliders = cell.locator(".widget-slider").count()
                found_images = cell.locator(".jp-OutputArea-output img").count()
                errors += cell.locator(".jp-OutputArea-output:has-text('Traceback')").count()
                if found_sliders or found_images:
                    page.screenshot(path=str(SCREENSHOTS / f"01_sensors_cell{index:02d}.png"))
                sliders += found_sliders
                images += found_images
            assert errors == 0
            assert sliders >= 10  # speed, seven sensors, two kinds of late events
            assert images >= 2  # the overview and the live chart
            # No pop-up over the notebook asks about Jupyter news.
            assert page.get_by_text("official Jupyter news").count() == 0
        finally:
            page.screenshot(path=str(SCREENSHOTS / "01_sensors_last.png"))
            browser.close()
