"""/query against rows the tests put into HBase: range ends, formats, several targets and
variables, downsampling and the roll-ups."""

from __future__ import annotations

from datetime import timedelta

import pytest

from labkit import api, hbase, sandbox, sensors

from ...api_reference import (
    EPOCH_START,
    MS,
    bucket_averages,
    expected_names,
    in_window,
    ms,
    rollup_cut,
    simplejson_query,
    simpod_query,
    simpod_target,
)
from .helpers import DAYS, MARKED, ROLLED_UP_UNTIL, START, TICK, query_points, send

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
        with (
            hbase.connection(mine) as connection,
            connection.table(hbase.table_name(mine, "raw")).batch() as batch,
        ):
            for i in range(count):
                moment = START + timedelta(minutes=i)
                batch.put(f"MOV1#{moment:%Y-%m-%d %H:%M:%S}".encode(), {b"d:value": b"1.0"})
        with api.start_in_thread(mine, port=0) as running:
            end = START + timedelta(minutes=count - 1)
            body = simpod_query([simpod_target("MOV1_raw")], START, end, 10**9)
            status, answer = send(running.url, "/query", body)
    points = answer[0]["datapoints"]
    assert status == 200 and 0 < len(points) <= api.MAX_DATA_POINTS
    assert all(value == 1.0 for value, _ in points)


# --------------------------------------------------------------------------------------
# Dashboard variables: "All" values and variables Grafana left as text
# --------------------------------------------------------------------------------------


def test_a_variables_all_value_names_every_metric_that_matches(url, data):
    start, end = START, START + timedelta(hours=2)
    raw = [name for name in expected_names() if name.endswith("_raw")]
    for all_value in (".*", "*"):
        body = simpod_query([simpod_target(all_value)], start, end, 1000)
        status, answer = send(url, "/query", body)
        assert status == 200
        assert [(item["target"], item["refId"]) for item in answer] == [
            (name, "A") for name in expected_names()
        ]
        # Inside a name: "${sensor}_raw" with sensor's "All" value.
        body = simpod_query([simpod_target(f"{all_value}_raw")], start, end, 1000)
        status, answer = send(url, "/query", body)
        assert status == 200 and [item["target"] for item in answer] == raw
        assert answer[raw.index("W1_raw")]["datapoints"] == in_window(data.raw["W1"], start, end)
    # With a format, only the metrics that have it: "All" late and invalid as annotations.
    body = simpod_query([simpod_target(".*", "A", {"format": "annotations"})], start, end, 100)
    status, answer = send(url, "/query", body)
    assert status == 200
    assert [item["name"] for item in answer] == [
        name for name in expected_names() if name.endswith("_late") or name == "invalid"
    ]
    # A multi-value variable inside a name, in its regex and glob forms.
    for target in ("(TH1|W1)_raw", "{TH1,W1}_raw"):
        status, answer = send(url, "/query", simpod_query([simpod_target(target)], start, end, 9))
        assert status == 200 and [item["target"] for item in answer] == ["TH1_raw", "W1_raw"]


def test_a_variable_left_as_text_is_answered_with_a_notice_not_a_400(url, data):
    start, end = START, START + timedelta(hours=2)
    targets = [
        simpod_target("$sensor_raw", "A"),
        simpod_target("${metric}", "B", {"format": "table"}),
        simpod_target("[[metric]]", "C"),
        simpod_target("TH1_raw", "D"),
        simpod_target(".*_nothing", "E"),
    ]
    status, answer = send(url, "/query", simpod_query(targets, start, end, 1000))
    assert status == 200
    assert [item["refId"] for item in answer] == ["A", "B", "C", "D", "E"]
    for item, name in zip(answer[:3], ("$sensor_raw", "${metric}", "[[metric]]"), strict=True):
        assert item["datapoints"] == []
        (notice,) = item["meta"]["notices"]
        assert notice["severity"] == "warning" and name in notice["text"]
    assert answer[3]["datapoints"] == in_window(data.raw["TH1"], start, end)
    (notice,) = answer[4]["meta"]["notices"]
    assert answer[4]["datapoints"] == [] and ".*_nothing" in notice["text"]
