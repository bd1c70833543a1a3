"""Parsing /query bodies, directly: the time range, maxDataPoints and the targets."""

from __future__ import annotations

from datetime import datetime

import pytest

from labkit.api import CATALOGUE, MAX_DATA_POINTS, MAX_METRICS_PER_QUERY, ApiError, parse
from labkit.api.catalogue import Format, Source
from labkit.api.parse import Selection, Unanswerable, Window

from ..api_reference import simplejson_query, simpod_query, simpod_target

START, END = datetime(2024, 1, 1), datetime(2024, 1, 2)


def _range(start: str, end: str) -> dict:
    return {"range": {"from": start, "to": end}}


def _refused(call, *args) -> str:
    with pytest.raises(ApiError) as raised:
        call(*args)
    assert raised.value.status_code == 400
    return raised.value.description


def test_the_range_is_read_as_naive_utc():
    assert parse.window(_range("2024-01-01T00:00:00.000Z", "2024-01-02T00:00:00Z")) == Window(
        START, END
    )
    # An offset is converted; a time without one is taken as UTC.
    window = parse.window(_range("2024-01-01T02:00:00+02:00", "2024-01-02T00:00:00"))
    assert window == Window(START, END) and window.start_ms == 1704067200000


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"range": "today"},
        _range("2024-01-02T00:00:00Z", "2024-01-01T00:00:00Z"),
        _range("yesterday", "2024-01-01T00:00:00Z"),
        {"range": {"from": 1704067200000, "to": 1704153600000}},
        {"range": {"from": "2024-01-01T00:00:00Z"}},
    ],
)
def test_bad_ranges_are_refused(body):
    assert "range" in _refused(parse.window, body)


def test_max_data_points_default_cap_and_refusals():
    assert parse.max_points({}) == 1000
    assert parse.max_points({"maxDataPoints": 500.0}) == 500
    assert parse.max_points({"maxDataPoints": 10**9}) == MAX_DATA_POINTS
    for bad in (0, -3, 2.5, True, "many", None):
        assert "maxDataPoints" in _refused(parse.max_points, {"maxDataPoints": bad})


def test_targets_become_selections_in_their_formats_and_sources():
    targets = [
        simpod_target("TH1_raw", "A"),
        simpod_target("W1_late", "B", {"format": "table"}),
        simpod_target("invalid", "C", {"format": "annotations"}),
        simpod_target("TH2_raw", "D", {"source": "raw"}),
        {**simpod_target("TH1_raw", "E"), "payload": '{"format": "table"}'},  # code mode text
        {"target": "TH2_raw", "refId": "F", "type": "timeseries", "data": {}},  # simPod 0.2
        {"target": "W1_raw", "refId": "G", "type": "table"},  # SimpleJSON
        {**simpod_target("TH1_raw", "H"), "hide": True},
        {"refId": "I"},  # a target not chosen yet
        {"target": "select metric", "refId": "J"},  # SimpleJSON's placeholder
    ]
    chosen = parse.selections(simpod_query(targets, START, END, 100))
    assert chosen == [
        Selection(CATALOGUE["TH1_raw"], Format.TIMESERIES, "A"),
        Selection(CATALOGUE["W1_late"], Format.TABLE, "B"),
        Selection(CATALOGUE["invalid"], Format.ANNOTATIONS, "C"),
        Selection(CATALOGUE["TH2_raw"], Format.TIMESERIES, "D", Source.RAW),
        Selection(CATALOGUE["TH1_raw"], Format.TABLE, "E"),
        Selection(CATALOGUE["TH2_raw"], Format.TIMESERIES, "F"),
        Selection(CATALOGUE["W1_raw"], Format.TABLE, "G"),
    ]
    legacy = simplejson_query([{"target": "TH1_raw", "type": "timeserie"}], START, END, 10)
    assert parse.selections(legacy)[0].format is Format.TIMESERIES


def test_a_multi_value_target_is_one_selection_per_metric_under_its_ref_id():
    for target in ("(TH1_raw|W1_late)", "{TH1_raw,W1_late}"):
        chosen = parse.selections(simpod_query([simpod_target(target)], START, END, 10))
        assert [(s.metric.name, s.ref_id) for s in chosen] == [("TH1_raw", "A"), ("W1_late", "A")]


