"""Reading the lab's tables back: one metric's time range is one range scan."""

from __future__ import annotations

from datetime import date, datetime

import pandas as pd

from labkit.config import Settings
from labkit.hbase import layout
from labkit.hbase.layout import Column, TableKind

Bound = datetime | date | str | None


def scan(
    settings: Settings,
    kind: TableKind | str,
    metric: str,
    start: Bound = None,
    end: Bound = None,
    limit: int | None = None,
) -> list[layout.Row]:
    """Rows of one metric with ``start <= time < end``, by one range scan (without ``start``
    or ``end``: from the metric's first row, to its last)."""
    row_start, row_stop = layout.key_range(metric, start, end)
    with layout.connection(settings) as conn:
        table = conn.table(layout.table_name(settings, kind))
        return list(table.scan(row_start=row_start, row_stop=row_stop, limit=limit))


def read_series(
    settings: Settings,
    metric: str,
    start: Bound = None,
    end: Bound = None,
    kind: TableKind | str = TableKind.RAW,
) -> pd.DataFrame:
    """A metric's values between ``start`` (included) and ``end`` (excluded), as a DataFrame.

    ``kind="raw"`` reads a sensor's readings (index: their time); ``kind="daily"`` reads a
    daily metric (index: the day; with the number of readings behind each value).
    """
    kind = TableKind(kind)
    daily = kind is TableKind.DAILY
    records = []
    for row_key, columns in scan(settings, kind, metric, start, end):
        record = {
            "time": pd.Timestamp(layout.key_parts(row_key)[1]),
            "value": float(columns[Column.VALUE]),
        }
        if daily:
            record["readings"] = int(columns[Column.READINGS])
        records.append(record)
    frame = pd.DataFrame.from_records(
        records, columns=["time", "value"] + (["readings"] if daily else [])
    )
    return frame.set_index("time")


def count_rows(settings: Settings, kind: TableKind | str) -> int:
    """How many rows a table holds (a full scan of keys only: for tests and summaries)."""
    with layout.connection(settings) as conn:
        table = conn.table(layout.table_name(settings, kind))
        return sum(1 for _ in table.scan(filter=b"KeyOnlyFilter()", batch_size=5000))


def has_rows(settings: Settings, kind: TableKind | str) -> bool:
    """True when the table exists and holds at least one row."""
    with layout.connection(settings) as conn:
        name = layout.table_name(settings, kind)
        if name.encode() not in conn.tables():
            return False
        return next(conn.table(name).scan(limit=1, filter=b"KeyOnlyFilter()"), None) is not None
