"""labkit.api through its real HTTP server (waitress, in a thread) against the real HBase.

Request bodies are shaped as Grafana's SimpleJSON and simPod JSON datasource plugins send
them; every expectation is computed here from the rows the test puts into HBase.
"""

from __future__ import annotations

import calendar
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from labkit import api, config, hbase, notebook, sandbox, sensors
from labkit.config import PROJECT_ROOT, Settings, SettingsError

START = datetime(2024, 1, 1)
DAYS = 3
TICK = timedelta(minutes=15)
MS = timedelta(milliseconds=1)
EPOCH_START = datetime(1970, 1, 1)
RAW_SENSORS = ("TH1", "TH2", "HVAC1", "W1")
GRAFANA = PROJECT_ROOT / "grafana" / "provisioning"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))


def ms(moment: datetime) -> int:
    return calendar.timegm(moment.timetuple()) * 1000 + moment.microsecond // 1000


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def expected_names() -> list[str]:
    """The metric names the original dashboard knows, derived from the sensor catalogue."""
    raw = [f"{sensor.name}_raw" for sensor in sensors.CATALOGUE]
    daily = [
        f"{name}_aggr" if kind in ("AVG", "SUM") else name
        for name, kind in sensors.daily_metrics().items()
    ]
    late = [f"{sensor.name}_late" for sensor in sensors.CATALOGUE]
    return raw + daily + late + ["invalid"]


# HVAC1 has true roll-ups; TH2 marked ones, for its first two days only: each period's mean
# is MARKED, which no TH2 reading (12..35) is, so a point of 1000 comes from a roll-up.
MARKED = 1000.0
ROLLED_UP_UNTIL = {"HVAC1": START + timedelta(days=DAYS), "TH2": START + timedelta(days=2)}


def rollups(raw: dict[str, list[tuple[datetime, float]]]) -> dict[str, dict[bytes, dict]]:
    """Roll-up rows (as the pipeline's writer stores them) of the sensors of ROLLED_UP_UNTIL."""
    tables: dict[str, dict[bytes, dict]] = {}
    for name, until in ROLLED_UP_UNTIL.items():
        sums: dict[bytes, list] = {}
        for moment, value in raw[name]:
            if moment >= until:
                continue
            for resolution, period in sensors.ROLLUP_PERIODS.items():
                start = START + (moment - START) // period * period
                key = f"{name}#{resolution}#{start:%Y-%m-%d %H:%M:%S}".encode()
                total = sums.setdefault(key, [0.0, 0, 0])
                total[0] += MARKED if name == "TH2" else value
                total[1] += 1
                total[2] += int((moment - start).total_seconds())
        tables[name] = {
            key: {b"d:sum": repr(t).encode(), b"d:count": str(n).encode(),
                  b"d:offset_sum": str(o).encode()}
            for key, (t, n, o) in sums.items()
        }  # fmt: skip
    return tables


@dataclass
class Data:
    """What the tests put into their own tables."""

    settings: Settings
    raw: dict[str, list[tuple[datetime, float]]]
    daily: dict[str, list[tuple[datetime, float]]]
    late: list[dict]
    invalid: list[dict]


def _fill(settings: Settings) -> Data:
    rng = random.Random(20240101)
    raw = {
        name: [
            (START + i * TICK, rng.uniform(sensors.SENSORS[name].low, sensors.SENSORS[name].high))
            for i in range(DAYS * sensors.TICKS_PER_DAY)
        ]
        for name in RAW_SENSORS
    }
    daily = {
        metric: [(START + timedelta(days=d), rng.uniform(0, 500)) for d in range(DAYS)]
        for metric in sensors.daily_metrics()
    }
    late = [
        {"sensor": "W1", "time": START + timedelta(hours=h, minutes=15), "value": rng.random(),
         "sent_at": START + timedelta(days=2, hours=h), "offset": 100 + h}
        for h in (3, 9, 30, 50)
    ]  # fmt: skip
    # Two messages sent in the same second: their Kafka offsets keep their rows apart.
    invalid = [
        {"sent_at": START + timedelta(hours=h), "reason": reason, "message": message,
         "offset": 200 + i}
        for i, (h, reason, message) in enumerate((
            (1, "not valid JSON", "{oops"),
            (1, "unknown sensor", '{"m_name": "TH9", "m_value": 1, "m_timestamp": "x"}'),
            (7, "value out of range", '{"m_name": "TH1", "m_value": 999}'),
            (40, "empty message", ""),
        ))
    ]  # fmt: skip
    connection = hbase.connect(settings)
    try:
        with connection.table(hbase.table_name(settings, "raw")).batch() as batch:
            for name, readings in raw.items():
                for moment, value in readings:
                    batch.put(f"{name}#{moment:%Y-%m-%d %H:%M:%S}".encode(),
                              {b"d:value": repr(value).encode()})  # fmt: skip
        with connection.table(hbase.table_name(settings, "daily")).batch() as batch:
            for metric, days in daily.items():
                for day, value in days:
                    batch.put(f"{metric}#{day:%Y-%m-%d}".encode(),
                              {b"d:value": repr(value).encode(), b"d:readings": b"96",
                               b"d:kind": sensors.daily_metrics()[metric].encode()})  # fmt: skip
        with connection.table(hbase.table_name(settings, "rollup")).batch() as batch:
            for rows in rollups(raw).values():
                for key, columns in rows.items():
                    batch.put(key, columns)
        with connection.table(hbase.table_name(settings, "late")).batch() as batch:
            for row in late:
                key = f"{row['sensor']}#{row['time']:%Y-%m-%d %H:%M:%S}#0-{row['offset']:012d}"
                delay = int((row["sent_at"] - row["time"]).total_seconds())
                batch.put(key.encode(), {
                    b"d:value": repr(row["value"]).encode(),
                    b"d:sent_at": f"{row['sent_at']:%Y-%m-%d %H:%M:%S}".encode(),
                    b"d:watermark": f"{row['sent_at'] - TICK:%Y-%m-%d %H:%M:%S}".encode(),
                    b"d:behind_watermark_s": str(delay - 900).encode(),
                    b"d:delay_s": str(delay).encode(),
                })  # fmt: skip
        with connection.table(hbase.table_name(settings, "invalid")).batch() as batch:
            for row in invalid:
                key = f"input#{row['sent_at']:%Y-%m-%d %H:%M:%S}#0-{row['offset']:012d}"
                batch.put(key.encode(), {
                    b"d:reason": row["reason"].encode(), b"d:message": row["message"].encode(),
                    b"d:chars": str(len(row["message"])).encode(),
                })  # fmt: skip
    finally:
        connection.close()
    return Data(settings, raw, daily, late, invalid)


