"""The preview's requests, built from the dashboard JSON as Grafana builds them."""

from __future__ import annotations

import copy
import socket
from datetime import datetime, timedelta

import pytest

from labkit.dashboard import preview, queries, sizing
from labkit.dashboard.queries import DashboardError, TimeRange

DASHBOARD = queries.load()
PANELS = list(queries.panels(DASHBOARD))
SCREEN = sizing.Screen(window_px=1600, grid_px=1568)


def request(panel: dict, screen: sizing.Screen = SCREEN, **span: str) -> dict:
    return queries.panel_request(DASHBOARD, panel, TimeRange.of(DASHBOARD, **span), screen)


def by_title(title: str) -> dict:
    return next(panel for panel in PANELS if panel["title"] == title)


@pytest.mark.parametrize("grid_px", [1024, 1568, 1920, 2560])
def test_max_data_points_is_the_panels_pixel_width(grid_px):
    screen = sizing.Screen(window_px=grid_px + 32, grid_px=grid_px)
    # 24 cells and 23 margins of 8 px fill the grid, so w cells are w/24 of (grid + 8), less 8.
    for panel in PANELS:
        w = panel["gridPos"]["w"]
        expected = (w * (grid_px + 8) / 24) - 8
        assert request(panel, screen)["maxDataPoints"] == int(expected + 0.5), panel["title"]
    full = {"gridPos": {"w": 24}}
    assert sizing.max_data_points(full, screen) == grid_px


def test_a_panels_own_max_data_points_wins_over_its_width():
    panel = {**copy.deepcopy(PANELS[0]), "maxDataPoints": 100}
    assert request(panel)["maxDataPoints"] == 100


def test_the_range_is_the_dashboards_unless_another_is_asked_for():
    body = request(PANELS[0])
    time = DASHBOARD["time"]
    assert body["range"]["from"] == "2024-01-01T00:00:00.000Z" == time["from"]
    assert body["range"]["to"] == "2024-01-31T00:00:00.000Z" == time["to"]
    assert body["rangeRaw"] == {"from": time["from"], "to": time["to"]}
    other = request(PANELS[0], start="2024-01-05T00:00:00Z", end="1704672000000")
    assert other["range"]["from"] == "2024-01-05T00:00:00.000Z"
    assert other["range"]["to"] == "2024-01-08T00:00:00.000Z"  # epoch ms, as in Grafana URLs
    assert other["rangeRaw"] == {"from": "2024-01-05T00:00:00Z", "to": "1704672000000"}


def test_ranges_that_cannot_be_previewed_say_what_to_do():
    with pytest.raises(DashboardError, match="before it starts"):
        request(PANELS[0], start="2024-01-05T00:00:00Z", end="2024-01-04T00:00:00Z")
    with pytest.raises(DashboardError, match="--from and --to"):
        request(PANELS[0], start="now-7d", end="now")


def test_interval_follows_grafanas_rounding():
    span = 30 * 86_400_000
    # 30 days in 780 points is 55 minutes a point: Grafana rounds that to 1 h.
    assert request(by_title("Temperatures: readings every 15 minutes"))["intervalMs"] == 3_600_000
    assert sizing.calculate_interval(span, 780) == (3_600_000, "1h")
    assert sizing.calculate_interval(span, 1568) == (1_800_000, "30m")
    assert sizing.calculate_interval(365 * 86_400_000, 517) == (43_200_000, "12h")
    assert sizing.calculate_interval(5, 1000) == (1, "1ms")
    assert sizing.calculate_interval(10 * 365 * 86_400_000, 10) == (31_536_000_000, "1y")
    assert sizing.calculate_interval(1000, 1000, low_limit_ms=60_000) == (60_000, "1m")
    assert sizing.interval_text(604_800_000) == "7d" and sizing.interval_text(500) == "500ms"


def test_targets_are_sent_as_the_simpod_plugin_sends_them():
    for panel in PANELS:
        body = request(panel)
        sent = body["targets"]
        assert [t["target"] for t in sent] == [t["target"] for t in panel["targets"]]
        assert [t["refId"] for t in sent] == [t["refId"] for t in panel["targets"]]
        expected = {"format": "table"} if panel["type"] == "table" else {}
        assert all(t["payload"] == expected for t in sent), panel["title"]
        assert body["panelId"] == panel["id"] and body["dashboardUID"] == DASHBOARD["uid"]
        scoped = body["scopedVars"]["__interval_ms"]["value"]
        assert scoped == body["intervalMs"]


def test_hidden_targets_and_targets_without_a_metric_are_not_sent():
    targets = [
        {"refId": "A", "target": "TH1_raw", "payload": '{"source": "raw"}'},
        {"refId": "B", "target": "TH2_raw", "payload": "", "hide": True},
        {"refId": "C", "payload": ""},
        {"refId": "D", "target": "W1_raw", "payload": "not json"},
    ]
    assert queries.sent_targets(targets) == [
        {"refId": "A", "target": "TH1_raw", "payload": {"source": "raw"}},
        {"refId": "D", "target": "W1_raw", "payload": {}},
    ]


def test_annotations_ask_for_as_many_points_as_the_window_is_wide():
    enabled = queries.annotation_queries(DASHBOARD)
    assert [a["name"] for a in enabled] == ["Late W1 readings"]  # invalid ones are off
    span = TimeRange.of(DASHBOARD)
    body = queries.annotation_request(DASHBOARD, enabled[0], span, SCREEN)
    assert body["maxDataPoints"] == SCREEN.window_px
    assert body["targets"] == [
        {"refId": "Anno", "target": "W1_late", "payload": {"format": "annotations"}}
    ]
    assert body["range"] == request(PANELS[0])["range"]
    assert body["scopedVars"]["__annotation"]["text"] == "Late W1 readings"
    assert (body["intervalMs"], body["interval"]) == sizing.calculate_interval(
        span.span_ms, SCREEN.window_px
    )


def test_time_range_spans_in_milliseconds():
    span = TimeRange.of(DASHBOARD)
    assert span.span_ms == 30 * 86_400_000
    assert span.end - span.start == timedelta(days=30)
    assert queries.parse_time("2024-01-05T10:00:00+02:00") == datetime(2024, 1, 5, 8)


def test_a_preview_without_an_api_says_how_to_start_one():
    with socket.socket() as probe:  # a port nothing listens on once it is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(DashboardError, match="labkit api --background"):
        preview.collect(f"http://127.0.0.1:{port}")
