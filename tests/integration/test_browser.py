"""A real browser (Debian's headless Chromium, driven by Playwright) runs notebook 01 in the
JupyterLab the lab serves, and sees its sliders and plots."""

import uuid

import papermill
import pytest

from labkit import services

from .browser import FOLDER, SCREENSHOTS, chromium, notebook_folder, notebook_url, open_notebook


@pytest.fixture
def notebook_in_jupyterlab(stack):
    """JupyterLab running, and notebook 01 with quick parameters (not executed) beside it."""
    with notebook_folder(stack) as folder:
        name = f"01_sensors-{uuid.uuid4().hex[:6]}.ipynb"  # a fresh name: a fresh kernel
        papermill.execute_notebook(
            str(services.NOTEBOOKS_DIR / "01_sensors.ipynb"),
            str(folder / name),
            parameters={"days": 1, "speed": 86400.0, "live_seconds": 4},
            prepare_only=True,
        )
        yield f"{FOLDER}/{name}"


def test_notebook_01_runs_in_jupyterlab_with_its_sliders_and_plots(stack, notebook_in_jupyterlab):
    url = notebook_url(stack, notebook_in_jupyterlab)
    idle = ".jp-Notebook-ExecutionIndicator[data-status='idle']"
    with chromium() as browser:
        page = open_notebook(browser, url)
        try:
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
