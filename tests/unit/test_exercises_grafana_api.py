"""Notebook 05's checks without the services: how two answers are compared and what is said
about the difference; a WSGI app served from a thread; the cause exercise."""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd
import pytest

from labkit import api, config
from labkit.dashboard.compare import Cause, PanelComparison, SeriesComparison
from labkit.dashboard.preview import PanelData
from labkit.errors import LabkitError
from labkit.exercises import Status
from labkit.exercises import grafana_api as checks
from labkit.notebook import grafana_api

HOUR_MS = 3_600_000
EXPECTED = [[20.5, 1_704_067_200_000], [21.25, 1_704_068_100_000], [19.0, 1_704_069_000_000]]


def test_the_same_points_are_no_finding():
    assert checks.compare_points("TH1_raw", EXPECTED, [list(p) for p in EXPECTED], 10) is None
    # Float rounding is not a difference.
    close = [[value * (1 + 1e-12), ms] for value, ms in EXPECTED]
    assert checks.compare_points("TH1_raw", EXPECTED, close, 10) is None


@pytest.mark.parametrize(
    ("got", "said", "hint"),
    [
        ([[v, ms // 1000] for v, ms in EXPECTED], "point 1 of 3: expected [20.5, 1704067200000]",
         "seconds"),
        ([[v, ms - HOUR_MS] for v, ms in EXPECTED], "(2024-01-01 00:00:00), got [20.5, ", "zone"),
        ([[ms, v] for v, ms in EXPECTED], "point 1 of 3", "order"),
        (EXPECTED[:2], "2 points, expected 3; missing: [19, 1704069000000]", "ends"),
        (EXPECTED[:1], "1 points, expected 3", "ends"),
        ([[20.5, EXPECTED[0][1]], [99.0, EXPECTED[1][1]], EXPECTED[2]],
         "point 2 of 3: expected [21.25, 1704068100000] (2024-01-01 00:15:00), got [99,", None),
        ([*EXPECTED, EXPECTED[-1]], "4 points, more than the panel's maxDataPoints (3)",
         "downsample"),
        ("nothing", "datapoints is str", None),
        ([[1.0]], "point 1 is [1.0], not [value, time]", "order"),
    ],
)  # fmt: skip
def test_each_difference_is_named_with_a_hint(got, said, hint):
    text, key = checks.compare_points("TH1_raw", EXPECTED, got, 3)
    assert text.startswith("TH1_raw: ") and said in text
    assert key == hint
    if key:
        assert checks.HINTS[key]


def test_a_query_answer_is_compared_target_by_target():
    expected = [{"target": "TH1_raw", "refId": "A", "datapoints": EXPECTED},
                {"target": "TH2_raw", "refId": "B", "datapoints": EXPECTED}]  # fmt: skip
    assert checks.compare_query(expected, [dict(item) for item in expected], 10) == []
    swapped = [expected[1], expected[0]]
    found = checks.compare_query(expected, swapped, 10)
    assert [text.split(":")[0] for text, _ in found] == ["TH1_raw", "TH2_raw"]
    assert "expected 'TH1_raw', 'A'" in found[0][0]
    assert (
        checks.compare_query(expected, expected[:1], 10)[0][0] == "1 items answered for 2 targets"
    )
    assert "not a list" in checks.compare_query(expected, {"oops": 1}, 10)[0][0]


def test_the_metric_list_must_be_the_raw_and_daily_metrics():
    reference = [{"label": name, "value": name} for name in api.CATALOGUE]
    served = [n for n, m in api.CATALOGUE.items() if m.kind in ("raw", "daily")]
    assert checks.compare_metrics(reference, [{"value": n} for n in served]) == []
    assert checks.compare_metrics(reference, served) == []  # SimpleJSON's plain names will do
    (missing,) = checks.compare_metrics(reference, served[1:])
    assert missing[0] == f"missing: {served[0]}"
    (extra,) = checks.compare_metrics(reference, list(api.CATALOGUE))
    assert "W1_late" in extra[0] and "invalid" in extra[0]


def test_scans_are_bounded_and_read_about_the_range():
    bounded = [checks.Scan("iot_raw", True, 25), checks.Scan("iot_raw", True, 25)]
    assert checks.scans_finding(bounded, 50, 2) is None
    assert checks.scans_finding(bounded, 44, 2) is None  # a few rows of slack per target
    text, hint = checks.scans_finding(bounded, 20, 2)
    assert text == "your app's scans read 50 rows of HBase where the targets' ranges hold 20"
    assert hint == "scan"
    whole = [checks.Scan("iot_raw", False, 1000)]
    assert checks.scans_finding(whole, 1000, 1)[0].startswith("your app scanned whole tables")


def test_the_last_error_of_a_traceback_is_named_with_its_line():
    log = (
        "2024-01-01 [FALCON] [ERROR] POST /query => Traceback (most recent call last):\n"
        '  File "/site-packages/falcon/app.py", line 487, in __call__\n'
        "    responder(req, resp, **params)\n"
        '  File "/tmp/ipykernel_12/345.py", line 30, in on_post\n'
        '    points = body["maxDataPoint"]\n'
        "KeyError: 'maxDataPoint'\n"
    )
    assert checks.last_error(log) == (
        ": KeyError: 'maxDataPoint' at `points = body[\"maxDataPoint\"]`"
    )
    assert checks.last_error("") == ""


def test_serve_serves_any_wsgi_app_and_keeps_its_errors():
    def app(environ, start_response):
        if environ["PATH_INFO"] == "/boom":
            raise ValueError("boom")
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b'{"hello": "world"}']

    with grafana_api.serve(app) as served:
        assert api.call(served.url, "/") == {"hello": "world"}
        assert api.request(served.url, "/boom")[0] == 500
        assert "ValueError: boom" in served.errors()
        with pytest.raises(LabkitError, match="is taken"):
            grafana_api.serve(app, port=served.server.server_port)
    served.stop()  # stopping twice is harmless


def _comparison(cause_of_drawn: str) -> PanelComparison:
    """A daily panel whose last day is on one side only, or a value that differs."""
    days = pd.date_range(datetime(2024, 1, 1), periods=3, freq="D")
    computed = pd.Series([1.0, 2.0, 3.0], index=days)
    drawn = computed.iloc[:2] if cause_of_drawn == "edge" else computed.replace(2.0, 5.0)
    cause = Cause.WINDOW_EDGES if cause_of_drawn == "edge" else Cause.MISMATCH
    at = days[2] if cause_of_drawn == "edge" else days[1]
    request = api.panel_request(["TH1_aggr"], days[0], days[-1] + timedelta(days=1))
    data = PanelData({"title": "Temperatures: daily average", "type": "timeseries"}, request, [])
    series = SeriesComparison("TH1_aggr", drawn, computed, 3.0, at.to_pydatetime(), cause)
    return PanelComparison(data, None, "the oracle", [series])  # type: ignore[arg-type]


def test_the_cause_exercise_is_right_only_for_the_cause():
    edge = _comparison("edge")
    assert checks.difference_cause("x", "window edges", edge).passed
    assert checks.difference_cause("x", None, edge).status is Status.NOT_YET
    wrong = checks.difference_cause("x", "downsampling", edge)
    assert wrong.status is Status.WRONG and "Hint" in wrong.text() and "edges" not in wrong.hint
    unknown = checks.difference_cause("x", "a bug", edge)
    assert unknown.status is Status.WRONG and "'roll-ups'" in unknown.text()


def test_the_differences_are_explained_in_words():
    found = [_comparison("edge"), _comparison("value")]
    text = grafana_api.explain(found)
    assert "Temperatures: daily average (TH1_aggr): 3" in text and ": window edges" in text
    assert "0 of 2 panels draw exactly what the notebook computes." in text
    assert "Window edges: a day appears on one side only" in text
    assert "cause" not in grafana_api.differences_table(found).columns


def test_something_else_than_an_app_is_wrong_before_any_request():
    settings = config.load({})
    start = datetime(2024, 1, 1)
    verdict = checks.check_api(lambda mine: 42, settings, start, start + timedelta(days=2))
    assert verdict.status is Status.WRONG
    assert "`<lambda>` returned 42, not a WSGI app" in verdict.text()
    assert checks.check_api(lambda mine: None, settings, start, start).status is Status.NOT_YET
