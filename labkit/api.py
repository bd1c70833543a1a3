"""The serving layer: an HTTP API that serves the lab's HBase tables to Grafana.

It speaks the protocol of Grafana's two JSON datasource plugins:

* the maintained **simPod JSON datasource** (``simpod-json-datasource``): ``GET /`` (health),
  ``POST /metrics``, ``/metric-payload-options``, ``/query``, ``/variable``, ``/tag-keys``,
  ``/tag-values``; it sends annotation queries to ``/query`` too;
* the legacy **SimpleJSON** plugin (``grafana-simple-json-datasource``): ``GET /``,
  ``POST /search``, ``/query`` (targets of type ``timeserie`` or ``table``), ``/annotations``,
  ``/tag-keys``, ``/tag-values``.

Metrics, named as in the original dashboard and derived from the sensor catalogue:

==========================  ==========  ==========================================================
metric                      table       what
==========================  ==========  ==========================================================
``TH1_raw``                 raw         a sensor's on-time readings (every sensor)
``TH1_aggr``                daily       a sensor's daily AVG or SUM, stamped at the day's midnight
``Etot_DailyDiff``          daily       a meter's daily difference (also ``Wtot_DailyDiff``)
``Etot_AggDayRest``         daily       a meter's rest (``Wtot_AggDayRest``: the water leak)
``W1_late``                 late        late readings, at their event time (every sensor)
``invalid``                 invalid     invalid messages at their send time: counted per bucket
                                        (time series) or listed (table, annotations)
==========================  ==========  ==========================================================

A ``/query`` target asks for one of three formats: ``timeseries`` (the default), ``table`` or
``annotations`` (late and invalid metrics only). SimpleJSON says so with the target's ``type``
(``timeserie`` or ``table``); the simPod plugin, which dropped ``type``, with the target's
payload, e.g. ``{"format": "table"}``. A target may also name several metrics in the form a
multi-value Grafana variable takes, ``(TH1_raw|TH2_raw)`` or ``{TH1_raw,TH2_raw}``.

Every read is one HBase range scan of one metric's keys between the range's ends
(``range.from <= time <= range.to``, both included); no request reads a whole table. Only
metric names of the catalogue ever become part of a row key.

**Downsampling.** When a range holds more points than the panel's ``maxDataPoints``, the range
is cut into at most ``maxDataPoints`` buckets and each non-empty bucket becomes one point: the
average of its values, stamped at the average time of its readings. The first and last points
therefore never lie outside the readings' own time span, and a straight line stays on that
line. Buckets narrower than an hour have equal widths. Wider ones are a whole number of the
pipeline's roll-up periods (1 h, 6 h, 12 h or 1 d: the coarsest that fits in an equal bucket),
aligned to their own width; a raw metric's buckets are then read from the coarsest roll-ups
that tile them (``iot_rollup``: sum, count and summed time of each sensor's readings per
period) for the periods wholly inside the range, and from the raw readings only at the range's
edges and after the last period rolled up so far. The points are those the raw readings give
in the same buckets, from a few hundred rows instead of every reading of a year. A target's
payload ``{"source": "raw"}`` makes the API read every raw reading instead (to compare, or to
time it).

The ``invalid`` time series counts the messages in each of ``maxDataPoints`` equal buckets,
stamped at the bucket's start. A table of a raw or daily metric holds the same points as its series;
a table (or the annotations) of a late or invalid metric lists the first ``maxDataPoints``
events of the range, one row each. ``maxDataPoints`` is capped at 10,000.

Bad requests (malformed JSON, wrong types, unknown metrics, reversed ranges) are answered
with 400 and ``{"message": ...}``, bodies over 1 MiB with 413, a missing or wrong token with
401, an unreachable HBase with 503. With a token, every request must carry
``Authorization: Bearer <token>``; without one the server only binds to a loopback address.
"""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import json
import logging
import math
import queue
import re
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import falcon
import happybase
import waitress
from thriftpy2.thrift import TException
from waitress import wasyncore
from waitress.server import TcpWSGIServer

from labkit import hbase, sensors
from labkit.config import Settings, SettingsError

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024
MAX_DATA_POINTS = 10_000
# When a request names no maxDataPoints (Grafana always does; curl users may not).
DEFAULT_DATA_POINTS = 1_000
# Each metric of a request is one range scan: bound the work one request can ask for.
MAX_METRICS_PER_QUERY = 50
# Waitress's worker threads; the HBase connection pool keeps as many idle connections.
THREADS = 4
FORMATS = ("timeseries", "table", "annotations")
# Placeholder SimpleJSON sends for a target whose metric was never chosen.
PLACEHOLDER = "select metric"

EPOCH = datetime(1970, 1, 1)
SECOND = timedelta(seconds=1)
DAY = timedelta(days=1)
_NAME = r"[A-Za-z0-9_]+"
# A multi-value variable, as Grafana interpolates it: regex "(a|b)" or glob "{a,b}".
_MULTI = re.compile(rf"^(?:\(({_NAME}(?:\|{_NAME})*)\)|\{{({_NAME}(?:,{_NAME})*)\}})$")


