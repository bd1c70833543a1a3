"""The metric lists, payload options, variables and tags the query editor asks for; every
panel of the provisioned dashboard answered."""

from __future__ import annotations

from datetime import timedelta

from ...api_reference import DASHBOARDS, dashboard_queries, expected_names, iso, simpod_query
from .helpers import START, send

# --------------------------------------------------------------------------------------
# Health, metric lists, variables, tags
# --------------------------------------------------------------------------------------


def test_health_answers_get_and_head(url):
    status, body = send(url, "/")
    assert status == 200 and body["status"] == "ok"
    # simPod 0.6 calls the datasource URL without the slash; HTTP sends it as "/" anyway.
    assert send(url.rstrip("/"), "")[0] == 200
    assert send(url, "/", method="HEAD")[0] == 200


def test_search_lists_every_metric_of_the_catalogue(url):
    # SimpleJSON's query editor sends an empty target; simPod 0.2 adds a type.
    assert send(url, "/search", {"target": ""}) == (200, expected_names())
    assert send(url, "/search", {"type": "timeseries", "target": ""}) == (200, expected_names())
    status, found = send(url, "/search", {"target": "th1"})
    assert status == 200 and found == [n for n in expected_names() if "TH1" in n]
    assert {"TH1_raw", "TH1_aggr", "Etot_DailyDiff", "Wtot_AggDayRest", "W1_late"} <= set(
        expected_names()
    )


def test_metrics_lists_the_same_metrics_with_a_format_payload(url):
    for body in ({}, {"metric": "TH1_raw", "payload": {"format": "table"}}):
        status, metrics = send(url, "/metrics", body)
        assert status == 200
        assert [item["value"] for item in metrics] == expected_names()
        for item in metrics:
            assert item["label"] and item["payloads"][0]["name"] == "format"
            formats = [option["value"] for option in item["payloads"][0]["options"]]
            late_or_invalid = item["value"].endswith("_late") or item["value"] == "invalid"
            assert formats == ["timeseries", "table"] + (["annotations"] if late_or_invalid else [])


def test_raw_metrics_offer_a_source_payload(url):
    _, metrics = send(url, "/metrics", {})
    for item in metrics:
        names = [payload["name"] for payload in item["payloads"]]
        assert names == (["format", "source"] if item["value"].endswith("_raw") else ["format"])
    body = {"metric": "TH1_raw", "payload": {}, "name": "source"}
    assert [o["value"] for o in send(url, "/metric-payload-options", body)[1]] == ["auto", "raw"]
    assert send(url, "/metric-payload-options", {**body, "metric": "TH1_aggr"}) == (200, [])


def test_metric_payload_options(url):
    body = {"metric": "W1_late", "payload": {"format": "table"}, "name": "format"}
    status, options = send(url, "/metric-payload-options", body)
    assert status == 200 and [o["value"] for o in options] == ["timeseries", "table", "annotations"]
    body = {"metric": "TH1_raw", "payload": {}, "name": "format"}
    assert [o["value"] for o in send(url, "/metric-payload-options", body)[1]] == [
        "timeseries",
        "table",
    ]
    assert send(url, "/metric-payload-options", {**body, "name": "other"}) == (200, [])


def test_variable_answers_text_and_value(url):
    span = {"from": iso(START), "to": iso(START + timedelta(days=1))}
    # format "string": the plugin wraps the query as {type, target}; "json": the parsed JSON.
    for payload in ({"target": "late"}, {"target": "_late", "type": None}):
        body = {"payload": payload, "range": {**span, "raw": span}, "rangeRaw": span}
        status, options = send(url, "/variable", body)
        late = [name for name in expected_names() if name.endswith("_late")]
        assert status == 200 and options == [{"__text": n, "__value": n} for n in late]


def test_tag_keys_and_values_are_empty(url):
    assert send(url, "/tag-keys", {}) == (200, [])
    assert send(url, "/tag-values", {"key": "City"}) == (200, [])


def test_every_dashboard_target_is_a_metric_the_api_serves(url):
    queries = dashboard_queries()
    assert DASHBOARDS and len(queries) >= 10
    targets = {t["target"] for _, group in queries for t in group}
    assert targets <= set(expected_names())
    # The panels cover raw and daily data of every sensor group, the rests, late and invalid.
    assert {"TH1_raw", "TH1_aggr", "HVAC1_raw", "MiAC2_aggr", "W1_raw", "W1_aggr",
            "Etot_AggDayRest", "Wtot_AggDayRest", "W1_late", "invalid"} <= targets  # fmt: skip
    for kind, group in queries:
        status, answer = send(url, "/query", simpod_query(group, START, START + timedelta(3), 800))
        assert status == 200 and len(answer) == len(group)
        tables = kind in ("table", "annotations")
        assert all(("rows" in item) == tables for item in answer), kind


def test_payload_options_of_a_variable_metric_are_every_choice(url):
    def options(metric: str, name: str) -> list[str]:
        body = {"metric": metric, "payload": {}, "name": name}
        status, answer = send(url, "/metric-payload-options", body)
        assert status == 200, answer
        return [option["value"] for option in answer]

    # The plugin sends a builder-mode metric uninterpolated: "$metric".
    for metric in ("$metric", "${metric}", "[[metric]]"):
        assert options(metric, "format") == ["timeseries", "table", "annotations"]
        assert options(metric, "source") == ["auto", "raw"]
    # A variable's "All": what every metric it names has.
    assert options("*", "format") == ["timeseries", "table"]
    assert options("*", "source") == []
    assert options(".*_late", "format") == ["timeseries", "table", "annotations"]
    assert options(".*_raw", "source") == ["auto", "raw"]