@pytest.fixture(scope="module")
def data(stack: Settings):
    with sandbox.sandbox(stack, "t") as mine:
        yield _fill(mine)


@pytest.fixture(scope="module")
def url(data: Data):
    with api.start_in_thread(data.settings, port=0) as running:
        yield running.url


def send(
    url: str,
    path: str,
    body: Any = None,
    *,
    raw: bytes | None = None,
    method: str | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """(status, parsed JSON answer) of one request; error statuses are returned, not raised."""
    data = raw if raw is not None else None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url + path,
        data=data,
        method=method,
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            status, text = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read()
    return status, json.loads(text) if text else None


def simplejson_query(targets: list[dict], start: datetime, end: datetime, points: int) -> dict:
    """A /query body as SimpleJSON 1.4 sends it (README example, with the fields it adds)."""
    return {
        "panelId": 1,
        "range": {"from": iso(start), "to": iso(end), "raw": {"from": "now-6h", "to": "now"}},
        "rangeRaw": {"from": "now-6h", "to": "now"},
        "interval": "30s",
        "intervalMs": 30000,
        "maxDataPoints": points,
        "targets": targets,
        "adhocFilters": [{"key": "City", "operator": "=", "value": "Berlin"}],
        "scopedVars": {"__interval": {"text": "30s", "value": "30s"}},
    }


def simpod_target(metric: str, ref: str = "A", payload: dict | None = None) -> dict:
    """A simPod 0.6 target after the plugin's processTargets (payload parsed to an object)."""
    return {
        "refId": ref,
        "target": metric,
        "payload": payload or {},
        "editorMode": "code",
        "datasource": {"type": "simpod-json-datasource", "uid": "iotlab-api"},
        "hide": False,
        "key": "Q-1f3a-0",
    }


def simpod_query(targets: list[dict], start: datetime, end: datetime, points: int) -> dict:
    """A /query body as simPod 0.6 sends it (the README's and a captured request's fields)."""
    return {
        "app": "dashboard",
        "requestId": "Q121",
        "timezone": "browser",
        "panelId": 1,
        "dashboardUID": "iotlab-overview",
        "range": {"from": iso(start), "to": iso(end), "raw": {"from": "now-6h", "to": "now"}},
        "rangeRaw": {"from": "now-6h", "to": "now"},
        "interval": "15s",
        "intervalMs": 15000,
        "maxDataPoints": points,
        "startTime": 1716695603558,
        "scopedVars": {
            "__interval": {"text": "15s", "value": "15s"},
            "__interval_ms": {"text": "15000", "value": 15000},
        },
        "targets": targets,
        "filters": [],
        "adhocFilters": [],
    }


def in_window(points: list[tuple[datetime, float]], start: datetime, end: datetime) -> list:
    return [[value, ms(moment)] for moment, value in points if start <= moment <= end]


def rollup_cut(start: datetime, end: datetime, buckets: int) -> tuple[int, timedelta] | None:
    """Reference: the width (ms) of a range's buckets and the roll-up period read for them;
    None when no roll-up period fits in an equal bucket."""
    periods = sorted(sensors.ROLLUP_PERIODS.values(), reverse=True)
    fitting = [p for p in periods if p * buckets <= end - start + MS]
    if not fitting:
        return None
    unit = fitting[0] // MS
    width = next(k * unit for k in range(1, 10**6)
                 if (ms(end) - ms(start) // (k * unit) * (k * unit)) // (k * unit) + 1 <= buckets
                 and k * unit * buckets >= ms(end) - ms(start) + 1)  # fmt: skip
    return width, next(p for p in periods if width % (p // MS) == 0)


def bucket_of(start: datetime, end: datetime, buckets: int) -> Callable[[int], int]:
    """Independent reference for the buckets of a range: equal ones over the inclusive range
    when no roll-up period fits in one; otherwise the widest such period times the smallest
    whole number that covers the range in ``buckets`` (and keeps at most ``buckets`` of them
    once aligned to their width)."""
    cut = rollup_cut(start, end, buckets)
    if cut is None:
        span = ms(end) - ms(start) + 1
        return lambda t: (t - ms(start)) * buckets // span
    width = cut[0]
    return lambda t: (t - ms(start) // width * width) // width


def bucket_averages(points: list[list], start: datetime, end: datetime, buckets: int) -> list:
    """Reference downsampling: each non-empty bucket gives (mean value, floor of the mean
    time)."""
    bucket = bucket_of(start, end, buckets)
    groups: dict[int, list[list]] = {}
    for value, t in points:
        groups.setdefault(bucket(t), []).append([value, t])
    return [
        [sum(v for v, _ in group) / len(group), sum(t for _, t in group) // len(group)]
        for _, group in sorted(groups.items())
    ]


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


# --------------------------------------------------------------------------------------
# /query: range filtering, formats, downsampling
# --------------------------------------------------------------------------------------


def test_simplejson_timeserie_and_table_of_one_day(url, data):
    start, end = START + timedelta(hours=6), START + timedelta(days=1, hours=6)
    targets = [
        {"target": "TH1_raw", "refId": "A", "hide": False, "type": "timeserie"},
        {"target": "TH2_raw", "refId": "B", "hide": False, "type": "table"},
    ]
    status, answer = send(url, "/query", simplejson_query(targets, start, end, 550))
    assert status == 200
    expected_th1 = in_window(data.raw["TH1"], start, end)
    # Both ends of the range are included: 06:00 of both days, 97 readings.
    assert len(expected_th1) == sensors.TICKS_PER_DAY + 1
    assert answer[0] == {"target": "TH1_raw", "refId": "A", "datapoints": expected_th1}
    table = answer[1]
    assert table["type"] == "table" and table["refId"] == "B"
    assert table["columns"] == [{"text": "time", "type": "time"},
                                {"text": "TH2_raw", "type": "number"}]  # fmt: skip
    assert table["rows"] == [[t, v] for v, t in in_window(data.raw["TH2"], start, end)]


def test_range_ends_are_exact_to_the_millisecond(url, data):
    reading = START + timedelta(hours=10)
    body = lambda start, end: simpod_query([simpod_target("HVAC1_raw")], start, end, 1000)  # noqa: E731
    one_ms = timedelta(milliseconds=1)
    _, answer = send(url, "/query", body(reading, reading))
    assert [t for _, t in answer[0]["datapoints"]] == [ms(reading)]
    _, answer = send(url, "/query", body(reading + one_ms, reading + TICK - one_ms))
    assert answer[0]["datapoints"] == []
    _, answer = send(url, "/query", body(reading - one_ms, reading + TICK))
    assert [t for _, t in answer[0]["datapoints"]] == [ms(reading), ms(reading + TICK)]
    # A window without a whole second in it holds no reading (not even the next second's).
    second = timedelta(seconds=1)
    _, answer = send(url, "/query", body(reading - second + one_ms, reading - one_ms))
    assert answer[0]["datapoints"] == []


def test_downsampling_averages_equal_buckets(url, data):
    start, end = START, START + timedelta(days=DAYS)
    for points in (7, 50, 143):
        body = simpod_query([simpod_target("W1_raw")], start, end, points)
        status, answer = send(url, "/query", body)
        readings = in_window(data.raw["W1"], start, end)
        expected = bucket_averages(readings, start, end, points)
        got = answer[0]["datapoints"]
        assert status == 200 and len(got) == len(expected) <= points
        assert [t for _, t in got] == [t for _, t in expected]
        assert [v for v, _ in got] == pytest.approx([v for v, _ in expected], rel=1e-12)
        # The first and last points stay within the readings' own time span.
        assert readings[0][1] <= got[0][1] and got[-1][1] <= readings[-1][1]


def query_points(url: str, metric: str, start: datetime, end: datetime, points: int,
                 payload: dict | None = None) -> list[list]:  # fmt: skip
    status, answer = send(url, "/query", simpod_query([simpod_target(metric, payload=payload)],
                                                      start, end, points))  # fmt: skip
    assert status == 200
    return answer[0]["datapoints"]


WINDOWS = [  # (offset from START, length, maxDataPoints): 1 d, 6 h and 1 h periods, aligned or not
    (timedelta(0), timedelta(days=DAYS), 3),
    (timedelta(hours=3, minutes=20), timedelta(days=2), 7),
    (timedelta(minutes=50), timedelta(days=2, hours=1), 40),
    (timedelta(0), timedelta(days=1), 20),
]


@pytest.mark.parametrize("offset, length, points", WINDOWS)
def test_roll_ups_give_the_points_of_the_raw_readings(url, data, offset, length, points):
    start = START + offset
    end = start + length
    readings = in_window(data.raw["HVAC1"], start, end)
    expected = bucket_averages(readings, start, end, points)
    for payload in (None, {"source": "raw"}):
        got = query_points(url, "HVAC1_raw", start, end, points, payload)
        assert [t for _, t in got] == [t for _, t in expected]
        assert [v for v, _ in got] == pytest.approx([v for v, _ in expected], rel=1e-9)


@pytest.mark.parametrize("points", [11, 12, 40])
def test_roll_ups_are_read_inside_the_range_raw_readings_at_its_edges_and_after_them(
    url, data, points
):
    # TH2's roll-ups say MARKED and end with day 2: a reading counts as MARKED exactly when the
    # API reads its period's roll-up, i.e. the period lies wholly in the range and is rolled up.
    start, end = START + timedelta(hours=3, minutes=30), START + timedelta(days=DAYS) - TICK
    cut = rollup_cut(start, end, points)
    assert cut is not None
    period = cut[1]

    def through_roll_up(t: int) -> bool:
        first = START + (EPOCH_START + timedelta(milliseconds=t) - START) // period * period
        return start <= first and first + period <= min(end + MS, ROLLED_UP_UNTIL["TH2"])

    readings = in_window(data.raw["TH2"], start, end)
    seen = [[MARKED if through_roll_up(t) else v, t] for v, t in readings]
    assert 0 < sum(v == MARKED for v, _ in seen) < len(seen)
    expected = bucket_averages(seen, start, end, points)
    got = query_points(url, "TH2_raw", start, end, points)
    assert [t for _, t in got] == [t for _, t in expected]
    assert [v for v, _ in got] == pytest.approx([v for v, _ in expected], rel=1e-12)
    # Asked for every raw reading, the API never reads a roll-up.
    raw = query_points(url, "TH2_raw", start, end, points, {"source": "raw"})
    assert raw == [[v, t] for v, t in bucket_averages(readings, start, end, points)]


def test_no_downsampling_when_the_points_fit(url, data):
    start, end = START, START + timedelta(days=DAYS)
    readings = in_window(data.raw["HVAC1"], start, end)
    body = simpod_query([simpod_target("HVAC1_raw")], start, end, len(readings))
    assert send(url, "/query", body)[1][0]["datapoints"] == readings


def test_several_targets_daily_metrics_and_hidden_ones(url, data):
    start, end = START + timedelta(days=1), START + timedelta(days=DAYS, hours=1)
    targets = [
        simpod_target("Etot_DailyDiff", "A"),
        simpod_target("Wtot_AggDayRest", "B", {"format": "table"}),
        simpod_target("TH1_aggr", "C"),
        {**simpod_target("TH2_raw", "D"), "hide": True},
        {"refId": "E", "datasource": {"uid": "iotlab-api"}},  # a target not chosen yet
    ]
    status, answer = send(url, "/query", simpod_query(targets, start, end, 1000))
    assert status == 200 and [item["refId"] for item in answer] == ["A", "B", "C"]
    # Daily values are stamped at the day's midnight; the range holds days 2 and 3.
    assert answer[0]["datapoints"] == in_window(data.daily["Etot_DailyDiff"], start, end)
    assert len(answer[0]["datapoints"]) == 2
    assert answer[1]["rows"] == [
        [t, v] for v, t in in_window(data.daily["Wtot_AggDayRest"], start, end)
    ]
    assert answer[2]["target"] == "TH1_aggr"
    assert answer[2]["datapoints"] == in_window(data.daily["TH1"], start, end)


def test_multi_value_variables_name_several_metrics(url, data):
    start, end = START, START + timedelta(hours=2)
    for target in ("(TH1_raw|W1_raw)", "{TH1_raw,W1_raw}"):
        body = simpod_query([simpod_target(target)], start, end, 1000)
        status, answer = send(url, "/query", body)
        assert status == 200
        assert [(item["target"], item["refId"]) for item in answer] == [
            ("TH1_raw", "A"), ("W1_raw", "A"),
        ]  # fmt: skip
        assert answer[1]["datapoints"] == in_window(data.raw["W1"], start, end)


def test_code_mode_payload_text_and_legacy_data_are_read(url, data):
    start, end = START, START + timedelta(hours=1)
    as_text = {**simpod_target("TH1_raw"), "payload": '{"format": "table"}'}
    legacy = {"target": "TH1_raw", "refId": "B", "type": "timeseries", "data": {}}
    status, answer = send(url, "/query", simpod_query([as_text, legacy], start, end, 100))
    assert status == 200 and answer[0]["type"] == "table" and "datapoints" in answer[1]


def test_metric_without_rows_is_an_empty_series(url):
    body = simpod_query([simpod_target("Etot_raw")], START, START + timedelta(days=1), 100)
    assert send(url, "/query", body) == (200, [
        {"target": "Etot_raw", "refId": "A", "datapoints": []}
    ])  # fmt: skip


def test_max_data_points_is_capped(stack):
    with sandbox.sandbox(stack, "t") as mine:
        count = api.MAX_DATA_POINTS + 500
        connection = hbase.connect(mine)
        try:
            with connection.table(hbase.table_name(mine, "raw")).batch() as batch:
                for i in range(count):
                    moment = START + timedelta(minutes=i)
                    batch.put(f"MOV1#{moment:%Y-%m-%d %H:%M:%S}".encode(), {b"d:value": b"1.0"})
        finally:
            connection.close()
        with api.start_in_thread(mine, port=0) as running:
            end = START + timedelta(minutes=count - 1)
            body = simpod_query([simpod_target("MOV1_raw")], START, end, 10**9)
            status, answer = send(running.url, "/query", body)
    points = answer[0]["datapoints"]
    assert status == 200 and 0 < len(points) <= api.MAX_DATA_POINTS
    assert all(value == 1.0 for value, _ in points)


# --------------------------------------------------------------------------------------
# Late and invalid data, annotations
# --------------------------------------------------------------------------------------


def test_late_readings_as_series_table_and_simpod_annotations(url, data):
    start, end = START, START + timedelta(days=2)
    inside = [row for row in data.late if start <= row["time"] <= end]
    assert 0 < len(inside) < len(data.late)
    targets = [
        simpod_target("W1_late", "A"),
        simpod_target("W1_late", "B", {"format": "table"}),
        {**simpod_target("W1_late", "Anno", {"format": "annotations"})},
    ]
    status, answer = send(url, "/query", simpod_query(targets, start, end, 1000))
    assert status == 200
    assert answer[0]["datapoints"] == [[row["value"], ms(row["time"])] for row in inside]
    assert [row[:3] for row in answer[1]["rows"]] == [
        [ms(row["time"]), row["value"], ms(row["sent_at"])] for row in inside
    ]
    annotations = answer[2]
    names = [column["text"] for column in annotations["columns"]]
    assert names == ["time", "timeEnd", "title", "text", "tags"]
    assert annotations["refId"] == "Anno"
    for row, event in zip(annotations["rows"], inside, strict=True):
        assert row[0] == row[1] == ms(event["time"])
        assert row[2] == "late W1 reading" and row[4] == "late,W1"
        assert f"{event['sent_at']:%Y-%m-%d %H:%M:%S}" in row[3]


def test_simplejson_annotations(url, data):
    annotation = {"name": "late", "datasource": "iotlab API", "enable": True,
                  "iconColor": "rgba(255, 96, 96, 1)", "query": "W1_late"}  # fmt: skip
    body = {
        "range": {"from": iso(START), "to": iso(START + timedelta(days=3)),
                  "raw": {"from": "now-3d", "to": "now"}},
        "rangeRaw": {"from": "now-3d", "to": "now"},
        "annotation": annotation,
    }  # fmt: skip
    status, events = send(url, "/annotations", body)
    assert status == 200 and len(events) == len(data.late)
    for event, row in zip(events, data.late, strict=True):
        assert event["annotation"] == annotation
        assert event["time"] == event["timeEnd"] == ms(row["time"])
        assert event["title"] and event["text"] and event["tags"] == ["late", "W1"]
    status, events = send(url, "/annotations", {**body, "annotation": {"query": "invalid"}})
    assert status == 200 and [e["time"] for e in events] == [
        ms(row["sent_at"]) for row in data.invalid
    ]
    assert events[0]["tags"] == ["invalid"] and data.invalid[0]["reason"] in events[0]["title"]


def test_invalid_messages_counted_per_bucket_and_listed(url, data):
    start, end = START, START + timedelta(days=2)
    targets = [simpod_target("invalid", "A"), simpod_target("invalid", "B", {"format": "table"})]
    status, answer = send(url, "/query", simpod_query(targets, start, end, 48))
    inside = [row for row in data.invalid if start <= row["sent_at"] <= end]
    span = ms(end) - ms(start) + 1
    counts: dict[int, int] = {}
    for row in inside:
        bucket = (ms(row["sent_at"]) - ms(start)) * 48 // span
        counts[bucket] = counts.get(bucket, 0) + 1
    assert status == 200
    assert answer[0]["datapoints"] == [
        [count, ms(start) + bucket * span // 48] for bucket, count in sorted(counts.items())
    ]
    assert answer[1]["rows"] == [
        [ms(row["sent_at"]), row["reason"], row["message"], len(row["message"])] for row in inside
    ]


# --------------------------------------------------------------------------------------
# The provisioned dashboard and datasource
# --------------------------------------------------------------------------------------


def _dashboard_queries() -> list[tuple[str, list[dict]]]:
    """(panel type, its targets as the simPod plugin sends them) of every dashboard panel
    and annotation: the code-mode payload text parsed, as its processTargets does."""
    found = []
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        panels = [p for p in dashboard["panels"] if p.get("targets")]
        for panel in panels:
            found.append((panel["type"], panel["targets"]))
        for annotation in dashboard["annotations"]["list"]:
            if "target" in annotation:
                found.append(("annotations", [annotation["target"]]))
    for _, targets in found:
        for target in targets:
            text = target.get("payload") or ""
            target["payload"] = json.loads(text) if text.strip() else {}
    return found


def test_every_dashboard_target_is_a_metric_the_api_serves(url):
    queries = _dashboard_queries()
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


def test_dashboard_and_datasource_provisioning_agree():
    datasources = yaml.safe_load((GRAFANA / "datasources" / "iotlab-api.yaml").read_text())
    (source,) = datasources["datasources"]
    assert source["type"] == "simpod-json-datasource" and source["access"] == "proxy"
    assert source["url"] == "http://api:5000"
    assert source["jsonData"]["httpHeaderName1"] == "Authorization"
    assert source["secureJsonData"]["httpHeaderValue1"] == "Bearer ${LABKIT_API_TOKEN}"
    providers = yaml.safe_load((GRAFANA / "dashboards" / "iotlab.yaml").read_text())
    assert providers["providers"][0]["options"]["path"] == "/etc/grafana/provisioning/dashboards"
    for path in DASHBOARDS:
        text = path.read_text()
        uids = {match["uid"] for match in _datasources(json.loads(text))}
        assert uids == {source["uid"], "-- Grafana --"}


def _datasources(node: Any) -> list[dict]:
    if isinstance(node, dict):
        own = [node["datasource"]] if isinstance(node.get("datasource"), dict) else []
        return own + [d for value in node.values() for d in _datasources(value)]
    if isinstance(node, list):
        return [d for value in node for d in _datasources(value)]
    return []


# --------------------------------------------------------------------------------------
# Bad requests: 400 with a message, 413, never a 500
# --------------------------------------------------------------------------------------

GOOD_RANGE = {"from": "2024-01-01T00:00:00.000Z", "to": "2024-01-02T00:00:00.000Z"}


def _query(**changes: Any) -> dict:
    return {"range": GOOD_RANGE, "maxDataPoints": 100,
            "targets": [{"target": "TH1_raw", "refId": "A"}], **changes}  # fmt: skip


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/query", b"{not json"),
        ("/query", b"\xff\xfe"),
        ("/query", b"[" * 50_000),
        ("/query", b"[1, 2]"),
        ("/query", b'"text"'),
        ("/query", _query(range=None)),
        ("/query", _query(range={"from": "2024-01-02T00:00:00Z", "to": "2024-01-01T00:00:00Z"})),
        ("/query", _query(range={"from": "yesterday", "to": "2024-01-01T00:00:00Z"})),
        ("/query", _query(range={"from": 1704067200000, "to": 1704153600000})),
        ("/query", _query(range={"from": "2024-01-01T00:00:00Z"})),
        ("/query", _query(maxDataPoints="many")),
        ("/query", _query(maxDataPoints=0)),
        ("/query", _query(maxDataPoints=-3)),
        ("/query", _query(maxDataPoints=True)),
        ("/query", _query(maxDataPoints=2.5)),
        ("/query", _query(targets="TH1_raw")),
        ("/query", _query(targets=None)),
        ("/query", _query(targets=[42])),
        ("/query", _query(targets=[{"target": 42}])),
        ("/query", _query(targets=[{"target": "TH1_raw", "refId": 7}])),
        ("/query", _query(targets=[{"target": "TH1_raw", "type": "graph"}])),
        ("/query", _query(targets=[{"target": "TH1_raw", "payload": {"format": "pie"}}])),
        ("/query", _query(targets=[{"target": "TH1_raw", "payload": {"source": "cache"}}])),
        ("/query", _query(targets=[{"target": "TH1_raw", "payload": "{bad"}])),
        ("/query", _query(targets=[{"target": "TH1_raw", "payload": [1]}])),
        ("/query", _query(targets=[{"target": "TH1_raw", "payload": {"format": "annotations"}}])),
        ("/query", _query(targets=[{"target": "TH1"}])),
        ("/query", _query(targets=[{"target": "TH1_raw#2024"}])),
        ("/query", _query(targets=[{"target": "(TH1_raw|nope)"}])),
        ("/query", _query(targets=[{"target": "TH1_raw"}] * (api.MAX_METRICS_PER_QUERY + 1))),
        ("/search", {"target": ["TH1"]}),
        ("/search", [1]),
        ("/metrics", {"metric": 5}),
        ("/metrics", {"payload": "x"}),
        ("/metric-payload-options", {"metric": "nope", "name": "format"}),
        ("/variable", {"payload": 3}),
        ("/tag-keys", b"[]"),
        ("/annotations", {"range": GOOD_RANGE}),
        ("/annotations", {"range": GOOD_RANGE, "annotation": {"query": ""}}),
        ("/annotations", {"range": GOOD_RANGE, "annotation": {"query": "TH1_raw"}}),
        ("/annotations", {"range": GOOD_RANGE, "annotation": {"query": "nope_late"}}),
    ],
)
def test_bad_requests_get_400_with_a_message(url, path, body):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    status, answer = send(url, path, raw=raw)
    assert status == 400, answer
    assert isinstance(answer["message"], str) and answer["message"]


def test_unknown_metric_lists_the_valid_ones(url):
    status, answer = send(url, "/query", _query(targets=[{"target": "TH3_raw"}]))
    assert status == 400 and "TH3_raw" in answer["message"]
    assert answer["metrics"] == expected_names()
    assert all(name in answer["message"] for name in expected_names())


def test_request_text_never_reaches_a_row_key():
    window = api.Window(datetime(2024, 1, 1, 0, 0, 0, 1000), datetime(2024, 1, 2, 12, 0, 0, 5))
    start, stop = api.key_range(api.CATALOGUE["TH1_raw"], window)
    # Rounded up and down to the whole seconds of the keys; the stop is excluded.
    assert (start, stop) == (b"TH1#2024-01-01 00:00:01", b"TH1#2024-01-02 12:00:01")
    start, stop = api.key_range(api.CATALOGUE["Etot_DailyDiff"], window)
    assert (start, stop) == (b"Etot_DailyDiff#2024-01-02", b"Etot_DailyDiff#2024-01-03")
    far = api.Window(datetime(9999, 12, 31, 23, 59, 59), datetime.max)
    assert api.key_range(api.CATALOGUE["invalid"], far)[1] == b"input$"
    within_a_second = api.Window(datetime(2024, 1, 1, 0, 0, 0, 1), datetime(2024, 1, 1, 0, 0, 0, 9))
    assert api.key_range(api.CATALOGUE["TH1_raw"], within_a_second) is None
    with pytest.raises(api.ApiError):
        api.resolve("TH1_raw#9999")


def test_bodies_over_one_mebibyte_get_413(url):
    padded = json.dumps(_query()).encode().ljust(api.MAX_BODY_BYTES)
    assert send(url, "/query", raw=padded)[0] == 200  # exactly the limit: served
    status, answer = send(url, "/query", raw=padded + b" ")
    assert status == 413 and "bytes" in answer["message"]
    # A chunked body carries no length: the API counts what it reads.
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.putrequest("POST", "/search")
        connection.putheader("Transfer-Encoding", "chunked")
        connection.endheaders()
        chunk = b" " * 65536
        for _ in range(api.MAX_BODY_BYTES // len(chunk) + 1):
            connection.send(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        connection.send(b"0\r\n\r\n")
        assert connection.getresponse().status == 413
    finally:
        connection.close()


# --------------------------------------------------------------------------------------
# Token, binding, HBase failures
# --------------------------------------------------------------------------------------


def test_a_token_is_required_when_set(data):
    with api.start_in_thread(data.settings, token="s3cret-token", port=0) as running:
        status, answer = send(running.url, "/")
        assert status == 401 and "Bearer" in answer["message"]
        for header in ("Bearer wrong", "s3cret-token", "Basic s3cret-token"):
            assert send(running.url, "/search", {}, headers={"Authorization": header})[0] == 401
        good = {"Authorization": "Bearer s3cret-token"}
        assert send(running.url, "/", headers=good)[0] == 200
        assert send(running.url, "/search", {"target": "W1"}, headers=good)[0] == 200
        assert api.call(running.url, "/", token="s3cret-token")["status"] == "ok"


def test_no_token_no_listening_beyond_loopback(data):
    for host in ("0.0.0.0", "::", "192.0.2.10", "lab.example"):
        with pytest.raises(SettingsError, match="LABKIT_API_TOKEN"):
            api.start_in_thread(replace(data.settings, api_host=host), port=0)
    with pytest.raises(SettingsError):
        api.make_app(data.settings, token=" ")
    assert api.is_loopback("127.0.0.1") and api.is_loopback("::1")
    assert api.is_loopback("localhost") and not api.is_loopback("0.0.0.0")


def test_serve_runs_in_the_foreground_until_ctrl_c(stack):
    port = _closed_port()
    code = "from labkit import api, config; api.serve(config.settings(), token='foreground-token')"
    env = {**os.environ, **config.to_environment(replace(stack, api_port=port))}
    process = subprocess.Popen(
        [sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while send_or_none(url) is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert send(url, "/", headers={"Authorization": "Bearer foreground-token"})[0] == 200
        assert send(url, "/")[0] == 401
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0, output
    assert f"labkit API on {url}" in output


def send_or_none(url: str) -> int | None:
    try:
        return send(url, "/")[0]
    except OSError:
        return None


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_unreachable_hbase_is_a_503_not_a_500(data):
    gone = replace(data.settings, hbase_thrift_port=_closed_port())
    with api.start_in_thread(gone, port=0) as running:
        status, answer = send(running.url, "/query", _query())
        assert status == 503 and "HBase" in answer["message"]
        assert send(running.url, "/search", {})[0] == 200  # the catalogue needs no HBase


def test_missing_tables_mean_no_data_yet(stack):
    fresh = replace(stack, hbase_table_prefix="tnever_created")
    with api.start_in_thread(fresh, port=0) as running:
        status, answer = send(running.url, "/query", _query())
    assert status == 200 and answer[0]["datapoints"] == []


# --------------------------------------------------------------------------------------
# Helpers for notebooks
# --------------------------------------------------------------------------------------


def test_panel_request_is_a_simpod_query_the_api_serves(url, data):
    start, end = START, START + timedelta(days=1)
    body = api.panel_request(["TH1_raw", "TH2_raw"], start, end, max_data_points=24)
    assert body["range"]["from"] == iso(start) and body["maxDataPoints"] == 24
    assert [t["refId"] for t in body["targets"]] == ["A", "B"]
    answer = api.call(url, "/query", body)
    frame = notebook.datapoints_frame(answer)
    assert list(frame.columns) == ["TH1_raw", "TH2_raw"] and len(frame) <= 24
    expected = bucket_averages(in_window(data.raw["TH1"], start, end), start, end, 24)
    assert frame["TH1_raw"].tolist() == pytest.approx([v for v, _ in expected])
    with pytest.raises(api.ApiCallError) as raised:
        api.call(url, "/query", api.panel_request(["TH9_raw"], start, end))
    assert raised.value.status == 400 and "TH9_raw" in raised.value.message


def test_table_frame_and_comparison_figure(url, data):
    start, end = START, START + timedelta(days=2)
    body = api.panel_request(["W1_late"], start, end, payload={"format": "table"})
    frame = notebook.table_frame(api.call(url, "/query", body)[0])
    inside = [row for row in data.late if start <= row["time"] <= end]
    assert frame["time"].tolist() == [pd.Timestamp(row["time"]) for row in inside]
    assert frame["value"].tolist() == [row["value"] for row in inside]
    served = notebook.datapoints_frame(
        api.call(url, "/query", api.panel_request(["TH1_raw"], start, end))
    )
    stored = hbase.read_series(data.settings, "TH1", start, end)["value"]
    figure = notebook.comparison_figure(stored, served["TH1_raw"], "TH1")
    assert len(figure.axes) == 2 and "readings" in figure.axes[0].get_title()


def test_notebook_exercises_are_checked_against_the_api(url, data, capsys):
    first_bucket = [v for t, v in data.raw["TH1"] if t < START + timedelta(hours=3)]
    check = notebook.check_api_exercise
    assert not check("bucket_average", None, url, data.settings)
    assert "Hint" in capsys.readouterr().out
    assert check("bucket_average", sum(first_bucket) / len(first_bucket), url, data.settings)
    assert not check("bucket_average", first_bucket[0], url, data.settings)
    end = START + timedelta(days=DAYS)
    table = {"format": "table"}
    leak = api.panel_request(["Wtot_AggDayRest"], START, end, payload=table)
    assert check("leak_table", leak, url, data.settings)
    assert not check("leak_table", api.panel_request(["Wtot_AggDayRest"], START, end), url,
                     data.settings)  # fmt: skip
    assert not check("leak_table", api.panel_request(["leak"], START, end, payload=table), url,
                     data.settings)  # fmt: skip
    assert "400" in capsys.readouterr().out


def test_request_returns_error_statuses(url):
    status, answer = api.request(url, "/query", {"targets": []})
    assert status == 400 and "range" in answer["message"]
    assert api.request(url, "/nowhere", {})[0] == 404


def test_sandbox_settings_have_their_own_topics_and_tables(stack):
    demo = sandbox.sandbox_settings(stack, "t")
    assert demo.hbase_table_prefix != stack.hbase_table_prefix
    assert not set(demo.topics.all()) & set(stack.topics.all())
    hbase.ensure_tables(demo)
    connection = hbase.connect(demo)
    try:
        names = {name.decode() for name in connection.tables()}
        assert hbase.table_name(demo, "raw") in names
        sandbox.remove(demo)
        names = {name.decode() for name in connection.tables()}
        assert hbase.table_name(demo, "raw") not in names
    finally:
        connection.close()


# --------------------------------------------------------------------------------------
# Fuzzing: whatever the body, never a 5xx
# --------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                  max_size=3),
    max_leaves=12,
)  # fmt: skip
instants = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59))
times = st.one_of(instants.map(iso), instants.map(datetime.isoformat), st.text(max_size=25),
                  json_values)  # fmt: skip
names = st.one_of(
    st.sampled_from([*expected_names(), "", "select metric", "*", "TH1", "(TH1_raw|W1_late)",
                     "{W1_late,invalid}", "TH1_raw#x", "input", "../../hbase:meta"]),
    st.text(max_size=16),
    json_values,
)  # fmt: skip
payloads = st.one_of(
    st.fixed_dictionaries({}, optional={"format": st.sampled_from(
        ["timeseries", "table", "annotations", "timeserie", "pie"]) | json_values}),
    st.text(max_size=20),
    json_values,
)  # fmt: skip
targets = st.fixed_dictionaries(
    {"target": names},
    optional={"refId": st.text(max_size=3) | json_values, "hide": st.booleans() | json_values,
              "type": st.sampled_from(["timeserie", "table", "graph"]) | json_values,
              "payload": payloads, "data": payloads},
)  # fmt: skip
ranges = st.fixed_dictionaries({"from": times, "to": times}) | json_values
bodies = {
    "/query": st.fixed_dictionaries(
        {"range": ranges, "targets": st.lists(targets, max_size=3) | json_values},
        optional={"maxDataPoints": st.integers(-5, 10**15) | json_values},
    ) | json_values,
    "/annotations": st.fixed_dictionaries(
        {"range": ranges,
         "annotation": st.fixed_dictionaries({"query": names}, optional={"name": json_values})
         | json_values},
    ) | json_values,
    "/search": st.fixed_dictionaries({"target": names}) | json_values,
    "/metrics": st.fixed_dictionaries({}, optional={"metric": names, "payload": payloads})
    | json_values,
}  # fmt: skip


@pytest.mark.parametrize("path", sorted(bodies))
def test_fuzzed_bodies_never_get_a_5xx(url, path):
    @hypothesis_settings(
        max_examples=150,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(body=bodies[path], junk=st.binary(max_size=64))
    def check(body: Any, junk: bytes) -> None:
        status, _ = send(url, path, raw=json.dumps(body).encode())
        assert status < 500, body
        assert send(url, path, raw=junk)[0] < 500

    check()


# --------------------------------------------------------------------------------------
# docker-compose.yml: the Grafana layer and the Flink cluster
# --------------------------------------------------------------------------------------

COMPOSE = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def test_compose_runs_grafana_with_the_plugin_and_the_provisioning():
    grafana = SERVICES["grafana"]
    assert grafana["image"].startswith("grafana/grafana:")
    assert "simpod-json-datasource" in grafana["environment"]["GF_PLUGINS_PREINSTALL_SYNC"]
    assert "./grafana/provisioning:/etc/grafana/provisioning:ro" in grafana["volumes"]
    assert "3000:3000" in grafana["ports"]
    # The datasource's Authorization header reads the same token the API is given.
    assert (
        grafana["environment"]["LABKIT_API_TOKEN"]
        == SERVICES["api"]["environment"]["LABKIT_API_TOKEN"]
    )


def test_compose_runs_the_api_against_the_hbase_container():
    service = SERVICES["api"]
    env = service["environment"]
    assert env["LABKIT_MODE"] == "external" and env["LABKIT_HBASE_HOST"] == "hbase"
    assert int(env["LABKIT_HBASE_THRIFT_PORT"]) == 9090
    # Bound to every interface inside its container, so a token is a must.
    assert env["LABKIT_API_HOST"] == "0.0.0.0" and env["LABKIT_API_TOKEN"]
    assert service["command"] == ["api"]
    assert service["build"]["dockerfile"] == "docker/api/Dockerfile"
    dockerfile = (PROJECT_ROOT / "docker" / "api" / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["python", "-m", "labkit"]' in dockerfile
    assert "127.0.0.1:5000:5000" in service["ports"]
    # Grafana's datasource URL is this service's name and port.
    datasources = yaml.safe_load((GRAFANA / "datasources" / "iotlab-api.yaml").read_text())
    assert datasources["datasources"][0]["url"] == f"http://api:{env['LABKIT_API_PORT']}"


def test_compose_runs_a_flink_cluster_matching_pyflink():
    from pyflink.version import __version__ as pyflink_version

    assert {"flink-jobmanager", "flink-taskmanager", "flink-kafka-relay"} <= set(SERVICES)
    jobmanager = SERVICES["flink-jobmanager"]
    assert jobmanager["build"]["dockerfile"] == "docker/flink/Dockerfile"
    assert "127.0.0.1:8081:8081" in jobmanager["ports"]
    dockerfile = (PROJECT_ROOT / "docker" / "flink" / "Dockerfile").read_text()
    assert f"FROM flink:{pyflink_version}-java17" in dockerfile
    # The connector comes from the Maven recipe that pins it for the embedded mode.
    assert "-pl flink" in dockerfile and "/opt/flink/lib/" in dockerfile
    for name in ("flink-taskmanager", "flink-kafka-relay"):
        assert SERVICES[name]["network_mode"] == "service:flink-jobmanager"
        assert SERVICES[name]["image"] == jobmanager["image"]
    assert "TCP:kafka:29092" in SERVICES["flink-kafka-relay"]["entrypoint"]