@pytest.mark.parametrize(
    ("target", "said"),
    [
        ({"target": "TH1_raw", "type": "graph"}, "target.type"),
        ({"target": "TH1_raw", "payload": {"format": "pie"}}, "payload.format"),
        ({"target": "TH1_raw", "payload": {"format": ["table"]}}, "payload.format"),
        ({"target": "TH1_raw", "payload": {"source": "cache"}}, "payload.source"),
        ({"target": "TH1_raw", "payload": "{bad"}, "not valid JSON"),
        ({"target": "TH1_raw", "payload": [1]}, "JSON object"),
        ({"target": "TH1_raw", "payload": {"format": "annotations"}}, "only late and invalid"),
        ({"target": 42}, "target.target"),
        ({"target": "TH1_raw", "refId": 7}, "target.refId"),
        ({"target": "TH1"}, "Unknown metric"),
        ({"target": "TH1_raw#2024"}, "Unknown metric"),
        ({"target": "(TH1_raw|nope)"}, "Unknown metric 'nope'"),
    ],
)
def test_bad_targets_are_refused_with_what_to_change(target, said):
    assert said in _refused(parse.selections, {"targets": [target]})


def test_a_query_asks_for_a_bounded_number_of_metrics():
    enough = [{"target": "TH1_raw"}] * MAX_METRICS_PER_QUERY
    assert len(parse.selections({"targets": enough})) == MAX_METRICS_PER_QUERY
    said = _refused(parse.selections, {"targets": [*enough, {"target": "TH1_raw"}]})
    assert str(MAX_METRICS_PER_QUERY) in said
    assert "list" in _refused(parse.selections, {"targets": "TH1_raw"})


def test_an_annotation_query_asks_for_annotations_without_a_payload():
    def chosen(target: dict, request_id: str = "AQ101") -> list:
        body = {**simpod_query([target], START, END, 1920), "requestId": request_id}
        return [(s.metric.name, s.format) for s in parse.selections(body)]

    anno = {"refId": "Anno", "target": "(W1_late|invalid|TH1_raw)", "payload": {}}
    assert chosen(anno) == [
        ("W1_late", Format.ANNOTATIONS),
        ("invalid", Format.ANNOTATIONS),
        ("TH1_raw", Format.TIMESERIES),  # no events: a series, as before
    ]
    assert chosen({**anno, "payload": {"format": "table"}, "target": "W1_late"}) == [
        ("W1_late", Format.TABLE)
    ]
    # Not an annotation query: a panel's request, or another refId.
    assert chosen(anno, request_id="Q100")[0] == ("W1_late", Format.TIMESERIES)
    assert chosen({**anno, "refId": "A"})[0] == ("W1_late", Format.TIMESERIES)


def test_variables_left_as_text_and_wildcards_matching_nothing_are_unanswerable():
    targets = [
        simpod_target("$sensor_raw", "A"),
        simpod_target(".*_late", "B", {"format": "annotations"}),
        simpod_target(".*_raw", "C", {"format": "annotations"}),
        simpod_target("TH1_raw", "D"),
    ]
    chosen = parse.selections(simpod_query(targets, START, END, 100))
    skipped = [item for item in chosen if isinstance(item, Unanswerable)]
    assert [(item.target, item.ref_id) for item in skipped] == [
        ("$sensor_raw", "A"),
        (".*_raw", "C"),
    ]
    assert "variable" in skipped[0].notice and "annotations" in skipped[1].notice
    selected = [item for item in chosen if isinstance(item, Selection)]
    late = [name for name in CATALOGUE if name.endswith("_late")]
    assert [(s.metric.name, s.ref_id) for s in selected] == [
        *((name, "B") for name in late),
        ("TH1_raw", "D"),
    ]
    # Only selections count against the cap: a query of skipped targets is not refused.
    many = [simpod_target("$x")] * (MAX_METRICS_PER_QUERY + 5)
    assert len(parse.selections({"targets": many})) == MAX_METRICS_PER_QUERY + 5
