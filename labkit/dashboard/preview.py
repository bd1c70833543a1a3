"""A preview drawn from the dashboard's queries: every panel's request sent to the lab's API
as Grafana sends it, and the answers kept beside the requests.

This is not Grafana: no Grafana server can be installed without Docker from the registries the
lab uses, so the lab shows what the dashboard's own queries answer, drawn in the dashboard's
grid (``labkit.dashboard.draw``). Students with Docker open the real dashboard on the same
range (README, "Grafana") and compare.

    preview = collect(api_url)               # the provisioned dashboard, its own range
    preview.figure()                          # matplotlib Figure, shown inline in a notebook
    preview.save_png("build/dashboard.png")   # what `labkit dashboard --png FILE` writes
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from labkit import api
from labkit.dashboard import draw, queries, sizing
from labkit.dashboard.build import PROVISIONED


def _time(ms: float) -> datetime:
    return queries.EPOCH + pd.Timedelta(milliseconds=ms).to_pytimedelta()


@dataclass(frozen=True)
class Event:
    """An annotation on the time axes."""

    time: datetime
    title: str
    text: str
    color: str
    name: str  # the annotation query's name


@dataclass
class PanelData:
    """One panel: its JSON, the request Grafana would send, and the API's answer."""

    panel: dict
    request: dict
    answer: list[dict]

    @property
    def title(self) -> str:
        return str(self.panel.get("title", ""))

    @property
    def kind(self) -> str:
        return str(self.panel.get("type", ""))

    @property
    def unit(self) -> str:
        return str(self.panel.get("fieldConfig", {}).get("defaults", {}).get("unit", ""))

    def unit_of(self, field: str) -> str:
        """A field's unit: its override by name, else the panel's."""
        for override in self.panel.get("fieldConfig", {}).get("overrides", []):
            matcher = override.get("matcher", {})
            if matcher.get("id") == "byName" and matcher.get("options") == field:
                for prop in override.get("properties", []):
                    if prop.get("id") == "unit":
                        return str(prop["value"])
        return self.unit

    @property
    def max_data_points(self) -> int:
        return int(self.request["maxDataPoints"])

    def series(self) -> dict[str, pd.Series]:
        """Each time series of the answer, by its name: values indexed by time (UTC)."""
        found = {}
        for item in self.answer:
            if "datapoints" in item:
                points = item["datapoints"]
                index = pd.DatetimeIndex([_time(ms) for _, ms in points], name="time")
                found[item["target"]] = pd.Series([v for v, _ in points], index=index, dtype=float)
        return found

    def tables(self) -> list[pd.DataFrame]:
        """Each table of the answer, its time columns as datetimes."""
        frames = []
        for item in self.answer:
            if "rows" in item:
                columns = [column["text"] for column in item["columns"]]
                frame = pd.DataFrame(item["rows"], columns=columns)
                for column in item["columns"]:
                    if column.get("type") == "time":
                        frame[column["text"]] = pd.to_datetime(frame[column["text"]], unit="ms")
                frames.append(frame)
        return frames

    @property
    def has_data(self) -> bool:
        return any(item.get("datapoints") or item.get("rows") for item in self.answer)


@dataclass
class Preview:
    """The dashboard's panels with the API's answers to their requests."""

    dashboard: dict
    span: queries.TimeRange
    screen: sizing.Screen
    panels: list[PanelData]
    events: list[Event] = field(default_factory=list)
    annotation_requests: list[dict] = field(default_factory=list)

    @property
    def title(self) -> str:
        return str(self.dashboard.get("title", "dashboard"))

    def panel(self, title: str) -> PanelData:
        """The panel of that title."""
        for data in self.panels:
            if data.title == title:
                return data
        raise KeyError(f"No panel {title!r}; the panels are {[p.title for p in self.panels]}")

    def figure(self) -> Figure:
        """The preview drawn in the dashboard's grid."""
        return draw.dashboard_figure(self)

    def save_png(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.figure().savefig(path, dpi=100)
        return path


def _events(annotation: dict, answer: list[dict]) -> list[Event]:
    events = []
    for item in answer:
        columns = [column["text"] for column in item.get("columns", [])]
        for row in item.get("rows", []):
            values: dict[str, Any] = dict(zip(columns, row, strict=False))
            events.append(
                Event(_time(values["time"]), str(values.get("title", "")),
                      str(values.get("text", "")), str(annotation.get("iconColor", "red")),
                      str(annotation.get("name", "")))
            )  # fmt: skip
    return events


def collect(
    url: str,
    dashboard: dict | Path = PROVISIONED,
    start: str | None = None,
    end: str | None = None,
    screen: sizing.Screen | None = None,
    token: str | None = None,
) -> Preview:
    """Send every panel's and enabled annotation's request of ``dashboard`` to the API at
    ``url``, as Grafana would on ``screen``; ``start``/``end`` (ISO 8601) replace the
    dashboard's own range."""
    board = dashboard if isinstance(dashboard, dict) else queries.load(dashboard)
    screen = screen or sizing.Screen()
    span = queries.TimeRange.of(board, start, end)
    found = []
    for number, panel in enumerate(queries.panels(board), start=1):
        request = queries.panel_request(board, panel, span, screen, number)
        found.append(PanelData(panel, request, _ask(url, request, token)))
    events, sent = [], []
    for number, annotation in enumerate(queries.annotation_queries(board), start=1):
        request = queries.annotation_request(board, annotation, span, screen, number)
        sent.append(request)
        events += _events(annotation, _ask(url, request, token))
    return Preview(board, span, screen, found, sorted(events, key=lambda e: e.time), sent)


def _ask(url: str, request: dict, token: str | None) -> list[dict]:
    if not request["targets"]:
        return []  # Grafana sends nothing for a panel without targets
    try:
        if token:
            status, answer = api.request(url, "/query", request, token)
        else:
            status, answer = api.request(url, "/query", request)
    except OSError as error:
        raise queries.DashboardError(
            f"The API at {url} does not answer ({error}): start it with `labkit api "
            "--background`, or give the URL of yours"
        ) from None
    if status >= 400 or not isinstance(answer, list):
        message = answer.get("message") if isinstance(answer, dict) else answer
        raise queries.DashboardError(
            f"The API at {url} refused a panel's query ({status}): {message}"
        )
    return answer
