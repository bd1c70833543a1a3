"""The lab's layout measured against the original's, and where writes land, on the real HBase.

``compare_layouts`` writes the same readings (a year of every sensor, say) twice: in the lab's
layout (one table, keys ``<metric>#<time>``) and in the original's (one table per sensor, keys
``<time>``). Then it asks both the questions a dashboard asks (one sensor over a month, every
sensor over a day): with range scans in both layouts, and with full scans of the sensors'
tables as the original's API read them. It counts the rows read and keeps the best time of a
few runs.

``hotspots`` writes one sensor's readings, in the order they arrive, into two tables split into
the same number of regions: one keyed by time within the sensor (the lab's keys), one salted (a
hash bucket in front of the key). It reports which region holds the rows of each week, and what
the salt costs a range scan. Every table here is a scratch table, dropped afterwards.
"""

from __future__ import annotations

import contextlib
import heapq
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import partial
from typing import TypeVar

import happybase
import pandas as pd
from tqdm.auto import tqdm

from labkit.config import Settings
from labkit.hbase import layout, regions
from labkit.hbase.layout import Row
from labkit.sensors import TIMESTAMP_FORMAT

T = TypeVar("T")
WRITE_BATCH = 5000  # mutations per round trip, as the lab's writers send them
LAB = "lab: one table, <metric>#<time>"
PER_SENSOR = "original: one table per sensor, <time>"
RANGE_SCANS, FULL_SCANS = "range scans", "full scans, as the original's API"
ORDERED = "time-ordered keys (the lab's)"


@dataclass(frozen=True)
class Scan:
    """One scan of a query plan: a key range of a table, or (without bounds) all of it."""

    table: str
    row_start: bytes | None = None
    row_stop: bytes | None = None

    def rows(self, conn: happybase.Connection) -> Iterator[bytes]:
        """The row keys the scan reads (their values come along, as a dashboard needs them)."""
        scanner = conn.table(self.table).scan(row_start=self.row_start, row_stop=self.row_stop)
        return (row_key for row_key, _ in scanner)


@dataclass(frozen=True)
class LayoutComparison:
    writes: pd.DataFrame  # layout, tables, regions, rows, seconds
    queries: pd.DataFrame  # question, layout, reads, scans, rows read, rows wanted, seconds

    @property
    def lab_regions(self) -> int:
        """How many regions the lab's one table had once every reading was in."""
        return int(self.writes.set_index("layout").loc[LAB, "regions"])


@dataclass(frozen=True)
class Hotspots:
    landed: pd.DataFrame  # keys, region, week, rows: where each week's writes landed
    scans: pd.DataFrame  # question, keys, scans, rows read, seconds: the sensor read back
    split_keys: dict[str, list[bytes]]  # keys -> where its table was split into regions


def month_after(month: date) -> date:
    """The first day of the month after ``month``'s."""
    return (month.replace(day=28) + timedelta(days=4)).replace(day=1)


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day)


def _each_table(settings: Settings, names: list[str], do: Callable[..., None]) -> None:
    """``do(connection, name)`` for every table, in parallel: HBase's master creates and drops
    tables concurrently, and one at a time they take a second or more each."""

    def one(name: str) -> None:
        with layout.connection(settings) as conn:
            do(conn, name)

    with ThreadPoolExecutor(max_workers=max(1, min(len(names), 16))) as pool:
        list(pool.map(one, names))


def _drop_if_present(conn: happybase.Connection, name: str) -> None:
    if name.encode() in conn.tables():
        conn.delete_table(name, disable=True)


@contextlib.contextmanager
def _scratch(
    settings: Settings, names: list[str], create: bool = True
) -> Iterator[happybase.Connection]:
    """A connection, with the scratch tables ``names`` dropped before and afterwards (and
    created in between, unless the caller creates them)."""
    _each_table(settings, names, _drop_if_present)
    try:
        if create:
            _each_table(settings, names, layout.create_table)
        with layout.connection(settings) as conn:
            yield conn
    finally:
        _each_table(settings, names, _drop_if_present)


