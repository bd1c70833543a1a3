"""Notebook 04's Build-it checks: a row key and a batch writer for the daily aggregates, then a
range scan of one metric's month, run against the real HBase.

Each check writes three months of daily aggregates (January to March 2024, from
``labkit.oracle``) with the student's own code into a scratch table, reads HBase back and
drops the table. The student's code gets a ``RecordingTable``: the real happybase table, which
also notes what was asked of it (each scan's range and the rows it read, each batch's round
trips, each single put), so that a check can tell a range scan from a full-table scan without
timing anything.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import itertools
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import date, datetime
from typing import Any

import happybase
import pandas as pd

from labkit import oracle, sensors
from labkit.config import Settings
from labkit.exercises.feedback import Checker, Verdict
from labkit.hbase import layout
from labkit.hbase.layout import Column

EXAMPLE = sensors.Scenario(days=91)  # 1 January to 31 March 2024
MONTH = (2024, 2)  # a leap February, with a month on either side
SCANNED = ("TH1", "Etot_DailyDiff")  # the metrics whose month the scan check asks for
ROWS_PER_ROUND_TRIP = 10  # fewer on average is not a batch writer


@functools.cache
def _example() -> pd.DataFrame:
    return oracle.expected(oracle.messages_frame(sensors.simulate(EXAMPLE))).daily


def example_daily() -> pd.DataFrame:
    """Three months of daily aggregates (metric, day, kind, value, readings), as Flink
    computes them (here by ``labkit.oracle``, without waiting for Flink): what the checks
    write with the student's code."""
    return _example().copy()


# --------------------------------------------------------------------------------------
# The real table, with a record of what the student's code asked of it
# --------------------------------------------------------------------------------------

_SCAN = inspect.signature(happybase.Table.scan)


class RecordingTable:
    """A happybase ``Table`` that forwards everything to the real table, and notes each scan's
    options and the rows it read, each batch's round trips and each single ``put``."""

    def __init__(self, table: happybase.Table) -> None:
        self.table = table
        self.scans: list[dict[str, Any]] = []
        self.rows_read = 0
        self.puts = 0
        self.round_trips = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.table, name)

    def scan(self, *args: Any, **kwargs: Any) -> Iterator[tuple[bytes, dict[bytes, bytes]]]:
        options = _SCAN.bind(self.table, *args, **kwargs).arguments
        self.scans.append({name: value for name, value in options.items() if name != "self"})
        return self._counted(self.table.scan(*args, **kwargs))

    def _counted(self, rows: Iterator[Any]) -> Iterator[Any]:
        for row in rows:
            self.rows_read += 1
            yield row

    def put(self, *args: Any, **kwargs: Any) -> None:
        self.puts += 1
        self.table.put(*args, **kwargs)

    def batch(self, *args: Any, **kwargs: Any) -> happybase.Batch:
        return _CountedBatch(self, self.table, *args, **kwargs)


class _CountedBatch(happybase.Batch):
    """A real happybase batch that counts its round trips (the sends that carry rows)."""

    def __init__(self, recorder: RecordingTable, table: happybase.Table, *args: Any, **kw: Any):
        super().__init__(table, *args, **kw)
        self._recorder = recorder
        self._pending = 0

    def put(self, row: bytes, data: dict, wal: bool | None = None) -> None:
        self._pending += 1
        super().put(row, data, wal)

    def send(self) -> None:
        if self._pending:
            self._recorder.round_trips += 1
            self._pending = 0
        super().send()


@contextlib.contextmanager
def _scratch_table(settings: Settings) -> Iterator[tuple[happybase.Connection, str]]:
    """A new, empty table of the lab's shape for one check, dropped afterwards."""
    name = f"{settings.hbase_table_prefix}_ex04_{uuid.uuid4().hex[:8]}"
    with layout.connection(settings) as conn:
        layout.create_table(conn, name)
        try:
            yield conn, name
        finally:
            conn.delete_table(name, disable=True)


