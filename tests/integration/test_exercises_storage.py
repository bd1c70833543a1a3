"""Notebook 04's Build-it checks against the real HBase: the reference solution passes, the
untouched skeleton is "not yet", and deliberately wrong row keys, writers and scans are wrong."""

from __future__ import annotations

from datetime import date

import happybase
import pandas as pd
import pytest

from labkit.exercises import Status, storage
from labkit.hbase import Column
from notebooks.solutions import hbase as solution


def skeleton_row_key(metric: str, day: date) -> bytes:
    """The notebook's skeleton."""
    ...


def skeleton_write_daily(table: happybase.Table, daily: pd.DataFrame) -> int:
    """The notebook's skeleton."""
    ...


def skeleton_scan_month(table: happybase.Table, metric: str, year: int, month: int) -> list:
    """The notebook's skeleton."""
    ...


def day_first_key(metric: str, day: date) -> bytes:
    """Unique and in time order, but a metric's days are scattered among the others'."""
    return f"{day:%Y-%m-%d}#{metric}".encode()


def european_day_key(metric: str, day: date) -> bytes:
    """The metric first, but DD-MM-YYYY does not sort in time order."""
    return f"{metric}#{day:%d-%m-%Y}".encode()


def metric_only_key(metric: str, day: date) -> bytes:
    """Every day of a metric on one row: each put overwrites the day before."""
    return metric.encode()


def write_two_decimals(table: happybase.Table, daily: pd.DataFrame) -> int:
    """Batched, but the values lose their digits."""
    with table.batch(batch_size=1000) as batch:
        for metric, day, value in zip(daily["metric"], daily["day"], daily["value"], strict=True):
            batch.put(solution.row_key(metric, day), {Column.VALUE: f"{value:.2f}".encode()})
    return len(daily)


def write_one_at_a_time(table: happybase.Table, daily: pd.DataFrame) -> int:
    """The original's pattern: one put, one round trip, per row."""
    for metric, day, value in zip(daily["metric"], daily["day"], daily["value"], strict=True):
        table.put(solution.row_key(metric, day), {Column.VALUE: repr(float(value)).encode()})
    return len(daily)


def write_tiny_batches(table: happybase.Table, daily: pd.DataFrame) -> int:
    """A batch that sends every row at once is no batch."""
    with table.batch(batch_size=1) as batch:
        for metric, day, value in zip(daily["metric"], daily["day"], daily["value"], strict=True):
            batch.put(solution.row_key(metric, day), {Column.VALUE: repr(float(value)).encode()})
    return len(daily)


def write_without_sending(table: happybase.Table, daily: pd.DataFrame) -> int:
    """Puts gathered in a batch that is never sent."""
    batch = table.batch()
    for metric, day, value in zip(daily["metric"], daily["day"], daily["value"], strict=True):
        batch.put(solution.row_key(metric, day), {Column.VALUE: repr(float(value)).encode()})
    return len(daily)


def _values(rows) -> list[tuple[date, float]]:
    return [
        (date.fromisoformat(key.decode().split("#")[1]), float(columns[Column.VALUE]))
        for key, columns in rows
    ]


def scan_whole_table(table: happybase.Table, metric: str, year: int, month: int) -> list:
    """The right answer, from a full-table scan filtered in Python."""
    rows = [
        (key, columns) for key, columns in table.scan() if key.startswith(f"{metric}#".encode())
    ]
    return [(day, value) for day, value in _values(rows) if (day.year, day.month) == (year, month)]


def scan_with_a_filter(table: happybase.Table, metric: str, year: int, month: int) -> list:
    """The right answer, but the region server still reads the whole table."""
    prefix = f"{metric}#{year}-{month:02d}"
    return _values(table.scan(filter=f"PrefixFilter('{prefix}')".encode()))


def scan_the_whole_metric(table: happybase.Table, metric: str, year: int, month: int) -> list:
    """A range scan of the metric's every day, the month kept in Python."""
    rows = _values(table.scan(row_prefix=f"{metric}#".encode()))
    return [(day, value) for day, value in rows if (day.year, day.month) == (year, month)]


def scan_without_the_last_day(table: happybase.Table, metric: str, year: int, month: int) -> list:
    """row_stop is excluded: stopping at the month's last day loses it."""
    first, last = date(year, month, 1), date(year, month, 29)
    return _values(
        table.scan(
            row_start=solution.row_key(metric, first), row_stop=solution.row_key(metric, last)
        )
    )