def _write(
    conn: happybase.Connection, rows: Iterable[tuple[str, Row]], total: int, what: str, show: bool
) -> float:
    """Put ``(table, row)`` pairs in batches, one per table; return the seconds it took."""
    began = time.perf_counter()
    with (
        contextlib.ExitStack() as batches_open,
        tqdm(total=total, unit="row", desc=what, disable=not show) as bar,
    ):
        batches: dict[str, happybase.Batch] = {}
        for done, (table, (row_key, columns)) in enumerate(rows, 1):
            if table not in batches:
                batch = conn.table(table).batch(batch_size=WRITE_BATCH)
                batches[table] = batches_open.enter_context(batch)
            batches[table].put(row_key, columns)
            if done % WRITE_BATCH == 0:
                bar.update(WRITE_BATCH)
        bar.update(total - bar.n)
    return time.perf_counter() - began  # the batches' last sends included


def _texts(readings: pd.DataFrame) -> list[tuple[str, str, float]]:
    """The readings as (sensor, time as keys hold it, value), in their order."""
    times = readings["timestamp"].dt.strftime(TIMESTAMP_FORMAT)  # layout.time_text, at once
    return list(zip(readings["sensor"], times, readings["value"], strict=True))


def _best_of(repeats: int, ask: Callable[[], T]) -> tuple[T, float]:
    """What ``ask`` answers, and its best time over ``repeats`` runs."""
    best = float("inf")
    for _ in range(max(1, repeats)):
        began = time.perf_counter()
        answer = ask()
        best = min(best, time.perf_counter() - began)
    return answer, best


# --------------------------------------------------------------------------------------
# The lab's layout against one table per sensor
# --------------------------------------------------------------------------------------


def compare_layouts(
    settings: Settings,
    readings: pd.DataFrame,
    month: date,
    day: date,
    sensor: str = "TH1",
    repeats: int = 3,
    show: bool = True,
) -> LayoutComparison:
    """Write ``readings`` (sensor, timestamp, value) in both layouts, then ask each one for
    ``sensor`` over ``month`` and for every sensor over ``day``, best of ``repeats`` runs."""
    readings = readings.sort_values("timestamp", kind="stable")  # the order they arrive in
    names = sorted(readings["sensor"].unique())
    prefix = f"{settings.hbase_table_prefix}_cmp"
    one_table = f"{prefix}_lab"
    per_sensor = {name: layout.per_sensor_table(f"{prefix}_orig", name) for name in names}
    texts = _texts(readings)
    with _scratch(settings, [one_table, *per_sensor.values()]) as conn:
        lab_seconds = _write(
            conn, ((one_table, layout.raw_row(*text)) for text in texts), len(texts),
            "lab layout", show,
        )  # fmt: skip
        per_sensor_seconds = _write(
            conn,
            ((per_sensor[name], layout.per_sensor_row(at, value)) for name, at, value in texts),
            len(texts), "one table per sensor", show,
        )  # fmt: skip
        writes = pd.DataFrame(
            [
                {"layout": LAB, "tables": 1, "regions": len(regions.regions(conn, one_table)),
                 "rows": len(texts), "seconds": lab_seconds},
                {"layout": PER_SENSOR, "tables": len(per_sensor),
                 "regions": sum(len(regions.regions(conn, t)) for t in per_sensor.values()),
                 "rows": len(texts), "seconds": per_sensor_seconds},
            ]
        )  # fmt: skip

        questions = {
            f"one sensor ({sensor}), {month:%B %Y}": (
                [sensor], _midnight(month.replace(day=1)), _midnight(month_after(month))
            ),
            f"all sensors, {day:%d %B %Y}": (
                names, _midnight(day), _midnight(day + timedelta(days=1))
            ),
        }  # fmt: skip
        results = []
        for question, (wanted, start, stop) in questions.items():
            plans = {
                (LAB, RANGE_SCANS): [
                    Scan(one_table, *layout.key_range(name, start, stop)) for name in wanted
                ],
                (PER_SENSOR, RANGE_SCANS): [
                    Scan(per_sensor[name], *layout.per_sensor_range(start, stop)) for name in wanted
                ],
                (PER_SENSOR, FULL_SCANS): [Scan(per_sensor[name]) for name in wanted],
            }
            for (layout_name, reads), plan in plans.items():
                (read, kept), seconds = _best_of(repeats, partial(_ask, conn, plan, start, stop))
                results.append(
                    {"question": question, "layout": layout_name, "reads": reads,
                     "scans": len(plan), "rows read": read, "rows wanted": kept,
                     "seconds": seconds}
                )  # fmt: skip
    return LayoutComparison(writes, pd.DataFrame(results))


