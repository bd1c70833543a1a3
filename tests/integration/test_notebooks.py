"""Every notebook runs top to bottom under papermill, against the real services, twice: with
the reference solutions (every check passes) and with the skeletons a student starts from
(every check says "not yet", and the notebook still finishes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
import papermill
import pytest

from labkit.config import PROJECT_ROOT

NOTEBOOKS = PROJECT_ROOT / "notebooks"
BUILD = PROJECT_ROOT / "build" / "notebooks"

# Parameters that keep each notebook short in CI and still leave every table and plot it
# talks about non-empty.
QUICK: dict[str, dict[str, Any]] = {
    "00_start_here.ipynb": {"start_services": True},
    "01_sensors.ipynb": {"days": 2, "speed": 86400.0, "live_seconds": 5},
    "02_kafka.ipynb": {"speed": 43200.0, "live_seconds": 8},
    "03_flink_sql.ipynb": {"days": 2.5, "speed": 86400.0, "live_seconds": 20},
    "04_hbase.ipynb": {"days": 4},
    "05_grafana_api.ipynb": {"days": 2},
    "06_end_to_end.ipynb": {"speed": 86400.0, "live_seconds": 25},
}
MODES = {"solutions": True, "skeletons": False}


def _sources() -> list[Path]:
    return sorted(NOTEBOOKS.glob("*.ipynb"))


def _outputs(notebook: nbformat.NotebookNode) -> list[dict]:
    return [
        output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
    ]


def _marks(notebook: nbformat.NotebookNode) -> list[dict]:
    """The lab's marks in the outputs' metadata (``display(..., metadata=)`` puts them at the
    top; a ``_repr_*_`` method under its MIME type)."""
    marks = []
    for output in _outputs(notebook):
        metadata = output.get("metadata", {})
        for scope in (metadata, *metadata.values()):
            if isinstance(scope, dict) and "labkit" in scope:
                marks.append(scope["labkit"])
    return marks


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
