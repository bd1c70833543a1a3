"""The comparison's arithmetic: a panel's drawn points against the notebook's own values."""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd
import pytest

from labkit.dashboard import compare
from labkit.dashboard.compare import Cause

DAY = 86_400_000


def series(values: list[float], start: str = "2024-01-01", every: str = "15min") -> pd.Series:
    return pd.Series(values, index=pd.date_range(start, periods=len(values), freq=every))


def test_a_line_through_every_reading_differs_by_nothing():
    readings = series([12.0, 30.0, 18.0, 25.0])
    assert compare.line_difference(readings, readings) == (0.0, readings.index[0].to_pydatetime())


def test_a_downsampled_line_differs_by_the_reading_furthest_from_it():
    readings = series([10.0, 20.0, 10.0, 20.0])  # means 15 and 15 per pair of readings
    # Two buckets, each drawn at the mean time of its readings (7.5 min after its first).
    drawn = pd.Series([15.0, 15.0], index=readings.index[[0, 2]] + pd.Timedelta("7min30s"))
    largest, at = compare.line_difference(drawn, readings)
    assert largest == 5.0
    assert at == datetime(2024, 1, 1)


def test_days_on_one_side_only_are_window_edges_and_count_their_whole_value():
    drawn = series([100.0, 110.0, 95.0], every="1D")
    computed = series([100.0, 110.0, 95.0, 120.0], every="1D")  # a day the panel lacks
    largest, at, edge = compare.day_difference(drawn, computed)
    assert (largest, at, edge) == (120.0, datetime(2024, 1, 4), True)
    drawn.iloc[1] = 111.0
    assert compare.day_difference(drawn, computed.iloc[:3]) == (1.0, datetime(2024, 1, 2), False)


def test_the_causes_of_a_panel_of_readings():
    readings = series([1.0] * 8)
    fewer = readings.iloc[::2]
    assert compare.readings_cause(readings, readings, rollups=False, largest=0.0) is Cause.NONE
    assert compare.readings_cause(fewer, readings, False, 0.4) is Cause.DOWNSAMPLING
    assert compare.readings_cause(fewer, readings, True, 0.4) is Cause.ROLLUPS
    assert compare.readings_cause(readings, readings, False, 0.4) is Cause.MISMATCH


@pytest.mark.parametrize(
    ("days", "points", "rollups"),
    [
        (30, 780, False),  # 55 min a bucket: equal buckets of raw readings
        (30, 720, True),  # exactly 1 h a bucket: hourly roll-ups
        (6, 136, True),
        (365, 517, True),
    ],
)
def test_the_api_reads_roll_ups_once_a_bucket_spans_an_hour(days, points, rollups):
    span_ms = days * DAY
    assert compare.reads_rollups(span_ms, points) is rollups
    assert (span_ms / points >= timedelta(hours=1) / timedelta(milliseconds=1)) is rollups


def test_every_cause_has_an_explanation():
    assert set(compare.EXPLANATIONS) == set(Cause)
