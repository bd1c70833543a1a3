"""The API's integration tests' own data in HBase, and how they send requests."""

from __future__ import annotations

import json
import random
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from labkit import hbase, sensors
from labkit.config import Settings

from ...api_reference import simpod_query, simpod_target

START = datetime(2024, 1, 1)
DAYS = 3
TICK = timedelta(minutes=15)
RAW_SENSORS = ("TH1", "TH2", "HVAC1", "W1")
GOOD_RANGE = {"from": "2024-01-01T00:00:00.000Z", "to": "2024-01-02T00:00:00.000Z"}

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


def fill(settings: Settings) -> Data:
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
    with hbase.connection(settings) as connection:
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
    return Data(settings, raw, daily, late, invalid)


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


def query_points(url: str, metric: str, start: datetime, end: datetime, points: int,
                 payload: dict | None = None) -> list[list]:  # fmt: skip
    status, answer = send(url, "/query", simpod_query([simpod_target(metric, payload=payload)],
                                                      start, end, points))  # fmt: skip
    assert status == 200
    return answer[0]["datapoints"]


def a_query(**changes: Any) -> dict:
    return {"range": GOOD_RANGE, "maxDataPoints": 100,
            "targets": [{"target": "TH1_raw", "refId": "A"}], **changes}  # fmt: skip


def send_or_none(url: str) -> int | None:
    try:
        return send(url, "/")[0]
    except OSError:
        return None


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