# --------------------------------------------------------------------------------------
# The metric catalogue
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    """One series Grafana can ask for, and where it lives in HBase."""

    name: str  # as Grafana knows it: TH1_raw, TH1_aggr, Etot_DailyDiff, W1_late, invalid
    kind: str  # the table: raw, daily, late or invalid
    key: str  # the row-key prefix in that table: TH1, Etot_DailyDiff, input
    label: str  # a human description for the query editor
    unit: str

    @property
    def formats(self) -> tuple[str, ...]:
        return FORMATS if self.kind in ("late", "invalid") else FORMATS[:2]


def _daily_label(metric: str, aggregate: str) -> str:
    what = {"AVG": "daily average", "SUM": "daily sum", "DIFF": "daily difference"}
    if aggregate in what:
        return f"{metric} {what[aggregate]}"
    meter = metric.removesuffix("_AggDayRest")
    parts = " - ".join(sensors.SENSORS[meter].parts)
    return f"{meter} daily rest: difference - {parts}"


def build_catalogue() -> dict[str, Metric]:
    """Every metric the API serves, built from ``labkit.sensors``."""
    metrics: list[Metric] = []
    for sensor in sensors.CATALOGUE:
        metrics.append(
            Metric(f"{sensor.name}_raw", "raw", sensor.name,
                   f"{sensor.name} readings ({sensor.description})", sensor.unit)
        )  # fmt: skip
    for name, aggregate in sensors.daily_metrics().items():
        if aggregate in ("AVG", "SUM"):
            metric, unit = f"{name}_aggr", sensors.SENSORS[name].unit
        else:  # a meter's DIFF or REST keeps its name, as in the original dashboard
            metric, unit = name, sensors.SENSORS[name.split("_", 1)[0]].unit
        metrics.append(Metric(metric, "daily", name, _daily_label(name, aggregate), unit))
    for sensor in sensors.CATALOGUE:
        metrics.append(
            Metric(f"{sensor.name}_late", "late", sensor.name,
                   f"{sensor.name} late readings, at their event time", sensor.unit)
        )  # fmt: skip
    metrics.append(Metric("invalid", "invalid", "input", "invalid input messages", "messages"))
    return {metric.name: metric for metric in metrics}


CATALOGUE: dict[str, Metric] = build_catalogue()


def metric_names() -> list[str]:
    return list(CATALOGUE)


# --------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------


class ApiError(falcon.HTTPError):
    """An error answered as JSON: ``{"message": ..., **extra}``."""

    def __init__(self, status: str, message: str, **extra: Any) -> None:
        super().__init__(status, title=status, description=message)
        self.extra = extra


def bad_request(message: str, **extra: Any) -> ApiError:
    return ApiError(falcon.HTTP_400, message, **extra)


def unknown_metric(name: str) -> ApiError:
    valid = metric_names()
    return bad_request(
        f"Unknown metric {name[:100]!r}. The metrics are: {', '.join(valid)}", metrics=valid
    )


def _serialize_error(req: falcon.Request, resp: falcon.Response, error: falcon.HTTPError) -> None:
    resp.content_type = falcon.MEDIA_JSON
    resp.media = {
        "message": error.description or error.title,
        "status": error.status_code,
        **getattr(error, "extra", {}),
    }


def _detail(error: Exception) -> str:
    """The first line of an HBase error (a Thrift IOError carries a Java stack trace)."""
    detail = getattr(error, "message", None) or str(error)
    if isinstance(detail, bytes):
        detail = detail.decode("utf-8", errors="replace")
    lines = str(detail).strip().splitlines()
    return lines[0][:300] if lines else type(error).__name__


def _hbase_failed(
    req: falcon.Request, resp: falcon.Response, error: Exception, params: dict
) -> None:
    log.warning("HBase request failed: %r", error)
    raise ApiError(falcon.HTTP_503, f"HBase could not answer: {_detail(error)}")


# --------------------------------------------------------------------------------------
# Reading requests
# --------------------------------------------------------------------------------------


def _read_json(req: falcon.Request) -> Any:
    """The request's JSON body (``{}`` when empty), at most MAX_BODY_BYTES long."""
    if req.content_length is not None and req.content_length > MAX_BODY_BYTES:
        raise _too_large()
    # Read one byte more than allowed: a chunked body has no length to check beforehand.
    raw = req.bounded_stream.read(MAX_BODY_BYTES + 1)
    if len(raw) > MAX_BODY_BYTES:
        raise _too_large()
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as error:  # RecursionError: absurdly nested JSON
        raise bad_request(f"The body is not valid JSON: {str(error)[:200]}") from None


def _too_large() -> ApiError:
    return ApiError(falcon.HTTP_413, f"The body is larger than {MAX_BODY_BYTES} bytes")


def _object(value: Any, what: str) -> dict:
    if not isinstance(value, dict):
        raise bad_request(f"{what} must be a JSON object")
    return value


