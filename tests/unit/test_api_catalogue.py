"""The metric catalogue, directly: its names, formats and editor lists, and how targets name
metrics (never a row key)."""

from __future__ import annotations

from datetime import datetime

import pytest

from labkit import api
from labkit.api import grafana
from labkit.api.catalogue import Format, matching, names_a_variable, resolve
from labkit.api.store import metric_range
from labkit.hbase.layout import TableKind

from ..api_reference import expected_names


def test_the_catalogue_has_the_original_dashboards_names():
    assert list(api.CATALOGUE) == expected_names()
    kinds = {metric.kind for metric in api.CATALOGUE.values()}
    assert kinds == {TableKind.RAW, TableKind.DAILY, TableKind.LATE, TableKind.INVALID}


def test_only_late_and_invalid_metrics_have_annotations():
    for metric in api.CATALOGUE.values():
        events = metric.kind in (TableKind.LATE, TableKind.INVALID)
        assert metric.has_events == events
        assert metric.formats == (
            (Format.TIMESERIES, Format.TABLE, Format.ANNOTATIONS)
            if events
            else (Format.TIMESERIES, Format.TABLE)
        )


def test_matching_finds_names_containing_the_text_in_any_case():
    assert matching("") == matching("*") == matching(None) == expected_names()
    assert matching("th1") == [name for name in expected_names() if "TH1" in name]
    assert matching("_late") == [name for name in expected_names() if name.endswith("_late")]
    assert matching("nothing like it") == []


def test_resolve_names_one_metric_or_several():
    assert resolve(" TH1_raw ") == [api.CATALOGUE["TH1_raw"]]
    for text in ("(TH1_raw|invalid)", "{TH1_raw,invalid}"):
        assert resolve(text) == [api.CATALOGUE["TH1_raw"], api.CATALOGUE["invalid"]]
    for text in ("TH1", "(TH1_raw|nope)", "{TH1_raw,}", "../../hbase:meta", "input"):
        with pytest.raises(api.ApiError) as raised:
            resolve(text)
        assert raised.value.extra["metrics"] == expected_names()


def test_the_editor_offers_each_metric_its_formats_and_raw_ones_a_source():
    listed = grafana.metric_list()
    assert [item["value"] for item in listed] == expected_names()
    for item in listed:
        metric = api.CATALOGUE[item["value"]]
        assert item["label"].startswith(f"{metric.name}: ")
        names = [payload["name"] for payload in item["payloads"]]
        assert names == (["format", "source"] if metric.kind is TableKind.RAW else ["format"])
        options = [option["value"] for option in item["payloads"][0]["options"]]
        assert options == list(metric.formats)


def test_request_text_never_reaches_a_row_key():
    window = api.Window(datetime(2024, 1, 1, 0, 0, 0, 1000), datetime(2024, 1, 2, 12, 0, 0, 5))
    start, stop = metric_range(api.CATALOGUE["TH1_raw"], window)
    # Rounded up and down to the whole seconds of the keys; the stop is excluded.
    assert (start, stop) == (b"TH1#2024-01-01 00:00:01", b"TH1#2024-01-02 12:00:01")
    start, stop = metric_range(api.CATALOGUE["Etot_DailyDiff"], window)
    assert (start, stop) == (b"Etot_DailyDiff#2024-01-02", b"Etot_DailyDiff#2024-01-03")
    far = api.Window(datetime(9999, 12, 31, 23, 59, 59), datetime.max)
    assert metric_range(api.CATALOGUE["invalid"], far)[1] == b"input$"
    within_a_second = api.Window(datetime(2024, 1, 1, 0, 0, 0, 1), datetime(2024, 1, 1, 0, 0, 0, 9))
    assert metric_range(api.CATALOGUE["TH1_raw"], within_a_second) is None
    with pytest.raises(api.ApiError):
        api.resolve("TH1_raw#9999")


def test_a_variables_all_value_matches_names_and_a_group_spells_them_out():
    names = expected_names()
    assert [m.name for m in resolve(".*")] == [m.name for m in resolve("*")] == names
    assert [m.name for m in resolve(".*_late")] == [n for n in names if n.endswith("_late")]
    assert [m.name for m in resolve("TH*")] == [n for n in names if n.startswith("TH")]
    assert [m.name for m in resolve("*Day*")] == [n for n in names if "Day" in n]
    assert resolve(".*_nothing") == []
    for text in ("(TH1|W1)_raw", "{TH1,W1}_raw", "(TH1_raw|W1_raw|TH1_raw)"):
        assert [m.name for m in resolve(text)] == ["TH1_raw", "W1_raw"]
    # Spelled out outright, every name must exist; nothing else of a regex is understood.
    for text in ("(TH1|TH9)_raw", "TH1_raw|W1_raw", "TH.*_raw[0-9]", "TH1_r.w", "(a*)*b"):
        with pytest.raises(api.ApiError):
            resolve(text)
    with pytest.raises(api.ApiError) as raised:
        resolve("(a|b|c|d)" * 5)
    assert "more than" in raised.value.description


def test_a_variable_left_as_text_is_recognised():
    for text in ("$sensor", "${sensor}_raw", "${sensor:regex}", "[[sensor]]_raw", "TH1_$x"):
        assert names_a_variable(text), text
    for text in ("TH1_raw", ".*", "$", "price in $ 5", "[[", "(TH1_raw|W1_raw)"):
        assert not names_a_variable(text), text
