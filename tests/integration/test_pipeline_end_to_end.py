"""30 simulated days through the real Kafka, Flink and HBase, compared with the oracle."""

import math
from datetime import timedelta

import pytest

from labkit import api, oracle, pipeline, sandbox, sensors
from labkit.api.answers import Answers
from labkit.api.store import Store

from .tables import table_rows

SCENARIO = sensors.Scenario(days=30, seed=7)


@pytest.fixture(scope="module")
def outcome(stack):
    """Run the pipeline once for the module's tests: (settings, summary, expected)."""
    with sandbox.sandbox(stack, "t") as settings:
        summary = pipeline.run(settings, SCENARIO, show=False)
        expected = oracle.expected(oracle.messages_frame(sensors.simulate(SCENARIO)))
        yield settings, summary, expected


def test_every_valid_on_time_reading_is_stored_once_and_unchanged(outcome):
    settings, summary, expected = outcome
    stored = table_rows(settings, "raw")
    wanted = {
        f"{row.sensor}#{row.timestamp:%Y-%m-%d %H:%M:%S}".encode(): repr(row.value).encode()
        for row in expected.raw.itertuples()
    }
    assert len(wanted) == len(expected.raw)  # one reading per sensor and instant
    assert {key: columns[b"d:value"] for key, columns in stored.items()} == wanted
    assert summary.raw_rows == len(wanted)


def test_every_late_reading_is_in_the_late_table_with_its_watermark(outcome):
    settings, summary, expected = outcome
    stored = table_rows(settings, "late")
    wanted = {
        f"{row.sensor}#{row.timestamp:%Y-%m-%d %H:%M:%S}#0-{row.offset:012d}".encode(): (
            repr(row.value),
            f"{row.watermark:%Y-%m-%d %H:%M:%S}",
            str(row.behind_watermark_s),
            str(row.delay_s),
        )
        for row in expected.late.itertuples()
    }
    columns = (b"d:value", b"d:watermark", b"d:behind_watermark_s", b"d:delay_s")
    got = {key: tuple(row[c].decode() for c in columns) for key, row in stored.items()}
    assert got == wanted
    assert len(wanted) > 0
    # Nothing is lost: every message is either on time or late (the simulator sends no junk).
    assert summary.raw_rows + summary.late_rows == summary.events
    assert summary.invalid_rows == 0


def test_daily_aggregates_equal_the_oracle(outcome):
    settings, _summary, expected = outcome
    stored = table_rows(settings, "daily")
    assert len(stored) == len(expected.daily)
    for row in expected.daily.itertuples():
        key = f"{row.metric}#{row.day}".encode()
        assert key in stored, key
        columns = stored[key]
        assert columns[b"d:kind"].decode() == row.kind
        assert int(columns[b"d:readings"]) == row.readings, key
        assert math.isclose(float(columns[b"d:value"]), row.value, rel_tol=1e-9), key


def test_late_readings_are_in_no_aggregate(outcome):
    settings, _summary, expected = outcome
    # Every late reading is a W1 reading; had one been counted, some day of W1 in HBase would
    # hold more than its 96 on-time readings.
    assert len(expected.late) > 0 and (expected.late["sensor"] == "W1").all()
    w1_days = [
        int(columns[b"d:readings"])
        for key, columns in table_rows(settings, "daily").items()
        if key.startswith(b"W1#")
    ]
    assert w1_days == [sensors.TICKS_PER_DAY] * int(SCENARIO.days)


def test_all_daily_metrics_appear_every_day(outcome):
    _settings, _summary, expected = outcome
    per_metric = expected.daily.groupby("metric").size()
    assert set(per_metric.index) == set(sensors.daily_metrics())
    assert (per_metric == SCENARIO.days).all()


def test_has_data_tells_empty_tables_from_filled_ones(outcome, isolated):
    settings, _summary, _expected = outcome
    assert pipeline.has_data(settings)
    assert not pipeline.has_data(isolated)  # tables created, still empty


def test_rollups_sum_and_count_the_raw_readings(outcome):
    settings, summary, expected = outcome
    stored = table_rows(settings, "rollup")
    assert len(stored) == len(expected.rollups) == summary.rollup_rows
    for row in expected.rollups.itertuples():
        key = f"{row.sensor}#{row.resolution}#{row.period_start:%Y-%m-%d %H:%M:%S}".encode()
        columns = stored[key]
        assert int(columns[b"d:count"]) == row.count, key
        assert int(columns[b"d:offset_sum"]) == row.offset_sum, key
        assert math.isclose(float(columns[b"d:sum"]), row.sum, rel_tol=1e-9), key


@pytest.mark.parametrize("points", [20, 100, 500])
def test_the_api_reads_the_pipelines_roll_ups_into_the_points_of_the_raw_readings(outcome, points):
    settings, _summary, _expected = outcome
    answers = Answers(Store(settings, connections=1))
    # From mid-morning on the first day to the end: partial periods at both ends.
    start = SCENARIO.start + timedelta(hours=9, minutes=20)
    window = api.Window(start, SCENARIO.start + timedelta(days=SCENARIO.days))
    try:
        for sensor in ("TH1", "W1", "MOV1"):
            metric = api.CATALOGUE[f"{sensor}_raw"]
            rolled_up = answers.series(metric, window, points)
            from_raw = answers.series(metric, window, points, source="raw")
            assert [t for t, _ in rolled_up] == [t for t, _ in from_raw], sensor
            assert [v for _, v in rolled_up] == pytest.approx([v for _, v in from_raw], rel=1e-9)
            assert 0 < len(from_raw) <= points
    finally:
        answers.store.pool.close()
