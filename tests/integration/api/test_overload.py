"""Over its capacity the API sheds load with 503 and Retry-After, at once, and serves again
afterwards: never a timeout, never another 5xx."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from labkit import api, hbase, sandbox, sensors

from ...api_reference import simpod_query, simpod_target
from .helpers import START, send

DAYS = 30
FLOOD = 120  # requests sent at once
SENSORS = [sensor.name for sensor in sensors.CATALOGUE][:10]


def _post(url: str, body: dict) -> tuple[int, str | None, dict]:
    """(status, Retry-After, JSON answer) of one /query; errors are returned, not raised."""
    request = urllib.request.Request(
        url + "/query", json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, response.headers.get("Retry-After"), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Retry-After"), json.loads(error.read())


def _heavy(index: int) -> dict:
    """Every raw reading of ten sensors, as series and as tables: 20 range scans of 2,880
    rows. Each request's window differs by a second, so no two share an answer."""
    targets = [
        simpod_target(f"{name}_raw", f"{name}{chosen}", {"format": chosen, "source": "raw"})
        for name in SENSORS
        for chosen in ("timeseries", "table")
    ]
    start = START + timedelta(seconds=index)
    return simpod_query(targets, start, start + timedelta(days=DAYS), 10_000)


@pytest.mark.slow
def test_over_capacity_it_sheds_with_503_and_retry_after_then_serves_again(stack):
    with sandbox.sandbox(stack, "t") as mine:
        with (
            hbase.connection(mine) as connection,
            connection.table(hbase.table_name(mine, "raw")).batch(batch_size=5000) as batch,
        ):
            for name in SENSORS:
                for tick in range(DAYS * sensors.TICKS_PER_DAY):
                    moment = START + tick * timedelta(minutes=15)
                    batch.put(f"{name}#{moment:%Y-%m-%d %H:%M:%S}".encode(),
                              {b"d:value": repr(float(tick % 97)).encode()})  # fmt: skip
        with api.start_in_thread(mine, port=0) as running:
            normal = simpod_query([simpod_target("TH1_raw")], START, START + timedelta(2), 50)
            before = send(running.url, "/query", normal)
            with ThreadPoolExecutor(FLOOD) as senders:
                flood = list(senders.map(lambda i: _post(running.url, _heavy(i)), range(FLOOD)))
            after = send(running.url, "/query", normal)
            health = send(running.url, "/")
    statuses = [status for status, _, _ in flood]
    assert set(statuses) <= {200, 503}, statuses
    shed = [(retry, answer) for status, retry, answer in flood if status == 503]
    assert shed and statuses.count(200) > 0
    for retry, answer in shed:
        assert retry is not None and int(retry) >= 1
        assert "busy" in answer["message"] and answer["status"] == 503
    for status, _, answer in flood:
        if status == 200:
            assert len(answer) == 2 * len(SENSORS)
            assert all(len(item.get("datapoints", item.get("rows"))) for item in answer)
    assert before[0] == 200 and after == before and health[0] == 200