def _optional_str(body: dict, key: str, what: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise bad_request(f"{what}.{key} must be a string")
    return value


def _payload(target: dict) -> dict:
    """A target's payload (simPod >= 0.3) or data (simPod <= 0.2), as an object."""
    key = "payload" if "payload" in target else "data"
    value = target.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        return {}
    if isinstance(value, str):  # a code-mode payload, sent as the text the user typed
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            raise bad_request(f"target.{key} is not valid JSON") from None
    return _object(value, f"target.{key}")


@dataclass(frozen=True)
class Window:
    """A query's time range, as naive UTC datetimes; both ends included."""

    start: datetime
    end: datetime

    @property
    def start_ms(self) -> int:
        return to_ms(self.start)

    @property
    def end_ms(self) -> int:
        return to_ms(self.end)


def to_ms(moment: datetime) -> int:
    """Epoch milliseconds of a naive UTC datetime."""
    return (moment - EPOCH) // timedelta(milliseconds=1)


def from_ms(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


def _instant(value: Any, what: str) -> datetime:
    if not isinstance(value, str):
        raise bad_request(f"{what} must be an ISO 8601 time such as 2024-01-05T10:15:00.000Z")
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise bad_request(f"{what}={value[:100]!r} is not an ISO 8601 time") from None
    if moment.tzinfo is not None:
        try:
            moment = moment.astimezone(UTC).replace(tzinfo=None)
        except OverflowError:
            raise bad_request(f"{what}={value[:100]!r} is out of range") from None
    return moment


def _window(body: dict) -> Window:
    span = _object(body.get("range"), "range")
    window = Window(_instant(span.get("from"), "range.from"), _instant(span.get("to"), "range.to"))
    if window.start > window.end:
        raise bad_request("range.from is later than range.to")
    return window


def _max_points(body: dict) -> int:
    """``maxDataPoints``, capped at MAX_DATA_POINTS."""
    value = body.get("maxDataPoints", DEFAULT_DATA_POINTS)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise bad_request("maxDataPoints must be a positive integer")
    return min(value, MAX_DATA_POINTS)


def resolve(text: str) -> list[Metric]:
    """The metrics a target names: one name, or several as ``(a|b)`` or ``{a,b}``."""
    text = text.strip()
    multi = _MULTI.match(text)
    names = (multi.group(1) or "").split("|") + (multi.group(2) or "").split(",") if multi else []
    metrics = []
    for name in [name for name in names if name] or [text]:
        if name not in CATALOGUE:
            raise unknown_metric(name)
        metrics.append(CATALOGUE[name])
    return metrics


def matching(text: str | None) -> list[str]:
    """Metric names containing ``text`` (any case); all of them for no text or ``*``."""
    text = (text or "").strip().lower()
    if text in ("", "*"):
        return metric_names()
    return [name for name in CATALOGUE if text in name.lower()]


SOURCES = ("auto", "raw")
SOURCE_PAYLOAD = {
    "name": "source",
    "label": "Read",
    "type": "select",
    "placeholder": "auto",
    "options": [
        {"label": "Roll-ups where they fit (fast)", "value": "auto"},
        {"label": "Every raw reading", "value": "raw"},
    ],
}


def _source(target: dict) -> str:
    chosen = _payload(target).get("source", "auto")
    if chosen not in SOURCES:
        raise bad_request(f"payload.source must be one of {', '.join(SOURCES)}")
    return chosen


def _format(target: dict) -> str:
    legacy = target.get("type")  # SimpleJSON: timeserie|table; simPod <= 0.2: timeseries|table
    if legacy is not None and legacy not in ("timeserie", "timeseries", "table"):
        raise bad_request("target.type must be 'timeserie' or 'table'")
    chosen = _payload(target).get("format", legacy or "timeseries")
    if chosen == "timeserie":
        chosen = "timeseries"
    if chosen not in FORMATS:
        raise bad_request(f"payload.format must be one of {', '.join(FORMATS)}")
    return chosen


@dataclass(frozen=True)
class Selection:
    """One metric of a query, in one format, answered under the target's refId."""

    metric: Metric
    format: str
    ref_id: str | None
    source: str = "auto"  # "raw": downsample every reading, never the roll-ups


def _selections(body: dict) -> list[Selection]:
    targets = body.get("targets")
    if not isinstance(targets, list):
        raise bad_request("targets must be a list")
    selections = []
    for target in targets:
        target = _object(target, "each target")
        name = _optional_str(target, "target", "target")
        if target.get("hide") is True or name is None or name.strip() in ("", PLACEHOLDER):
            continue
        ref_id = _optional_str(target, "refId", "target")
        chosen, source = _format(target), _source(target)
        for metric in resolve(name):
            if chosen not in metric.formats:
                raise bad_request(
                    f"{metric.name} has no {chosen}: only late and invalid metrics have them"
                )
            selections.append(Selection(metric, chosen, ref_id, source))
    if len(selections) > MAX_METRICS_PER_QUERY:
        raise bad_request(f"A query may ask for at most {MAX_METRICS_PER_QUERY} metrics")
    return selections


# --------------------------------------------------------------------------------------
# HBase: pooled connections, range scans
# --------------------------------------------------------------------------------------


class ConnectionPool:
    """A few open Thrift connections, reused across requests; a failed one is dropped."""

    def __init__(self, settings: Settings, size: int = THREADS) -> None:
        self.settings = settings
        self._idle: queue.LifoQueue[happybase.Connection] = queue.LifoQueue(maxsize=size)

    @contextlib.contextmanager
    def connection(self) -> Iterator[happybase.Connection]:
        try:
            connection = self._idle.get_nowait()
        except queue.Empty:
            connection = hbase.connect(self.settings, timeout_ms=10_000)
        try:
            yield connection
        except BaseException:
            connection.close()  # it may be broken; the next request opens a fresh one
            raise
        try:
            self._idle.put_nowait(connection)
        except queue.Full:
            connection.close()

    def close(self) -> None:
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return


def _step(moment: datetime, delta: timedelta) -> datetime | None:
    try:
        return moment + delta
    except OverflowError:
        return None


def key_range(metric: Metric, window: Window) -> tuple[bytes, bytes] | None:
    """The row keys of ``metric`` whose time lies in the window, as a range scan's
    ``[row_start, row_stop)``; None when no key can."""
    resolution = DAY if metric.kind == "daily" else SECOND
    first: datetime | None = datetime.min + (window.start - datetime.min) // resolution * resolution
    if (
        first is not None and first < window.start
    ):  # key times are whole seconds (days): round the start up
        first = _step(first, resolution)
    after = _step(datetime.min + (window.end - datetime.min) // resolution * resolution, resolution)
    # No whole second (day) in the window; HBase would read row_start == row_stop as a get.
    if first is None or (after is not None and first >= after):
        return None

    def text(moment: datetime) -> str:
        if resolution == DAY:
            return moment.date().isoformat()
        return moment.isoformat(sep=" ", timespec="seconds")

    prefix = f"{metric.key}{hbase.SEPARATOR}"
    # The character after the separator ends the metric's key range (as in labkit.hbase.scan).
    stop = prefix + text(after) if after else metric.key + chr(ord(hbase.SEPARATOR) + 1)
    return (prefix + text(first)).encode(), stop.encode()


def _key_time(key: bytes, field: int = 1) -> datetime | None:
    """The time in a row key (``metric#time[#origin]``, ``sensor#resolution#time``); None for
    a key of another shape."""
    try:
        return datetime.fromisoformat(key.decode().split(hbase.SEPARATOR)[field])
    except (ValueError, IndexError, UnicodeDecodeError):
        return None


def _number(raw: bytes | None) -> float | None:
    try:
        value = float(raw) if raw is not None else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None


def _text(raw: bytes | None) -> str:
    return raw.decode("utf-8", errors="replace") if raw is not None else ""


def _time_ms(raw: bytes | None) -> int | None:
    try:
        return to_ms(datetime.fromisoformat(_text(raw)))
    except ValueError:
        return None


class Store:
    """Range scans of the lab's tables through a connection pool."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pool = ConnectionPool(settings)

    def rows(
        self,
        metric: Metric,
        window: Window,
        columns: list[bytes] | None = None,
        limit: int | None = None,
    ) -> list[tuple[int, dict[bytes, bytes]]]:
        """(epoch ms, columns) of the metric's rows in the window, in time order."""
        bounds = key_range(metric, window)
        if bounds is None:
            return []
        with self.pool.connection() as connection:
            table = connection.table(hbase.table_name(self.settings, metric.kind))
            try:
                scanned = list(
                    table.scan(row_start=bounds[0], row_stop=bounds[1], columns=columns,
                               limit=limit, batch_size=5000)
                )  # fmt: skip
            except TException as error:
                if "TableNotFoundException" in _detail(error):
                    return []  # before the pipeline's first run: no data yet
                raise
        rows = []
        for key, data in scanned:
            moment = _key_time(key)
            if moment is not None:
                rows.append((to_ms(moment), data))
        return rows

    def rollups(
        self, metric: Metric, resolution: str, first: datetime, last: datetime
    ) -> list[PeriodSum]:
        """The roll-ups of a raw metric's periods that start from ``first`` to ``last``."""
        period = sensors.ROLLUP_PERIODS[resolution]
        prefix = f"{metric.key}{hbase.SEPARATOR}{resolution}{hbase.SEPARATOR}"
        start, stop = (f"{prefix}{moment:{sensors.TIMESTAMP_FORMAT}}".encode()
                       for moment in (first, last + period))  # fmt: skip
        with self.pool.connection() as connection:
            table = connection.table(hbase.table_name(self.settings, "rollup"))
            try:
                scanned = list(table.scan(row_start=start, row_stop=stop, batch_size=5000))
            except TException as error:
                if "TableNotFoundException" in _detail(error):
                    return []  # tables of a lab from before the roll-ups
                raise
        sums = []
        for key, data in scanned:
            moment = _key_time(key, field=2)
            total, count = _number(data.get(b"d:sum")), _number(data.get(b"d:count"))
            offsets = _number(data.get(b"d:offset_sum"))
            if moment is not None and total is not None and count and offsets is not None:
                start_ms, readings = to_ms(moment), int(count)
                time_total = readings * start_ms + int(offsets) * 1000
                sums.append(PeriodSum(start_ms, readings, total, time_total))
        return sums

    def points(self, metric: Metric, window: Window) -> list[tuple[int, float]]:
        points = []
        for ms, data in self.rows(metric, window, columns=[b"d:value"]):
            value = _number(data.get(b"d:value"))
            if value is not None:
                points.append((ms, value))
        return points


# --------------------------------------------------------------------------------------
# Answers
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PeriodSum:
    """Readings summed over a period (a roll-up, or one reading): their count, the sum of
    their values and the sum of their times (epoch ms)."""

    start_ms: int
    count: int
    total: float
    time_total: int


@dataclass(frozen=True)
class Buckets:
    """How a range is cut for downsampling: into ``count`` equal buckets, or, when a bucket
    spans at least the shortest roll-up period, into buckets of ``width_ms`` (a whole number
    of the ``rollup`` periods) aligned to their width, so that each period of those roll-ups
    lies in one bucket."""

    start_ms: int
    end_ms: int
    count: int
    rollup: str | None = None
    width_ms: int = 0
    origin_ms: int = 0

    def index(self, ms: int) -> int:
        if self.rollup is not None:
            return (ms - self.origin_ms) // self.width_ms
        return (ms - self.start_ms) * self.count // (self.end_ms - self.start_ms + 1)


def _period_ms(resolution: str) -> int:
    return sensors.ROLLUP_PERIODS[resolution] // timedelta(milliseconds=1)


def buckets_for(window: Window, max_points: int) -> Buckets:
    """At most ``max_points`` buckets over the window (see the module doc): a whole number of
    the coarsest roll-up period that fits in an equal bucket, aligned to their own width, and
    read from the coarsest roll-ups that tile them."""
    start, end = window.start_ms, window.end_ms
    span = end - start + 1
    periods = sorted(sensors.ROLLUP_PERIODS, key=_period_ms, reverse=True)
    fitting = next((p for p in periods if _period_ms(p) * max_points <= span), None)
    if fitting is None:
        return Buckets(start, end, max_points)
    period = _period_ms(fitting)
    width = period * -(-span // (period * max_points))
    while (end - (start - start % width)) // width + 1 > max_points:
        width += period
    read = next(p for p in periods if width % _period_ms(p) == 0)
    return Buckets(start, end, max_points, read, width, start - start % width)


def downsample(sums: list[PeriodSum], buckets: Buckets) -> list[tuple[int, float]]:
    """One point per non-empty bucket: the mean value of its readings at their mean time."""
    merged: dict[int, list[float]] = {}
    for part in sums:
        bucket = merged.setdefault(buckets.index(part.start_ms), [0, 0.0, 0])
        bucket[0] += part.time_total
        bucket[1] += part.total
        bucket[2] += part.count
    return [(int(t // n), v / n) for t, v, n in (merged[i] for i in sorted(merged))]


def _as_sums(points: list[tuple[int, float]]) -> list[PeriodSum]:
    return [PeriodSum(ms, 1, value, ms) for ms, value in points]


def count_per_bucket(
    times: list[int], start_ms: int, end_ms: int, buckets: int
) -> list[tuple[int, float]]:
    """How many of ``times`` fall in each of ``buckets`` equal buckets; (bucket start, count)."""
    span = end_ms - start_ms + 1
    counts: dict[int, int] = {}
    for ms in times:
        index = (ms - start_ms) * buckets // span
        counts[index] = counts.get(index, 0) + 1
    return [(start_ms + index * span // buckets, counts[index]) for index in sorted(counts)]


def _time_column(name: str = "time") -> dict:
    return {"text": name, "type": "time"}


def _table(selection: Selection, columns: list[dict], rows: list[list]) -> dict:
    return {
        "type": "table",
        "refId": selection.ref_id,
        "name": selection.metric.name,
        "columns": columns,
        "rows": rows,
    }


@dataclass(frozen=True)
class Event:
    """A late reading or an invalid message, as an annotation."""

    time: int
    title: str
    text: str
    tags: list[str]


def _late_event(metric: Metric, ms: int, data: dict[bytes, bytes]) -> Event:
    value = _text(data.get(b"d:value"))
    text = f"{metric.key} = {value} {metric.unit}, sent at {_text(data.get(b'd:sent_at'))}"
    delay = _number(data.get(b"d:delay_s"))
    if delay is not None:
        text += f", {timedelta(seconds=int(delay))} after it was measured"
    behind = _number(data.get(b"d:behind_watermark_s"))
    if behind is not None:
        text += f" ({behind:g} s behind the watermark)"
    return Event(ms, f"late {metric.key} reading", text, ["late", metric.key])


def _invalid_event(ms: int, data: dict[bytes, bytes]) -> Event:
    reason = _text(data.get(b"d:reason"))
    return Event(ms, f"invalid message: {reason}", _text(data.get(b"d:message"))[:300], ["invalid"])


class Answers:
    """Builds the JSON answers of /query and /annotations from HBase rows."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def events(self, metric: Metric, window: Window, limit: int) -> list[Event]:
        rows = self.store.rows(metric, window, limit=limit)
        if metric.kind == "late":
            return [_late_event(metric, ms, data) for ms, data in rows]
        return [_invalid_event(ms, data) for ms, data in rows]

    def answer(self, selection: Selection, window: Window, max_points: int) -> dict:
        metric = selection.metric
        if selection.format == "annotations":
            events = self.events(metric, window, max_points)
            return _table(
                selection,
                [_time_column(), _time_column("timeEnd"), {"text": "title", "type": "string"},
                 {"text": "text", "type": "string"}, {"text": "tags", "type": "string"}],
                [[e.time, e.time, e.title, e.text, ",".join(e.tags)] for e in events],
            )  # fmt: skip
        if selection.format == "table" and metric.kind in ("late", "invalid"):
            return self._event_table(selection, window, max_points)
        if metric.kind == "invalid":
            times = [ms for ms, _ in self.store.rows(metric, window, columns=[b"d:reason"])]
            series = count_per_bucket(times, window.start_ms, window.end_ms, max_points)
        else:
            series = self.series(metric, window, max_points, selection.source)
        if selection.format == "table":
            columns = [_time_column(), {"text": metric.name, "type": "number"}]
            return _table(selection, columns, [[ms, value] for ms, value in series])
        return {
            "target": metric.name,
            "refId": selection.ref_id,
            "datapoints": [[value, ms] for ms, value in series],
        }

    def series(
        self, metric: Metric, window: Window, max_points: int, source: str = "auto"
    ) -> list[tuple[int, float]]:
        """The metric's points in the window, downsampled to at most ``max_points``."""
        buckets = buckets_for(window, max_points)
        sums = None
        if buckets.rollup is not None and metric.kind == "raw" and source == "auto":
            sums = self._rolled_up(metric, window, buckets.rollup)
        if sums is None or sum(part.count for part in sums) <= max_points:
            points = self.store.points(metric, window)
            if len(points) <= max_points:
                return points
            sums = _as_sums(points)
        return downsample(sums, buckets)

    def _rolled_up(self, metric: Metric, window: Window, resolution: str) -> list[PeriodSum] | None:
        """The window's readings as the roll-ups of the periods that lie wholly inside it, plus
        the raw readings before and after the rolled-up periods (the window's edges, periods
        not rolled up yet); None when there are no roll-ups to use."""
        period = _period_ms(resolution)
        first = -(-window.start_ms // period) * period
        last = (window.end_ms + 1) // period * period - period
        if first > last:
            return None
        rolled = self.store.rollups(metric, resolution, from_ms(first), from_ms(last))
        if not rolled:
            return None
        covered_from, covered_to = rolled[0].start_ms, rolled[-1].start_ms + period
        edges = []
        if covered_from > window.start_ms:
            edges += self.store.points(metric, Window(window.start, from_ms(covered_from - 1)))
        if covered_to <= window.end_ms:
            edges += self.store.points(metric, Window(from_ms(covered_to), window.end))
        return rolled + _as_sums(edges)

    def _event_table(self, selection: Selection, window: Window, limit: int) -> dict:
        rows = self.store.rows(selection.metric, window, limit=limit)
        if selection.metric.kind == "late":
            columns = [_time_column(), {"text": "value", "type": "number"},
                       _time_column("sent_at"), _time_column("watermark"),
                       {"text": "behind_watermark_s", "type": "number"},
                       {"text": "delay_s", "type": "number"}]  # fmt: skip
            table: list[list[object]] = [
                [ms, _number(d.get(b"d:value")), _time_ms(d.get(b"d:sent_at")),
                 _time_ms(d.get(b"d:watermark")), _number(d.get(b"d:behind_watermark_s")),
                 _number(d.get(b"d:delay_s"))]
                for ms, d in rows
            ]  # fmt: skip
        else:
            columns = [_time_column(), {"text": "reason", "type": "string"},
                       {"text": "message", "type": "string"},
                       {"text": "chars", "type": "number"}]  # fmt: skip
            table = [
                [ms, _text(d.get(b"d:reason")), _text(d.get(b"d:message")),
                 _number(d.get(b"d:chars"))]
                for ms, d in rows
            ]  # fmt: skip
        return _table(selection, columns, table)


# --------------------------------------------------------------------------------------
# The HTTP resources
# --------------------------------------------------------------------------------------


def _format_options(metric: Metric | None) -> list[dict]:
    labels = {"timeseries": "Time series", "table": "Table", "annotations": "Annotations"}
    formats = metric.formats if metric else FORMATS
    return [{"label": labels[name], "value": name} for name in formats]


class Health:
    """``GET /``: any 200 tells Grafana the datasource works."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"status": "ok", "service": "labkit.api", "metrics": len(CATALOGUE)}

    def on_head(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.status = falcon.HTTP_200


class Search:
    """``POST /search`` (SimpleJSON, simPod <= 0.5): metric names containing ``target``."""

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = _object(_read_json(req), "The body")
        resp.media = matching(_optional_str(body, "target", "body"))


class Metrics:
    """``POST /metrics`` (simPod 0.6): every metric, with its ``format`` payload."""

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = _object(_read_json(req), "The body")
        _optional_str(body, "metric", "body")
        if body.get("payload") is not None:
            _object(body["payload"], "payload")
        resp.media = [
            {
                "label": f"{metric.name}: {metric.label}",
                "value": metric.name,
                "payloads": [
                    {
                        "name": "format",
                        "label": "Format",
                        "type": "select",
                        "placeholder": "timeseries",
                        "options": _format_options(metric),
                    },
                    *([SOURCE_PAYLOAD] if metric.kind == "raw" else []),
                ],
            }
            for metric in CATALOGUE.values()
        ]


class PayloadOptions:
    """``POST /metric-payload-options``: the choices of one payload field of a metric."""

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = _object(_read_json(req), "The body")
        name = _optional_str(body, "name", "body")
        metric_name = _optional_str(body, "metric", "body")
        metric = resolve(metric_name)[0] if metric_name else None
        if name == "format":
            resp.media = _format_options(metric)
        elif name == "source" and (metric is None or metric.kind == "raw"):
            resp.media = SOURCE_PAYLOAD["options"]
        else:
            resp.media = []


class Variable:
    """``POST /variable`` (simPod >= 0.4): metric names for a query-type variable."""

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = _object(_read_json(req), "The body")
        payload = body.get("payload") or {}
        if isinstance(payload, str):  # a string query, not wrapped by the plugin
            payload = {"target": payload}
        target = _optional_str(_object(payload, "payload"), "target", "payload")
        resp.media = [{"__text": name, "__value": name} for name in matching(target)]


class Tags:
    """``POST /tag-keys`` and ``/tag-values``: the API offers no ad hoc filters."""

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        _object(_read_json(req), "The body")
        resp.media = []


class Query:
    """``POST /query``: series, tables and (simPod) annotations for the request's targets."""

    def __init__(self, answers: Answers) -> None:
        self.answers = answers

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = _object(_read_json(req), "The body")
        window = _window(body)
        max_points = _max_points(body)
        selections = _selections(body)
        resp.media = [self.answers.answer(s, window, max_points) for s in selections]


class Annotations:
    """``POST /annotations`` (SimpleJSON): late readings or invalid messages as annotations.

    ``annotation.query`` names the metric(s): ``W1_late``, ``invalid``, ``{TH1_late,W1_late}``.
    """

    def __init__(self, answers: Answers) -> None:
        self.answers = answers

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = _object(_read_json(req), "The body")
        window = _window(body)
        annotation = _object(body.get("annotation"), "annotation")
        query = _optional_str(annotation, "query", "annotation")
        if not query:
            raise bad_request("annotation.query must name a late metric or invalid")
        metrics = resolve(query)
        for metric in metrics:
            if "annotations" not in metric.formats:
                raise bad_request(f"{metric.name} has no annotations: use a late metric or invalid")
        resp.media = [
            {"annotation": annotation, "time": event.time, "timeEnd": event.time,
             "title": event.title, "text": event.text, "tags": event.tags}
            for metric in metrics
            for event in self.answers.events(metric, window, MAX_DATA_POINTS)
        ]  # fmt: skip


class BearerToken:
    """Middleware: with a token, every request needs ``Authorization: Bearer <token>``."""

    def __init__(self, token: str) -> None:
        self.expected = f"Bearer {token}".encode()

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        given = (req.get_header("Authorization") or "").encode()
        if not hmac.compare_digest(given, self.expected):
            raise falcon.HTTPUnauthorized(
                title="401 Unauthorized",
                description="This API needs the header 'Authorization: Bearer <token>'",
                challenges=["Bearer"],
            )


def _build(settings: Settings, token: str | None) -> tuple[falcon.App, Store]:
    if token is not None and not token.strip():
        raise SettingsError("The API token must not be empty")
    store = Store(settings)
    answers = Answers(store)
    app = falcon.App(middleware=[BearerToken(token)] if token else [])
    app.req_options.strip_url_path_trailing_slash = True
    app.set_error_serializer(_serialize_error)
    app.add_error_handler(TException, _hbase_failed)
    app.add_error_handler(hbase.TRANSIENT, _hbase_failed)
    app.add_route("/", Health())
    app.add_route("/search", Search())
    app.add_route("/metrics", Metrics())
    app.add_route("/metric-payload-options", PayloadOptions())
    app.add_route("/variable", Variable())
    app.add_route("/tag-keys", Tags())
    app.add_route("/tag-values", Tags())
    app.add_route("/query", Query(answers))
    app.add_route("/annotations", Annotations(answers))
    return app, store


def make_app(settings: Settings, token: str | None = None) -> falcon.App:
    """The WSGI application; with a ``token``, requests need ``Authorization: Bearer <token>``."""
    return _build(settings, token)[0]


# --------------------------------------------------------------------------------------
# Serving: waitress, in the foreground or in a background thread
# --------------------------------------------------------------------------------------


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_bind(host: str, token: str | None) -> None:
    if not token and not is_loopback(host):
        raise SettingsError(
            f"The API would listen on {host}, beyond this machine, without a token: "
            "set LABKIT_API_TOKEN, or bind it to 127.0.0.1 (LABKIT_API_HOST; LABKIT_BIND_HOST "
            "moves every server)"
        )


def _listen_address(host: str, port: int) -> str:
    """One address to listen on: waitress opens a socket per address a name resolves to."""
    if host == "localhost":
        return "127.0.0.1"
    *_, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    return str(address[0])


def _server(settings: Settings, token: str | None, port: int) -> tuple[TcpWSGIServer, Store]:
    _check_bind(settings.api_host, token)
    app, store = _build(settings, token)
    server = waitress.create_server(
        app,
        host=_listen_address(settings.api_host, port),
        port=port,
        threads=THREADS,
        # The app answers oversize bodies with a JSON 413; waitress's own limit is a backstop.
        max_request_body_size=2 * MAX_BODY_BYTES,
        ident="labkit-api",
    )
    return server, store


def _url(server: TcpWSGIServer) -> str:
    host, port = server.effective_host, server.effective_port
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"


def serve(settings: Settings, token: str | None = None) -> None:
    """Serve the API on ``settings.api_host:settings.api_port`` until interrupted (Ctrl-C)."""
    server, store = _server(settings, token, settings.api_port)
    print(f"labkit API on {_url(server)} ({len(CATALOGUE)} metrics); Ctrl-C stops it.")
    try:
        server.run()  # returns on Ctrl-C
    finally:
        wasyncore.close_all(server._map)
        server.task_dispatcher.shutdown()
        store.pool.close()


@dataclass
class RunningApi:
    """An API served from a background thread (notebooks, tests): ``.url``, ``.stop()``."""

    url: str
    server: TcpWSGIServer
    store: Store
    thread: threading.Thread
    stopping: threading.Event

    def stop(self) -> None:
        """Stop serving and wait for the thread; idempotent."""
        self.stopping.set()
        self.thread.join(10)
        self.server.task_dispatcher.shutdown()
        self.store.pool.close()

    def __enter__(self) -> RunningApi:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _serve_until(server: TcpWSGIServer, stopping: threading.Event) -> None:
    # waitress's own loop, a poll at a time: only this thread touches the server's sockets
    # (closing them from another thread races with waitress waking its loop).
    while not stopping.is_set():
        wasyncore.loop(timeout=0.2, map=server._map, count=1)
    wasyncore.close_all(server._map)


def start_in_thread(
    settings: Settings, token: str | None = None, port: int | None = None
) -> RunningApi:
    """Serve the API from a daemon thread; ``port=0`` picks a free port (see ``.url``)."""
    server, store = _server(settings, token, settings.api_port if port is None else port)
    stopping = threading.Event()
    thread = threading.Thread(
        target=_serve_until, args=(server, stopping), name="labkit-api", daemon=True
    )
    thread.start()
    return RunningApi(_url(server), server, store, thread, stopping)


# --------------------------------------------------------------------------------------
# For notebooks: a sandbox of topics and tables, Grafana's request, the API's answer
# --------------------------------------------------------------------------------------


def iso(moment: datetime) -> str:
    """A naive UTC datetime as Grafana writes times: ``2024-01-05T10:15:00.000Z``."""
    return moment.isoformat(timespec="milliseconds") + "Z"


def panel_request(
    metrics: list[str],
    start: datetime,
    end: datetime,
    max_data_points: int = 1000,
    payload: dict | None = None,
) -> dict:
    """The body of the ``/query`` request a Grafana panel with these metrics sends through
    the simPod plugin (0.6), one target per metric, with the fields Grafana adds."""
    interval_ms = max(1, (to_ms(end) - to_ms(start)) // max_data_points)
    interval = f"{interval_ms // 1000}s" if interval_ms >= 1000 else f"{interval_ms}ms"
    span = {"from": iso(start), "to": iso(end)}
    return {
        "app": "dashboard",
        "requestId": "Q100",
        "timezone": "utc",
        "panelId": 1,
        "dashboardUID": "iotlab-overview",
        "range": {**span, "raw": dict(span)},
        "rangeRaw": dict(span),
        "interval": interval,
        "intervalMs": interval_ms,
        "maxDataPoints": max_data_points,
        "startTime": to_ms(datetime.now(UTC).replace(tzinfo=None)),
        "scopedVars": {
            "__interval": {"text": interval, "value": interval},
            "__interval_ms": {"text": str(interval_ms), "value": interval_ms},
        },
        "targets": [
            {
                "refId": chr(ord("A") + index),
                "target": metric,
                "payload": dict(payload or {}),
                "editorMode": "code",
                "datasource": {"type": "simpod-json-datasource", "uid": "iotlab-api"},
                "hide": False,
            }
            for index, metric in enumerate(metrics)
        ],
        "filters": [],
        "adhocFilters": [],
    }


class ApiCallError(Exception):
    """The API answered with an error status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


def request(
    url: str, path: str = "/", body: object = None, token: str | None = None
) -> tuple[int, Any]:
    """(status, JSON answer) of ``POST url+path`` with ``body`` (``GET`` when body is None)."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    outgoing = urllib.request.Request(url.rstrip("/") + path, data=data, headers=headers)
    try:
        with urllib.request.urlopen(outgoing, timeout=60) as response:
            status, text = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read()
    try:
        return status, json.loads(text) if text else None
    except ValueError:
        return status, text.decode("utf-8", errors="replace")


def call(url: str, path: str = "/", body: object = None, token: str | None = None) -> Any:
    """The API's JSON answer, like ``request``; an error status raises ApiCallError."""
    status, answer = request(url, path, body, token)
    if status >= 400:
        message = answer.get("message") if isinstance(answer, dict) else answer
        raise ApiCallError(status, str(message))
    return answer
