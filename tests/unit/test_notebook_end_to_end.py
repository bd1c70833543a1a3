"""Notebook 06's figures and tables from a run's samples and incidents (no services: the run is
never started)."""

from __future__ import annotations

from labkit import config, notebook, sensors
from labkit.notebook.end_to_end import LINES, Incident, LiveRun


def _run() -> LiveRun:
    run = LiveRun(config.load({}), sensors.Scenario(), speed=3600.0)
    run.samples = [
        {"s": float(s), "day": s / 4, "sent": 100 * s, "flink output": max(0, 100 * s - 300),
         "committed": min(100 * s, 400) if s < 6 else 100 * s - 300}
        for s in range(10)
    ]  # fmt: skip
    run.incidents = [Incident(4.0, 1.0, "writer killed"), Incident(6.0, 1.5, "writer started")]
    return run


def test_the_timeline_draws_each_count_and_marks_each_incident():
    figure = notebook.end_to_end.timeline_figure(_run())
    (axes,) = figure.axes
    assert [line.get_label() for line in axes.lines[: len(LINES)]] == list(LINES.values())
    assert all(len(line.get_xdata()) == 10 for line in axes.lines[: len(LINES)])
    marks = axes.lines[len(LINES) :]
    assert [mark.get_xdata()[0] for mark in marks] == [4.0, 6.0]
    assert [text.get_text().strip() for text in axes.texts] == ["1", "2"]
    assert axes.get_xlabel() and axes.get_ylabel()


def test_the_incidents_are_numbered_as_on_the_timeline():
    table = notebook.end_to_end.incidents_table(_run())
    assert list(table.index) == [1, 2]
    assert list(table["what"]) == ["writer killed", "writer started"]
    assert list(table["simulated day"]) == [1.0, 1.5]