# --------------------------------------------------------------------------------------
# What the student's code gives back, in comparable form
# --------------------------------------------------------------------------------------


def _as_key(made: object) -> bytes | None:
    if isinstance(made, bytes):
        return made
    return made.encode() if isinstance(made, str) else None


def _day_text(day: object) -> str:
    if isinstance(day, bytes):
        day = day.decode(errors="replace")
    if isinstance(day, datetime | date):
        return day.strftime(layout.DAY_FORMAT)
    return str(day)


def _aggregates(daily: pd.DataFrame) -> list[tuple[str, date, float]]:
    return list(zip(daily["metric"], daily["day"], daily["value"], strict=True))


def _keys(
    check: Checker, row_key: Callable[..., object], daily: pd.DataFrame
) -> dict[bytes, tuple[str, date, float]]:
    """Every aggregate's key as the student's ``row_key`` makes it; stops on a key that is
    not bytes, or on two aggregates that share a key."""
    made: dict[bytes, tuple[str, date, float]] = {}
    for metric, day, value in _aggregates(daily):
        raw = check.run(row_key, metric, day)
        row = _as_key(raw) or b""
        if not row:
            check.fail(
                f"`row_key({metric!r}, {day!r})` returns {raw!r}: a row key is bytes (or text)"
            )
        if row in made:
            other, other_day, _ = made[row]
            check.fail(
                f"{metric} on {day} and {other} on {other_day} get the same key {row!r}: the "
                "second put would overwrite the first"
            )
        made[row] = (metric, day, value)
    check.verdict.right.append(f"{len(made):,} aggregates, {len(made):,} different keys")
    return made


def _stored(conn: happybase.Connection, name: str) -> list[tuple[bytes, dict[bytes, bytes]]]:
    """Every row of the table, in HBase's key order (a full scan: this is the check's own
    read, to see what is there)."""
    return list(conn.table(name).scan(batch_size=5000))


# --------------------------------------------------------------------------------------
# 04.daily_writer: the row key and the batch writer
# --------------------------------------------------------------------------------------

WRITER_HINT = (
    "HBase keeps rows sorted by key, byte by byte, and reads a contiguous range of keys "
    "cheaply: think about which rows a dashboard reads together, and what must come first in "
    "the key for them to sit side by side. Text sorts in time order only if the time is "
    "written biggest unit first, with fixed widths. A `with table.batch(...) as batch:` block "
    "gathers puts and sends many per round trip."
)


def daily_writer(
    row_key: Callable[[str, date], bytes],
    write_daily: Callable[[happybase.Table, pd.DataFrame], int],
    settings: Settings,
) -> Verdict:
    """Check the student's row key and batch writer: every aggregate stored under its own key
    with its exact value, the keys of a metric side by side and in time order, few round
    trips."""
    daily = example_daily()
    with Checker("04.daily_writer", WRITER_HINT) as check:
        made = _keys(check, row_key, daily)
        with _scratch_table(settings) as (conn, name):
            table = RecordingTable(conn.table(name))
            written = check.run(write_daily, table, daily.copy())
            stored = _stored(conn, name)
        _check_stored(check, made, stored)
        check.expect(
            written == len(daily),
            f"`write_daily` returns {len(daily):,}, the rows it put",
            f"`write_daily` returns {written!r}; it was given {len(daily):,} rows to put",
        )
        _check_batched(check, table, len(daily))
        _check_order(check, made, [row_key for row_key, _ in stored])
    return check.verdict


