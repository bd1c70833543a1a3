"""Every notebook runs top to bottom under papermill, against the real services."""

from pathlib import Path

import nbformat
import papermill
import pytest

from labkit.config import PROJECT_ROOT

NOTEBOOKS = PROJECT_ROOT / "notebooks"
BUILD = PROJECT_ROOT / "build" / "notebooks"

# Parameters that keep each notebook short in CI (each runs in well under 2 minutes).
QUICK = {
    "00_start_here.ipynb": {"start_services": True},
    "01_sensors.ipynb": {"days": 2, "speed": 86400.0, "live_seconds": 5},
    "02_kafka.ipynb": {"speed": 43200.0, "live_seconds": 8},
    "03_flink_sql.ipynb": {"speed": 86400.0, "live_seconds": 25},
    "04_hbase.ipynb": {"days": 4},
    "05_grafana_api.ipynb": {"days": 2},
    "06_end_to_end.ipynb": {"speed": 86400.0, "live_seconds": 25},
}


def _sources() -> list[Path]:
    return sorted(NOTEBOOKS.glob("*.ipynb"))


def test_every_notebook_has_quick_parameters():
    assert [path.name for path in _sources()] == sorted(QUICK)


@pytest.mark.parametrize("source", _sources(), ids=lambda path: path.stem)
def test_sources_are_committed_without_outputs(source: Path):
    notebook = nbformat.read(source, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]


@pytest.mark.parametrize("source", _sources(), ids=lambda path: path.stem)
def test_notebook_runs_top_to_bottom(stack, source: Path):
    BUILD.mkdir(parents=True, exist_ok=True)
    executed = BUILD / source.name
    papermill.execute_notebook(
        str(source),
        str(executed),
        parameters=QUICK[source.name],
        kernel_name="python3",
        cwd=str(NOTEBOOKS),
        progress_bar=False,
    )
    notebook = nbformat.read(executed, as_version=4)
    errors = [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type == "error"
    ]
    assert errors == []
    # Figures reach the reader as images, not only as "<Figure size ...>" text.
    figures = [
        output.get("data", {})
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.get("data", {}).get("text/plain", "").startswith("<Figure size")
    ]
    assert all("image/png" in data for data in figures)
