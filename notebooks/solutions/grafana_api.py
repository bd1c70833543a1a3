"""Notebook 05."""

from collections import defaultdict
from datetime import UTC, datetime, timedelta

import falcon
import pandas as pd

from labkit import api, hbase
from labkit.config import Settings
from labkit.dashboard.compare import PanelComparison
from labkit.hbase import layout

# --------------------------------------------------------------------------------------
# Exercises 1 and 2
# --------------------------------------------------------------------------------------


def bucket_average(stored: pd.Series, day: datetime) -> float:
    """The first of 8 buckets over a day spans its first 3 hours: the mean of their readings."""
    first = stored[day : day + timedelta(hours=3) - timedelta(milliseconds=1)]
    return float(first.mean())


def leak_body(start: datetime, end: datetime) -> dict:
    """One target, the leak, as a table, over the whole period."""
    return api.panel_request(["Wtot_AggDayRest"], start, end, payload={"format": "table"})


# --------------------------------------------------------------------------------------
# Build it: a Grafana API of one's own
# --------------------------------------------------------------------------------------

EPOCH = datetime(1970, 1, 1)
SERVED = [name for name, metric in api.CATALOGUE.items() if metric.kind in ("raw", "daily")]

Point = tuple[int, float]  # (epoch ms, value)


def instant(text: str) -> datetime:
    """Grafana's ISO 8601 time (``2024-01-01T00:00:00.000Z``) as a naive UTC datetime."""
    return datetime.fromisoformat(text).astimezone(UTC).replace(tzinfo=None)


def epoch_ms(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(milliseconds=1)


def read_points(settings: Settings, name: str, start: datetime, end: datetime) -> list[Point]:
    """The metric's values from ``start`` to ``end`` (both included): one range scan."""
    metric = api.CATALOGUE[name]
    bounds = layout.window_range(metric.kind, metric.key, start, end)
    if bounds is None:
        return []
    with hbase.connection(settings) as connection:
        table = connection.table(hbase.table_name(settings, metric.kind))
        rows = table.scan(row_start=bounds[0], row_stop=bounds[1])
        timed = [(layout.key_time(metric.kind, key), columns) for key, columns in rows]
    return [(epoch_ms(t), float(columns[hbase.Column.VALUE])) for t, columns in timed if t]


def downsample(points: list[Point], start_ms: int, end_ms: int, buckets: int) -> list[Point]:
    """At most ``buckets`` points: per bucket of equal width, the mean value at the mean time."""
    if len(points) <= buckets:
        return points
    grouped: dict[int, list[Point]] = defaultdict(list)
    for ms, value in points:
        grouped[(ms - start_ms) * buckets // (end_ms - start_ms + 1)].append((ms, value))
    return [
        (sum(ms for ms, _ in group) // len(group), sum(value for _, value in group) / len(group))
        for _, group in sorted(grouped.items())
    ]


class Health:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """GET /: any 200 tells Grafana the datasource works."""
        resp.media = {"status": "ok"}


class Metrics:
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """POST /metrics: the metrics the query editor offers."""
        resp.media = [{"label": name, "value": name} for name in SERVED]


class Query:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """POST /query: each target's points, at most maxDataPoints of them."""
        body = req.get_media()
        start, end = instant(body["range"]["from"]), instant(body["range"]["to"])
        answer = []
        for target in body["targets"]:
            points = read_points(self.settings, target["target"], start, end)
            points = downsample(points, epoch_ms(start), epoch_ms(end), body["maxDataPoints"])
            answer.append({"target": target["target"], "refId": target["refId"],
                           "datapoints": [[value, ms] for ms, value in points]})  # fmt: skip
        resp.media = answer


def my_api(settings: Settings) -> falcon.App:
    app = falcon.App()
    app.add_route("/", Health())
    app.add_route("/metrics", Metrics())
    app.add_route("/query", Query(settings))
    return app


# --------------------------------------------------------------------------------------
# Exercise 3: why a panel of the preview differs from HBase
# --------------------------------------------------------------------------------------


def panel_cause(compared: PanelComparison) -> str:
    """More readings than the panel's points are averaged per bucket; a bucket of an hour or
    more is read from the roll-ups."""
    request = compared.data.request
    points = request["maxDataPoints"]
    if max(len(series.computed) for series in compared.series) <= points:
        return "none"
    bucket = (instant(request["range"]["to"]) - instant(request["range"]["from"])) / points
    return "roll-ups" if bucket >= timedelta(hours=1) else "downsampling"