def _check_stored(
    check: Checker,
    made: dict[bytes, tuple[str, date, float]],
    stored: list[tuple[bytes, dict[bytes, bytes]]],
) -> None:
    rows = dict(stored)
    missing = [key for key in made if key not in rows]
    if missing:
        check.fail(
            f"{len(missing):,} of {len(made):,} aggregates are not in HBase (e.g. "
            f"{missing[0]!r}): was every batch sent? A `with` block sends what is left at its end"
        )
    check.verdict.right.append(f"all {len(made):,} aggregates are in HBase")
    extra = [key for key in rows if key not in made]
    if extra:
        check.expect(False, "", f"{len(extra):,} rows whose keys `row_key` does not make, "
                     f"e.g. {extra[0]!r}")  # fmt: skip
    without = [key for key in made if Column.VALUE not in rows[key]]
    if without:
        check.fail(
            f"{len(without):,} rows have no column {Column.VALUE!r} (`hbase.Column.VALUE`): "
            f"{without[0]!r} has {sorted(rows[without[0]])}"
        )
    off = [
        (key, rows[key][Column.VALUE], value)
        for key, (_, _, value) in made.items()
        if layout.decode_number(rows[key][Column.VALUE]) != value
    ]
    if off:
        key, held, value = off[0]
        reads_as = layout.decode_number(held)
        why = (
            "which is not a number: `float()` cannot read it back"
            if reads_as is None
            else "; store the number as text that keeps every digit"
        )
        check.expect(
            False,
            "",
            f"{len(off):,} values do not read back as they were: {key!r} holds {held!r} for "
            f"{value!r}{', ' if reads_as is None else ''}{why}",
        )
    else:
        check.verdict.right.append("every value reads back exactly")


def _check_batched(check: Checker, table: RecordingTable, rows: int) -> None:
    if table.puts:
        check.expect(
            False,
            "",
            f"{table.puts:,} single `table.put` calls: each is a round trip to HBase (as the "
            "original wrote, one message at a time)",
        )
        return
    trips = table.round_trips
    check.expect(
        trips > 0 and rows / trips >= ROWS_PER_ROUND_TRIP,
        f"batched: {rows:,} rows in {trips:,} round trip{'s' if trips != 1 else ''}",
        f"{rows:,} rows in {trips:,} round trips: a batch that sends every few rows is "
        "hardly a batch",
    )


def _check_order(
    check: Checker, made: dict[bytes, tuple[str, date, float]], in_key_order: list[bytes]
) -> None:
    """HBase's own order (the scan's): each metric's rows side by side, and by day."""
    order = [made[key][:2] for key in in_key_order if key in made]
    days: dict[str, list[date]] = {}
    for metric, day in order:
        days.setdefault(metric, []).append(day)
    unordered = {metric: its for metric, its in days.items() if its != sorted(its)}
    if unordered:
        metric, its_days = next(iter(unordered.items()))
        check.expect(
            False,
            "",
            f"{len(unordered)} metrics' keys do not sort by day: HBase keeps {metric}'s "
            f"{_day_text(_first_out_of_order(its_days))} after a later day of {metric} (keys "
            "sort byte by byte)",
        )
    else:
        check.verdict.right.append("each metric's keys sort in time order")
    metrics = [metric for metric, _ in order]
    # A stretch starts where the metric differs from the row before.
    stretches = Counter(metrics[:1] + [b for a, b in itertools.pairwise(metrics) if a != b])
    cut = {metric: count for metric, count in stretches.items() if count > 1}
    if cut:
        metric, count = next(iter(cut.items()))
        check.expect(
            False,
            "",
            f"in HBase's key order, other metrics' rows cut {metric}'s rows into {count:,} "
            "separate stretches: one metric's month is not one range of keys",
        )
    else:
        check.verdict.right.append(
            "each metric's rows sit side by side: one metric's month is one range of keys"
        )


def _first_out_of_order(days: Sequence[date]) -> date:
    return next(after for before, after in itertools.pairwise(days) if after < before)


# --------------------------------------------------------------------------------------
# 04.month_scan: one metric's month, by one range scan
# --------------------------------------------------------------------------------------

SCAN_HINT = (
    "`table.scan(row_start=..., row_stop=...)` reads only the keys from row_start (included) "
    "to row_stop (excluded): your own `row_key` can make both bounds. Which day is the first "
    "one after the month? A filter, or an `if` in Python, still lets HBase read every row."
)