def scan_a_day_at_a_time(table: happybase.Table, metric: str, year: int, month: int) -> list:
    """The right rows, but one scan per day."""
    days = pd.date_range(date(year, month, 1), periods=29).date
    return [
        pair
        for day in days
        for pair in _values(table.scan(row_prefix=solution.row_key(metric, day)))
    ]


def test_the_reference_solution_passes(stack):
    assert storage.daily_writer(solution.row_key, solution.write_daily, stack).passed
    verdict = storage.month_scan(solution.row_key, solution.write_daily, solution.scan_month, stack)
    assert verdict.passed, verdict.text()


def test_the_skeletons_are_not_yet(stack):
    writer = storage.daily_writer(skeleton_row_key, skeleton_write_daily, stack)
    assert writer.status is Status.NOT_YET
    assert "`skeleton_row_key`" in writer.text()
    # With a writer that works, the scan's own skeleton is what is missing.
    for write in (skeleton_write_daily, solution.write_daily):
        scan = storage.month_scan(solution.row_key, write, skeleton_scan_month, stack)
        assert scan.status is Status.NOT_YET


@pytest.mark.parametrize(
    ("row_key", "complaint"),
    [
        (day_first_key, "separate stretches"),
        (european_day_key, "do not sort by day"),
        (metric_only_key, "the same key"),
    ],
)
def test_row_keys_that_break_the_design_are_wrong(stack, row_key, complaint):
    # The solution's writer, but with the wrong key.
    def write(table, daily):
        with table.batch(batch_size=1000) as batch:
            for metric, day, value in zip(
                daily["metric"], daily["day"], daily["value"], strict=True
            ):
                batch.put(row_key(metric, day), {Column.VALUE: repr(float(value)).encode()})
        return len(daily)

    verdict = storage.daily_writer(row_key, write, stack)
    assert verdict.status is Status.WRONG
    assert complaint in verdict.text()


@pytest.mark.parametrize(
    ("write_daily", "complaint"),
    [
        (write_two_decimals, "do not read back"),
        (write_one_at_a_time, "single `table.put`"),
        (write_tiny_batches, "round trips"),
        (write_without_sending, "not in HBase"),
    ],
)
def test_writers_that_lose_digits_rows_or_round_trips_are_wrong(stack, write_daily, complaint):
    verdict = storage.daily_writer(solution.row_key, write_daily, stack)
    assert verdict.status is Status.WRONG
    assert complaint in verdict.text()


@pytest.mark.parametrize(
    ("scan_month", "complaint"),
    [
        (scan_whole_table, "reads on to the end of the table"),
        (scan_with_a_filter, "reads on to the end of the table"),
        (scan_the_whole_metric, "the range holds more than the month"),
        (scan_without_the_last_day, "missing 2024-02-29"),
        (scan_a_day_at_a_time, "29 scans"),
    ],
)
def test_scans_that_read_too_much_or_too_little_are_wrong(stack, scan_month, complaint):
    verdict = storage.month_scan(solution.row_key, solution.write_daily, scan_month, stack)
    assert verdict.status is Status.WRONG
    assert complaint in verdict.text()


def test_a_day_first_key_makes_a_month_read_every_metric(stack):
    """With the day first, a month's range scan reads the month of every metric."""

    def scan_month_day_first(table, metric, year, month):
        first, after = date(year, month, 1), date(year, month + 1, 1)
        rows = table.scan(
            row_start=f"{first:%Y-%m-%d}".encode(), row_stop=f"{after:%Y-%m-%d}".encode()
        )
        return [
            (date.fromisoformat(key.decode()[:10]), float(columns[Column.VALUE]))
            for key, columns in rows
            if key.decode().endswith(f"#{metric}")
        ]

    def write(table, daily):
        with table.batch(batch_size=1000) as batch:
            for metric, day, value in zip(
                daily["metric"], daily["day"], daily["value"], strict=True
            ):
                batch.put(day_first_key(metric, day), {Column.VALUE: repr(float(value)).encode()})
        return len(daily)

    verdict = storage.month_scan(day_first_key, write, scan_month_day_first, stack)
    assert verdict.status is Status.WRONG
    daily = storage.example_daily()
    february = daily["day"].map(lambda day: (day.year, day.month) == (2024, 2)).sum()
    assert f"it read {february:,} rows from HBase to answer 29" in verdict.text()
