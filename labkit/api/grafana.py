"""The JSON shapes Grafana's JSON datasources read: series, tables, annotations, editor lists.

A time series is ``{"target", "refId", "datapoints": [[value, ms], ...]}``; a table
``{"type": "table", "refId", "name", "columns": [{"text", "type"}], "rows"}``; the simPod
plugin turns either into a data frame (Grafana's ``toDataFrame``), keeping its ``meta``: a
notice there (``{"meta": {"notices": [{"severity", "text"}]}}``) is shown on the panel.
Annotations through ``/query`` are a table with the columns Grafana maps to an annotation's
fields (``time``, ``timeEnd``, ``title``, ``text``, ``tags``); SimpleJSON's ``/annotations``
answers a list of events instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from labkit.api.catalogue import CATALOGUE, Format, Metric, Source
from labkit.api.series import Point
from labkit.hbase.layout import TableKind

# The query editor's choice of a raw metric's source (simPod's payload select).
SOURCE_PAYLOAD = {
    "name": "source",
    "label": "Read",
    "type": "select",
    "placeholder": Source.AUTO,
    "options": [
        {"label": "Roll-ups where they fit (fast)", "value": Source.AUTO},
        {"label": "Every raw reading", "value": Source.RAW},
    ],
}


@dataclass(frozen=True)
class Event:
    """A late reading or an invalid message, as an annotation."""

    time: int
    title: str
    text: str
    tags: list[str]


class Severity(StrEnum):
    """How Grafana marks a notice on the panel."""

    INFO = "info"
    WARNING = "warning"


def with_notice(answer: dict, severity: Severity, text: str) -> dict:
    """The answer with a notice Grafana shows on its panel (the data frame's
    ``meta.notices``, which the plugin's ``toDataFrame`` keeps for series and tables)."""
    return {**answer, "meta": {"notices": [{"severity": severity, "text": text}]}}


def series(name: str, ref_id: str | None, points: Iterable[Point]) -> dict:
    return {"target": name, "refId": ref_id, "datapoints": [[value, ms] for ms, value in points]}


def column(name: str, kind: str) -> dict:
    """A table column; ``kind`` is Grafana's field type: time, number or string."""
    return {"text": name, "type": kind}


def table(name: str, ref_id: str | None, columns: list[dict], rows: list[list]) -> dict:
    return {"type": "table", "refId": ref_id, "name": name, "columns": columns, "rows": rows}


def series_table(name: str, ref_id: str | None, points: Iterable[Point]) -> dict:
    """A series as a table of two columns: time and the metric."""
    columns = [column("time", "time"), column(name, "number")]
    return table(name, ref_id, columns, [[ms, value] for ms, value in points])


def annotation_table(name: str, ref_id: str | None, events: Iterable[Event]) -> dict:
    """Events as the table Grafana reads annotations from."""
    columns = [column("time", "time"), column("timeEnd", "time"), column("title", "string"),
               column("text", "string"), column("tags", "string")]  # fmt: skip
    rows = [[e.time, e.time, e.title, e.text, ",".join(e.tags)] for e in events]
    return table(name, ref_id, columns, rows)


def simplejson_annotations(annotation: dict, events: Iterable[Event]) -> list[dict]:
    """Events as SimpleJSON's ``/annotations`` answers them, each with its annotation."""
    return [
        {"annotation": annotation, "time": event.time, "timeEnd": event.time,
         "title": event.title, "text": event.text, "tags": event.tags}
        for event in events
    ]  # fmt: skip


def format_options(formats: Iterable[Format]) -> list[dict]:
    return [{"label": chosen.label, "value": chosen} for chosen in formats]


def _payloads(metric: Metric) -> list[dict]:
    chooser = {
        "name": "format",
        "label": "Format",
        "type": "select",
        "placeholder": Format.TIMESERIES,
        "options": format_options(metric.formats),
    }
    return [chooser, *([SOURCE_PAYLOAD] if metric.kind is TableKind.RAW else [])]


def metric_list() -> list[dict]:
    """``/metrics``: every metric, with the payloads its query editor offers."""
    return [
        {"label": f"{metric.name}: {metric.label}", "value": metric.name,
         "payloads": _payloads(metric)}
        for metric in CATALOGUE.values()
    ]  # fmt: skip
