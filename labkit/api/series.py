"""Downsampling: a range's readings as at most ``maxDataPoints`` points. Pure arithmetic.

When a range holds more points than the panel's ``maxDataPoints``, the range is cut into at
most ``maxDataPoints`` buckets and each non-empty bucket becomes one point: the average of its
values, stamped at the average time of its readings. The first and last points therefore never
lie outside the readings' own time span, and a straight line stays on that line.

Buckets narrower than an hour have equal widths. Wider ones are a whole number of the
pipeline's roll-up periods (1 h, 6 h, 12 h or 1 d: the coarsest that fits in an equal bucket),
aligned to their own width; a raw metric's buckets are then read from the coarsest roll-ups
that tile them (``iot_rollup``: sum, count and summed time of each sensor's readings per
period) for the periods wholly inside the range, and from the raw readings only at the range's
edges and after the last period rolled up so far. The points are those the raw readings give
in the same buckets, from a few hundred rows instead of every reading of a year.

The ``invalid`` time series counts the messages in each of ``maxDataPoints`` equal buckets,
stamped at the bucket's start.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from labkit import sensors
from labkit.api.parse import Window, from_ms

Point = tuple[int, float]  # (epoch ms, value)


@dataclass(frozen=True)
class PeriodSum:
    """Readings summed over a period (a roll-up, or one reading): their count, the sum of
    their values and the sum of their times (epoch ms)."""

    start_ms: int
    count: int
    total: float
    time_total: int


def as_sums(points: list[Point]) -> list[PeriodSum]:
    """Each reading as a period of its own."""
    return [PeriodSum(ms, 1, value, ms) for ms, value in points]


def period_ms(resolution: str) -> int:
    """The length of a roll-up period (``"1h"``, ``"6h"``, ``"12h"``, ``"1d"``) in ms."""
    return sensors.ROLLUP_PERIODS[resolution] // timedelta(milliseconds=1)


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


def buckets_for(window: Window, max_points: int) -> Buckets:
    """At most ``max_points`` buckets over the window (see the module doc): a whole number of
    the coarsest roll-up period that fits in an equal bucket, aligned to their own width, and
    read from the coarsest roll-ups that tile them."""
    start, end = window.start_ms, window.end_ms
    span = end - start + 1
    periods = sorted(sensors.ROLLUP_PERIODS, key=period_ms, reverse=True)
    fitting = next((p for p in periods if period_ms(p) * max_points <= span), None)
    if fitting is None:
        return Buckets(start, end, max_points)
    period = period_ms(fitting)
    width = period * -(-span // (period * max_points))
    while (end - (start - start % width)) // width + 1 > max_points:
        width += period
    read = next(p for p in periods if width % period_ms(p) == 0)
    return Buckets(start, end, max_points, read, width, start - start % width)


def downsample(sums: list[PeriodSum], buckets: Buckets) -> list[Point]:
    """One point per non-empty bucket: the mean value of its readings at their mean time."""
    merged: dict[int, list[float]] = {}
    for part in sums:
        bucket = merged.setdefault(buckets.index(part.start_ms), [0, 0.0, 0])
        bucket[0] += part.time_total
        bucket[1] += part.total
        bucket[2] += part.count
    return [(int(t // n), v / n) for t, v, n in (merged[i] for i in sorted(merged))]


def count_per_bucket(times: list[int], start_ms: int, end_ms: int, buckets: int) -> list[Point]:
    """How many of ``times`` fall in each of ``buckets`` equal buckets; (bucket start, count)."""
    span = end_ms - start_ms + 1
    counts: dict[int, int] = {}
    for ms in times:
        index = (ms - start_ms) * buckets // span
        counts[index] = counts.get(index, 0) + 1
    return [(start_ms + index * span // buckets, counts[index]) for index in sorted(counts)]


def periods_inside(window: Window, resolution: str) -> tuple[datetime, datetime] | None:
    """The starts of the first and last roll-up periods that lie wholly in the window; None
    when none does."""
    period = period_ms(resolution)
    first = -(-window.start_ms // period) * period
    last = (window.end_ms + 1) // period * period - period
    return (from_ms(first), from_ms(last)) if first <= last else None


def uncovered(window: Window, rolled: list[PeriodSum], resolution: str) -> list[Window]:
    """The parts of the window the roll-ups ``rolled`` (in time order) leave to the raw
    readings: before their first period, and after their last."""
    covered_from, covered_to = rolled[0].start_ms, rolled[-1].start_ms + period_ms(resolution)
    edges = []
    if covered_from > window.start_ms:
        edges.append(Window(window.start, from_ms(covered_from - 1)))
    if covered_to <= window.end_ms:
        edges.append(Window(from_ms(covered_to), window.end))
    return edges