def month_scan(
    row_key: Callable[[str, date], bytes],
    write_daily: Callable[[happybase.Table, pd.DataFrame], int],
    scan_month: Callable[[happybase.Table, str, int, int], list],
    settings: Settings,
) -> Verdict:
    """Check the student's month scan: exactly the month's days of the metric, in order,
    with their values, read by a range scan that reads no other row."""
    daily = example_daily()
    year, month = MONTH
    with Checker("04.month_scan", SCAN_HINT) as check, _scratch_table(settings) as (conn, name):
        check.run(write_daily, conn.table(name), daily.copy())
        stored = len(_stored(conn, name))
        check.require(
            stored == len(daily),
            f"your writer stored the {len(daily):,} aggregates of January to March 2024",
            f"your writer stored {stored:,} of {len(daily):,} aggregates: make "
            "`write_daily` pass its check first",
        )
        for metric in SCANNED:
            table = RecordingTable(conn.table(name))
            answer = check.run(scan_month, table, metric, year, month)
            _check_month(check, table, answer, daily, metric)
    return check.verdict


def _check_month(
    check: Checker, table: RecordingTable, answer: object, daily: pd.DataFrame, metric: str
) -> None:
    year, month = MONTH
    wanted = daily[
        (daily["metric"] == metric) & daily["day"].map(lambda day: (day.year, day.month) == MONTH)
    ].sort_values("day")
    expected = [
        (_day_text(d), float(v)) for d, v in zip(wanted["day"], wanted["value"], strict=True)
    ]
    try:
        got = [(_day_text(day), float(value)) for day, value in answer]  # type: ignore[attr-defined]
    except (TypeError, ValueError) as error:
        check.fail(
            f"`scan_month` returned {type(answer).__name__}; expected a list of (day, value) "
            f"pairs ({error})"
        )
    month_name = f"{metric} in {date(year, month, 1):%B %Y}"
    said = f"{metric}: "
    if got != expected:
        check.expect(False, "", _difference(month_name, got, expected))
    else:
        check.verdict.right.append(f"{month_name}: all {len(expected)} days, in order")
    if not table.scans:
        check.fail("`scan_month` never calls `table.scan`: read the month with a range scan")
    check.expect(
        len(table.scans) == 1,
        f"{said}one scan",
        f"{said}{len(table.scans)} scans: one range scan can read the whole month",
    )
    unbounded = [
        options
        for options in table.scans
        if options.get("row_prefix") is None
        and (options.get("row_start") is None or options.get("row_stop") is None)
    ]
    if unbounded:
        options = {k: v for k, v in unbounded[0].items() if v is not None}
        check.expect(
            False,
            "",
            f"{said}a scan with {options or 'no options'}: without row_start and row_stop (or "
            "row_prefix) HBase reads on to the end of the table",
        )
    check.expect(
        table.rows_read <= len(expected),
        f"{said}it read {table.rows_read} rows from HBase, only the month's",
        f"{said}it read {table.rows_read:,} rows from HBase to answer {len(expected)}: the range "
        "holds more than the month",
    )


def _difference(what: str, got: list[tuple[str, float]], expected: list[tuple[str, float]]) -> str:
    """What is off in a month's answer: days missing or extra, the order, or the values."""
    got_days, expected_days = [d for d, _ in got], [d for d, _ in expected]
    missing = [d for d in expected_days if d not in got_days]
    extra = [d for d in got_days if d not in expected_days]
    if missing or extra:
        parts = [f"{what}: {len(got)} rows, expected {len(expected)}"]
        if missing:
            parts.append(f"missing {_few(missing)}")
        if extra:
            parts.append(f"not of the month: {_few(extra)}")
        return "; ".join(parts)
    if got_days != expected_days:
        return f"{what}: the right days, but not in time order"
    day, value = next(g for g, e in zip(got, expected, strict=True) if g != e)
    right = dict(expected)[day]
    return f"{what}: {day} has the value {value!r}, but {right!r} was stored"


def _few(days: list[str]) -> str:
    return ", ".join(days[:3]) + (" ..." if len(days) > 3 else "")
