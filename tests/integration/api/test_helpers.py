"""The API seen from the notebooks' helpers: panel_request, call, request, frames, exercises,
the sandbox."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest

from labkit import api, hbase, notebook, sandbox
from labkit.exercises import Status, answers

from ...api_reference import bucket_averages, in_window, iso
from .helpers import DAYS, START

# --------------------------------------------------------------------------------------
# Helpers for notebooks
# --------------------------------------------------------------------------------------


def test_panel_request_is_a_simpod_query_the_api_serves(url, data):
    start, end = START, START + timedelta(days=1)
    body = api.panel_request(["TH1_raw", "TH2_raw"], start, end, max_data_points=24)
    assert body["range"]["from"] == iso(start) and body["maxDataPoints"] == 24
    assert [t["refId"] for t in body["targets"]] == ["A", "B"]
    answer = api.call(url, "/query", body)
    frame = notebook.grafana_api.datapoints_frame(answer)
    assert list(frame.columns) == ["TH1_raw", "TH2_raw"] and len(frame) <= 24
    expected = bucket_averages(in_window(data.raw["TH1"], start, end), start, end, 24)
    assert frame["TH1_raw"].tolist() == pytest.approx([v for v, _ in expected])
    with pytest.raises(api.ApiCallError) as raised:
        api.call(url, "/query", api.panel_request(["TH9_raw"], start, end))
    assert raised.value.status == 400 and "TH9_raw" in raised.value.message


def test_table_frame_and_comparison_figure(url, data):
    start, end = START, START + timedelta(days=2)
    body = api.panel_request(["W1_late"], start, end, payload={"format": "table"})
    frame = notebook.grafana_api.table_frame(api.call(url, "/query", body)[0])
    inside = [row for row in data.late if start <= row["time"] <= end]
    assert frame["time"].tolist() == [pd.Timestamp(row["time"]) for row in inside]
    assert frame["value"].tolist() == [row["value"] for row in inside]
    served = notebook.grafana_api.datapoints_frame(
        api.call(url, "/query", api.panel_request(["TH1_raw"], start, end))
    )
    stored = hbase.read_series(data.settings, "TH1", start, end)["value"]
    figure = notebook.grafana_api.comparison_figure(stored, served["TH1_raw"], "TH1", "°C")
    assert len(figure.axes) == 2 and "readings" in figure.axes[0].get_title()


def test_notebook_exercises_are_checked_against_the_api(url, data):
    first_bucket = [v for t, v in data.raw["TH1"] if t < START + timedelta(hours=3)]
    assert answers.bucket_average(None, url).status is Status.NOT_YET
    assert answers.bucket_average(sum(first_bucket) / len(first_bucket), url).passed
    assert answers.bucket_average(first_bucket[0], url).status is Status.WRONG
    end = START + timedelta(days=DAYS)
    table = {"format": "table"}
    leak = api.panel_request(["Wtot_AggDayRest"], START, end, payload=table)
    assert answers.leak_table(leak, url, data.settings).passed
    series = api.panel_request(["Wtot_AggDayRest"], START, end)
    assert answers.leak_table(series, url, data.settings).status is Status.WRONG
    unknown = api.panel_request(["leak"], START, end, payload=table)
    verdict = answers.leak_table(unknown, url, data.settings)
    assert verdict.status is Status.WRONG and "400" in verdict.text()


def test_request_returns_error_statuses(url):
    status, answer = api.request(url, "/query", {"targets": []})
    assert status == 400 and "range" in answer["message"]
    assert api.request(url, "/nowhere", {})[0] == 404


def test_sandbox_settings_have_their_own_topics_and_tables(stack):
    demo = sandbox.sandbox_settings(stack, "t")
    assert demo.hbase_table_prefix != stack.hbase_table_prefix
    assert not set(demo.topics.all()) & set(stack.topics.all())
    hbase.ensure_tables(demo)
    with hbase.connection(demo) as connection:
        names = {name.decode() for name in connection.tables()}
        assert hbase.table_name(demo, "raw") in names
        sandbox.remove(demo)
        names = {name.decode() for name in connection.tables()}
        assert hbase.table_name(demo, "raw") not in names
