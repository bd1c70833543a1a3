"""Downsampling arithmetic, directly: buckets, means, counts and the roll-up periods."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from labkit import sensors
from labkit.api import series
from labkit.api.parse import Window
from labkit.api.series import Buckets, PeriodSum, as_sums, buckets_for, downsample

from ..api_reference import MS, bucket_of, ms, rollup_cut

START = datetime(2024, 1, 1)
HOUR = timedelta(hours=1)


def test_short_windows_get_equal_buckets():
    # 10 hours at 20 points: no roll-up period fits 20 times, so 20 buckets of 30 minutes.
    window = Window(START, START + 10 * HOUR - MS)
    buckets = buckets_for(window, 20)
    assert buckets.rollup is None and buckets.count == 20
    assert buckets.index(window.start_ms) == 0 and buckets.index(window.end_ms) == 19
    half_hour = ms(START + HOUR / 2)
    assert (buckets.index(half_hour - 1), buckets.index(half_hour)) == (0, 1)


def test_a_year_at_a_thousand_points_is_read_from_twelve_hour_roll_ups():
    window = Window(START, START + timedelta(days=365))
    buckets = buckets_for(window, 1000)
    # Six hours fit 1,000 times in a year, twelve do not: buckets of two 6 h periods, read
    # from the 12 h roll-ups, aligned to midnight and noon.
    assert buckets.rollup == "12h" and buckets.width_ms == 12 * 3600 * 1000
    assert buckets.origin_ms == window.start_ms
    assert buckets.index(window.end_ms) - buckets.index(window.start_ms) + 1 == 731


def test_wide_buckets_are_aligned_to_their_width_even_when_the_window_is_not():
    window = Window(START + timedelta(hours=3, minutes=20), START + timedelta(days=30, hours=5))
    buckets = buckets_for(window, 40)
    assert buckets.rollup is not None and buckets.origin_ms % buckets.width_ms == 0
    assert buckets.origin_ms <= window.start_ms < buckets.origin_ms + buckets.width_ms
    assert buckets.width_ms % series.period_ms(buckets.rollup) == 0
    assert buckets.index(window.end_ms) - buckets.index(window.start_ms) < 40


moments = st.integers(0, 3 * 365 * 24 * 3600 * 1000).map(lambda t: START + t * MS)
lengths = st.integers(0, 2 * 365 * 24 * 3600 * 1000).map(lambda t: t * MS)


@hypothesis_settings(max_examples=300, deadline=None)
@given(start=moments, length=lengths, points=st.integers(1, 2000), seed=st.integers(0, 99))
def test_buckets_agree_with_an_independent_reference(start, length, points, seed):
    end = start + length
    buckets = buckets_for(Window(start, end), points)
    cut = rollup_cut(start, end, points)
    assert (buckets.rollup is None) == (cut is None)
    if cut is not None:
        assert buckets.width_ms == cut[0]
        assert sensors.ROLLUP_PERIODS[buckets.rollup] == cut[1]
    reference = bucket_of(start, end, points)
    rng = random.Random(seed)
    times = [ms(start), ms(end)] + [rng.randint(ms(start), ms(end)) for _ in range(20)]
    assert [buckets.index(t) for t in times] == [reference(t) for t in times]
    # Never more buckets than points.
    assert 0 <= buckets.index(ms(end)) - buckets.index(ms(start)) < points


def test_each_bucket_is_the_mean_value_at_the_mean_time():
    buckets = Buckets(start_ms=0, end_ms=3999, count=4)  # four buckets of one second
    points = [(0, 1.0), (500, 3.0), (1500, 10.0), (3001, 4.0), (3002, 5.0)]
    # The mean time is floored to the millisecond: (3001 + 3002) / 2 -> 3001.
    assert downsample(as_sums(points), buckets) == [(250, 2.0), (1500, 10.0), (3001, 4.5)]


def test_a_straight_line_stays_on_the_line():
    rng = random.Random(7)
    times = sorted(rng.sample(range(0, 10_000_000), 5000))
    points = [(t, 2.0 + 0.001 * t) for t in times]
    buckets = Buckets(start_ms=0, end_ms=9_999_999, count=37)
    downsampled = downsample(as_sums(points), buckets)
    assert len(downsampled) == 37
    for t, value in downsampled:
        # The time is the floor of the mean time: the value lies within one ms of the line.
        assert value == pytest.approx(2.0 + 0.001 * t, abs=0.001 + 1e-9)
    assert times[0] <= downsampled[0][0] and downsampled[-1][0] <= times[-1]


def _roll_up(points: list[tuple[int, float]], period_ms: int) -> list[PeriodSum]:
    """Reference roll-ups: per period, the count, the sum and the summed times."""
    periods: dict[int, list] = {}
    for t, value in points:
        start = t // period_ms * period_ms
        total = periods.setdefault(start, [0, 0.0, 0])
        total[0] += 1
        total[1] += value
        total[2] += t
    return [PeriodSum(start, n, v, t) for start, (n, v, t) in sorted(periods.items())]


def test_roll_ups_give_the_points_of_their_readings():
    rng = random.Random(11)
    window = Window(START, START + timedelta(days=60))
    buckets = buckets_for(window, 50)
    assert buckets.rollup is not None
    step = 15 * 60 * 1000
    points = [(t, rng.uniform(-40, 85)) for t in range(window.start_ms, window.end_ms, step)]
    rolled = _roll_up(points, series.period_ms(buckets.rollup))
    from_rollups = downsample(rolled, buckets)
    from_readings = downsample(as_sums(points), buckets)
    assert [t for t, _ in from_rollups] == [t for t, _ in from_readings]
    assert [v for _, v in from_rollups] == pytest.approx([v for _, v in from_readings], rel=1e-12)


def test_count_per_bucket_counts_and_stamps_each_bucket_at_its_start():
    times = [0, 999, 1000, 3999]
    assert series.count_per_bucket(times, 0, 3999, 4) == [(0, 2), (1000, 1), (3000, 1)]
    assert series.count_per_bucket([], 0, 3999, 4) == []


def test_periods_inside_a_window_are_the_whole_ones():
    window = Window(START + timedelta(hours=3, minutes=20), START + timedelta(days=1, hours=2))
    first, last = series.periods_inside(window, "1h")
    assert (first, last) == (START + 4 * HOUR, START + timedelta(days=1, hours=1))
    # Both ends included: a day's window ends a millisecond before the next day's first period.
    day = Window(START, START + timedelta(days=1) - MS)
    assert series.periods_inside(day, "1d") == (START, START)
    assert series.periods_inside(Window(START, START + timedelta(days=1)), "1d") == (START, START)
    assert series.periods_inside(Window(START + MS, START + timedelta(days=1)), "1d") is None


def test_uncovered_edges_are_read_from_the_raw_readings():
    window = Window(START + timedelta(hours=3, minutes=20), START + timedelta(hours=12, minutes=30))
    rolled = [PeriodSum(ms(START + h * HOUR), 4, 1.0, 0) for h in range(4, 11)]  # 04:00..10:59
    assert series.uncovered(window, rolled, "1h") == [
        Window(window.start, START + 4 * HOUR - MS),
        Window(START + 11 * HOUR, window.end),
    ]
    whole = Window(START + 4 * HOUR, START + 11 * HOUR - MS)
    assert series.uncovered(whole, rolled, "1h") == []