def _ask(
    conn: happybase.Connection, plan: list[Scan], start: datetime, stop: datetime
) -> tuple[int, int]:
    """Run a plan: the rows it read, and how many of them lie in [start, stop)."""
    read = kept = 0
    for scan in plan:
        for row_key in scan.rows(conn):
            read += 1
            if scan.row_start is not None:  # a range scan reads only what it wants
                kept += 1
            else:  # a full scan of a sensor's table: the original kept the range afterwards
                moment = layout.decode_time(row_key)
                kept += moment is not None and start <= moment < stop
    return read, kept


# --------------------------------------------------------------------------------------
# Hot-spotting: where one sensor's writes land once its table has several regions
# --------------------------------------------------------------------------------------


def salted(buckets: int) -> str:
    return f"salted keys ({buckets} buckets)"


def hotspots(
    settings: Settings,
    readings: pd.DataFrame,
    sensor: str = "TH1",
    buckets: int = 4,
    repeats: int = 3,
) -> Hotspots:
    """Write ``sensor``'s readings (sensor, timestamp, value) in time order into two tables of
    ``buckets`` regions each, see where each week's rows landed (a keys-only scan of each
    region), and time reading the sensor's newest day and first month back from both.

    Keys ``<sensor>#<time>`` are split where they cut the sensor's rows into equal parts, as
    HBase's own splits at a region's middle key would cut them as the table grew; salted keys
    ``<bucket>#<sensor>#<time>`` are split at the buckets.
    """
    mine = readings[readings["sensor"] == sensor].sort_values("timestamp", kind="stable")
    if len(mine) < buckets:
        raise ValueError(f"{sensor} has {len(mine)} readings: too few for {buckets} regions")
    texts = _texts(mine)
    weeks = list(mine["timestamp"].dt.to_period("W").dt.start_time)
    ordered = [layout.raw_row(*text) for text in texts]
    prefix = settings.hbase_table_prefix
    designs = {
        ORDERED: (f"{prefix}_hot_ordered", ordered),
        salted(buckets): (
            f"{prefix}_hot_salted",
            [layout.salted_raw_row(buckets, *text) for text in texts],
        ),
    }
    split_keys = {
        ORDERED: [ordered[len(ordered) * part // buckets][0] for part in range(1, buckets)],
        salted(buckets): layout.salt_split_keys(buckets),
    }
    newest = mine["timestamp"].iloc[-1].date()
    first = mine["timestamp"].iloc[0].date().replace(day=1)
    questions = {
        f"{sensor}, {newest:%d %B %Y} (the newest day)": (newest, newest + timedelta(days=1)),
        f"{sensor}, {first:%B %Y}": (first, month_after(first)),
    }
    landed = []
    scans = []
    with _scratch(settings, [name for name, _ in designs.values()], create=False) as conn:
        regions.create_presplit(
            settings, {name: split_keys[design] for design, (name, _) in designs.items()}
        )
        for design, (name, rows) in designs.items():
            _write(conn, ((name, row) for row in rows), len(rows), design, show=False)
            week_of = {row_key: week for (row_key, _), week in zip(rows, weeks, strict=True)}
            for region, keys in enumerate(regions.keys_per_region(conn, name), 1):
                landed += [(design, region, week_of[row_key]) for row_key in keys]
        for question, (start, stop) in questions.items():
            for design, (name, _) in designs.items():
                plan = (
                    [Scan(name, *layout.key_range(sensor, start, stop))]
                    if design == ORDERED
                    else [
                        Scan(name, *bounds)
                        for bounds in layout.salted_key_ranges(buckets, sensor, start, stop)
                    ]
                )
                merged, seconds = _best_of(repeats, partial(_in_time_order, conn, plan))
                scans.append({"question": question, "keys": design, "scans": len(plan),
                              "rows read": len(merged), "seconds": seconds})  # fmt: skip
    per_week = pd.DataFrame(landed, columns=["keys", "region", "week"])
    counted = per_week.groupby(["keys", "region", "week"], sort=False).size()
    return Hotspots(counted.rename("rows").reset_index(), pd.DataFrame(scans), split_keys)


def _in_time_order(conn: happybase.Connection, plan: list[Scan]) -> list[bytes]:
    """Every key a plan reads, merged into the order of the unsalted keys: time order within
    one sensor. Each scan reads its range in that order already; a salted plan merges them."""
    if len(plan) == 1:
        return list(plan[0].rows(conn))
    return list(heapq.merge(*(list(scan.rows(conn)) for scan in plan), key=layout.unsalted))
