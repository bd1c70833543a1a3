"""Notebook 04."""

from datetime import date

import happybase
import pandas as pd

from labkit.hbase import Column, TableKind, layout

# <metric>#<YYYY-MM-DD HH:MM:SS>
ROW_KEY = "TH2#2024-01-02 06:30:00"


def row_key(metric: str, day: date) -> bytes:
    """The metric first, so that its days sit side by side; then the day as YYYY-MM-DD, whose
    text order is time order (the lab's own daily key)."""
    return layout.key(metric, day.strftime(layout.DAY_FORMAT))


def write_daily(table: happybase.Table, daily: pd.DataFrame) -> int:
    """One row per aggregate; the batch sends 1,000 mutations (500 rows) per round trip."""
    rows = zip(daily["metric"], daily["day"], daily["value"], daily["readings"], strict=True)
    with table.batch(batch_size=1000) as batch:
        for metric, day, value, readings in rows:
            batch.put(
                row_key(metric, day),
                # repr of a float keeps every digit: it reads back as the same number.
                {
                    Column.VALUE: layout.encode(float(value)),
                    Column.READINGS: layout.encode(readings),
                },
            )
    return len(daily)


def scan_month(
    table: happybase.Table, metric: str, year: int, month: int
) -> list[tuple[date, float]]:
    """One range scan from the month's first day (included) to the next month's (excluded)."""
    first = date(year, month, 1)
    after = date(year + month // 12, month % 12 + 1, 1)
    rows = table.scan(row_start=row_key(metric, first), row_stop=row_key(metric, after))
    month_days = []
    for key, columns in rows:
        day = layout.key_time(TableKind.DAILY, key)
        if day is not None:
            month_days.append((day.date(), float(columns[Column.VALUE])))
    return month_days
