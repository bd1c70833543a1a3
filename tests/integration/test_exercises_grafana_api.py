"""Notebook 05's Build it, checked against the real HBase and the lab's API: the reference
solution passes, the notebook's own skeleton is "not yet", and APIs that are wrong in the ways
students get them wrong are refused with words that say where."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import nbformat
import pytest

from labkit import api, hbase, sandbox
from labkit.config import PROJECT_ROOT, Settings
from labkit.exercises import Status, Verdict
from labkit.exercises import grafana_api as checks
from labkit.hbase import layout
from notebooks.solutions import grafana_api as solution

from .api.helpers import DAYS, START, Data, fill

END = START + timedelta(days=DAYS)
NOTEBOOK = PROJECT_ROOT / "notebooks" / "05_grafana_api.ipynb"


# The zoomed temperature panel: 06:00 to 12:00, both ends included, a reading every 15 minutes.
ZOOMED = 6 * 4 + 1


@pytest.fixture(scope="module")
def data(stack: Settings) -> Iterator[Data]:
    """Tables of this module's own, filled once with readings and daily values."""
    with sandbox.sandbox(stack, "t") as mine:
        yield fill(mine)


def check(data: Data, make_app=solution.my_api) -> Verdict:
    return checks.check_api(make_app, data.settings, START, END)


def skeleton() -> dict:
    """The notebook's skeleton cell, run as the student first finds it."""
    cells = nbformat.read(NOTEBOOK, as_version=4).cells
    (source,) = [cell.source for cell in cells if "def my_api(" in cell.source]
    namespace: dict = {}
    exec(compile(source, str(NOTEBOOK), "exec"), namespace)
    return namespace


def test_the_reference_solution_passes(data):
    verdict = check(data)
    assert verdict.status is Status.PASSED, verdict.text()
    assert len(verdict.right) == 6 and not verdict.wrong


def test_the_notebooks_skeleton_is_not_yet(data):
    verdict = check(data, skeleton()["my_api"])
    assert verdict.status is Status.NOT_YET, verdict.text()
    assert "empty body" in verdict.text()


def test_no_app_at_all_is_not_yet(data):
    assert check(data, lambda settings: None).status is Status.NOT_YET


def test_times_in_seconds_are_wrong(data, monkeypatch):
    monkeypatch.setattr(
        solution, "epoch_ms", lambda moment: int((moment - solution.EPOCH).total_seconds())
    )
    verdict = check(data)
    assert verdict.status is Status.WRONG
    assert f"TH1_raw: point 1 of {ZOOMED}: expected" in verdict.text()
    assert "milliseconds" in verdict.hint


def test_no_downsampling_is_wrong(data, monkeypatch):
    monkeypatch.setattr(solution, "downsample", lambda points, *bounds: points)
    verdict = check(data)
    assert verdict.status is Status.WRONG
    points = max(1, (END - START) // timedelta(minutes=40))
    readings = len(data.raw["W1"])
    assert f"W1_raw: {readings} points, more than the panel's maxDataPoints ({points})" in (
        verdict.text()
    )
    # The panels that need no downsampling are right.
    assert any("every reading: 2 series, point for point" in line for line in verdict.right)


def test_a_range_without_its_end_is_wrong(data, monkeypatch):
    read = solution.read_points

    def without_end(settings: Settings, name: str, start: datetime, end: datetime) -> list:
        return [
            point for point in read(settings, name, start, end) if point[0] < solution.epoch_ms(end)
        ]

    monkeypatch.setattr(solution, "read_points", without_end)
    verdict = check(data)
    assert verdict.status is Status.WRONG
    assert f"TH1_raw: {ZOOMED - 1} points, expected {ZOOMED}; missing: " in verdict.text()
    assert "both ends" in verdict.hint


def test_a_full_table_scan_is_wrong_even_with_the_right_points(data, monkeypatch):
    def whole_table(settings: Settings, name: str, start: datetime, end: datetime) -> list:
        metric = api.CATALOGUE[name]
        with hbase.connection(settings) as connection:
            rows = list(connection.table(hbase.table_name(settings, metric.kind)).scan())
        points = []
        for key, columns in rows:
            moment = layout.key_time(metric.kind, key)
            if layout.key_parts(key)[0] == metric.key and moment and start <= moment <= end:
                points.append((solution.epoch_ms(moment), float(columns[hbase.Column.VALUE])))
        return points

    monkeypatch.setattr(solution, "read_points", whole_table)
    verdict = check(data)
    assert verdict.status is Status.WRONG
    # The points are right; only the scans are not.
    assert all("point for point" in line for line in verdict.right if "POST /query" in line)
    assert "scanned whole tables" in verdict.text() and "window_range" in verdict.hint


def test_a_scan_of_the_whole_metric_is_wrong(data, monkeypatch):
    read = solution.read_points

    def whole_metric(settings: Settings, name: str, start: datetime, end: datetime) -> list:
        everything = read(settings, name, datetime(2000, 1, 1), datetime(2100, 1, 1))
        return [p for p in everything if solution.epoch_ms(start) <= p[0] <= solution.epoch_ms(end)]

    monkeypatch.setattr(solution, "read_points", whole_metric)
    verdict = check(data)
    assert verdict.status is Status.WRONG
    read, held = len(data.raw["TH1"]) + len(data.raw["TH2"]), 2 * ZOOMED
    assert f"your app's scans read {read} rows of HBase where the targets' ranges hold {held}" in (
        verdict.text()
    )


def test_an_exception_is_named_with_the_line_that_raised_it(data, monkeypatch):
    def no_max_points(self, req, resp) -> None:
        body = req.get_media()
        resp.media = body["maxdatapoints"]

    monkeypatch.setattr(solution.Query, "on_post", no_max_points)
    verdict = check(data)
    assert verdict.status is Status.WRONG
    assert "answered 500: KeyError: 'maxdatapoints' at `resp.media = body[\"maxdatapoints\"]`" in (
        verdict.text()
    )


def test_metrics_the_query_cannot_answer_are_wrong(data, monkeypatch):
    def every_metric(self, req, resp) -> None:
        resp.media = [{"label": name, "value": name} for name in api.CATALOGUE]

    monkeypatch.setattr(solution.Metrics, "on_post", every_metric)
    verdict = check(data)
    assert verdict.status is Status.WRONG
    assert "W1_late" in verdict.text() and "invalid" in verdict.text()
