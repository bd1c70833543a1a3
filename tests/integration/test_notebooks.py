"""Every notebook runs top to bottom under papermill, against the real services, twice: with
the reference solutions (every check passes) and with the skeletons a student starts from
(every check says "not yet", and the notebook still finishes)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import nbformat
import papermill
import pytest

from labkit.config import PROJECT_ROOT

from .browser import FOLDER, SCREENSHOTS, chromium, notebook_folder, notebook_url, open_notebook

NOTEBOOKS = PROJECT_ROOT / "notebooks"
BUILD = PROJECT_ROOT / "build" / "notebooks"

# Parameters that keep each notebook short in CI and still leave every table and plot it
# talks about non-empty.
QUICK: dict[str, dict[str, Any]] = {
    "00_start_here.ipynb": {"start_services": True},
    "01_sensors.ipynb": {"days": 2, "speed": 86400.0, "live_seconds": 5},
    "02_kafka.ipynb": {"live_seconds": 10},
    "03_flink_sql.ipynb": {"days": 2.5, "speed": 86400.0, "live_seconds": 20},
    "04_hbase.ipynb": {"days": 4, "layout_days": 35, "repeats": 2},
    "05_grafana_api.ipynb": {"days": 3},
    "06_end_to_end.ipynb": {"speed": 21600.0, "live_seconds": 5, "outage_seconds": 3},
}
MODES = {"solutions": True, "skeletons": False}
# Each notebook's key figure (what `notebook.show` called it), photographed in JupyterLab.
KEY_FIGURES = {
    "00_start_here": "the lab's layers",
    "01_sensors": "distributions and the first day's cadence",
    "02_kafka": "the group's lag over time",
    "03_flink_sql": "the watermark up close",
    "04_hbase": "rows read and time per layout",
    "05_grafana_api": "the dashboard preview",
    "06_end_to_end": "the live run's timeline",
}


def _sources() -> list[Path]:
    return sorted(NOTEBOOKS.glob("*.ipynb"))


def _outputs(notebook: nbformat.NotebookNode) -> list[dict]:
    return [
        output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
    ]


def _marks_of(output: dict) -> list[dict]:
    """The lab's marks in an output's metadata (``display(..., metadata=)`` puts them at the
    top; a ``_repr_*_`` method under its MIME type)."""
    metadata = output.get("metadata", {})
    return [
        scope["labkit"]
        for scope in (metadata, *metadata.values())
        if isinstance(scope, dict) and "labkit" in scope
    ]


def _marks(notebook: nbformat.NotebookNode) -> list[dict]:
    return [mark for output in _outputs(notebook) for mark in _marks_of(output)]


def cell_showing(notebook: nbformat.NotebookNode, what: str) -> int:
    """The index (among all cells) of the cell whose output is ``what``."""
    for index, cell in enumerate(notebook.cells):
        for output in cell.get("outputs", []):
            if any(mark.get("shown") == what for mark in _marks_of(output)):
                return index
    raise AssertionError(f"no cell shows {what!r}")


def verdicts(notebook: nbformat.NotebookNode) -> dict[str, str]:
    """Exercise -> status, as the notebook's check cells recorded them."""
    return {mark["exercise"]: mark["status"] for mark in _marks(notebook) if "exercise" in mark}


def shown(notebook: nbformat.NotebookNode) -> dict[str, int]:
    """What the text talks about -> how many rows or points the notebook showed of it."""
    return {mark["shown"]: mark["size"] for mark in _marks(notebook) if "shown" in mark}


def test_every_notebook_has_quick_parameters():
    assert [path.name for path in _sources()] == sorted(QUICK)


@pytest.mark.parametrize("source", _sources(), ids=lambda path: path.stem)
def test_sources_are_committed_without_outputs(source: Path):
    notebook = nbformat.read(source, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("source", _sources(), ids=lambda path: path.stem)
def test_notebook_runs_top_to_bottom(stack, source: Path, mode: str):
    BUILD.mkdir(parents=True, exist_ok=True)
    executed = BUILD / f"{source.stem}.{mode}.ipynb"
    papermill.execute_notebook(
        str(source),
        str(executed),
        parameters={**QUICK[source.name], "solutions": MODES[mode]},
        kernel_name="python3",
        cwd=str(NOTEBOOKS),
        progress_bar=False,
    )
    notebook = nbformat.read(executed, as_version=4)
    assert [o for o in _outputs(notebook) if o.output_type == "error"] == []
    # Figures reach the reader as images, not only as "<Figure size ...>" text.
    figures = [
        output.get("data", {})
        for output in _outputs(notebook)
        if output.get("data", {}).get("text/plain", "").startswith("<Figure size")
    ]
    assert all("image/png" in data for data in figures)
    # Every table and plot the text talks about has something in it.
    assert {what: size for what, size in shown(notebook).items() if size == 0} == {}
    # The checks' own verdicts: all right with the solutions, all "not yet" without.
    recorded = verdicts(notebook)
    expected = "passed" if MODES[mode] else "not yet"
    assert {name: status for name, status in recorded.items() if status != expected} == {}
    assert recorded, "the notebook recorded no verdict"


@pytest.mark.parametrize("source", _sources(), ids=lambda path: path.stem)
def test_key_figure_is_seen_in_jupyterlab(stack, source: Path):
    """The solutions pass above left the executed notebook; JupyterLab shows its key figure,
    which is kept as a screenshot in build/screenshots/."""
    executed = BUILD / f"{source.stem}.solutions.ipynb"
    assert executed.exists(), f"{source.name} did not run with its solutions above"
    index = cell_showing(nbformat.read(executed, as_version=4), KEY_FIGURES[source.stem])
    with notebook_folder(stack) as folder, chromium() as browser:
        shutil.copy(executed, folder / source.name)
        # A window tall enough for the tallest figure (the dashboard preview).
        url = notebook_url(stack, f"{FOLDER}/{source.name}")
        page = open_notebook(browser, url, height=2600)
        cell = page.locator(".jp-Notebook .jp-Cell").nth(index)
        cell.scroll_into_view_if_needed()
        image = cell.locator(".jp-OutputArea-output img").first
        image.wait_for(timeout=60_000)
        box = image.bounding_box()
        assert box is not None and box["width"] > 300 and box["height"] > 150, box
        image.screenshot(path=str(SCREENSHOTS / f"{source.stem}.png"))
