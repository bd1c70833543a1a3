"""What the load test's dashboards send: the provisioned dashboard's own queries, shaped as
Grafana sends them, which the API reads as the panels mean them."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from labkit import loadtest
from labkit.api import parse
from labkit.api.catalogue import Format
from labkit.api.parse import Selection

START, END = datetime(2024, 1, 1), datetime(2025, 1, 1)


def test_every_panel_and_enabled_annotation_of_the_dashboard_is_a_query():
    dashboard = json.loads(loadtest.DASHBOARD.read_text())
    panels = [p for p in dashboard["panels"] if p.get("targets")]
    enabled = [a for a in dashboard["annotations"]["list"] if a.get("enable") and "target" in a]
    queries = loadtest.dashboard_queries(START, END)
    assert [title for title, _ in queries] == [p["title"] for p in panels] + [
        a["name"] for a in enabled
    ]
    for (_, body), panel in zip(queries, panels, strict=False):
        assert [t["target"] for t in body["targets"]] == [t["target"] for t in panel["targets"]]
        assert body["maxDataPoints"] == round(1920 * panel["gridPos"]["w"] / 24)
        assert parse.window(body).start == START and parse.window(body).end == END
        formats = {s.format for s in parse.selections(body) if isinstance(s, Selection)}
        assert formats == ({Format.TABLE} if panel["type"] == "table" else {Format.TIMESERIES})
    for _, body in queries[len(panels) :]:
        assert body["requestId"].startswith("AQ") and body["targets"][0]["refId"] == "Anno"
        chosen = parse.selections(body)
        assert chosen and all(s.format is Format.ANNOTATIONS for s in chosen)


@pytest.mark.parametrize(
    "changes",
    [{"dashboards": 0}, {"dashboards": 101}, {"refresh_s": 0.1}, {"refresh_s": 60.0},
     {"duration_s": 3600.0}, {"days": 0}, {"days": 5000}],
)  # fmt: skip
def test_the_load_is_bounded(changes):
    with pytest.raises(loadtest.LoadTestError):
        loadtest.LoadConfig(**{"duration_s": 30.0, **changes}).check()
    loadtest.LoadConfig().check()  # the classroom's scenario is within bounds
