"""The lab's layout measured against the original's (one table per sensor), on real HBase."""

from __future__ import annotations

import time
from datetime import date, timedelta

import pandas as pd

from labkit.config import Settings
from labkit.hbase import layout


def compare_layouts(settings: Settings, readings, day: date, repeats: int = 3) -> pd.DataFrame:
    """Time the lab's layout against the original's on the same readings (real HBase).

    The original kept one table per sensor and read a sensor by scanning its whole table;
    the lab keeps one raw table keyed ``<metric>#<time>`` and reads a time range by a range
    scan. Both layouts are written to scratch tables, queried ``repeats`` times (best time
    kept) and dropped. Returns one row per question and layout: rows read and seconds.
    """
    readings = list(readings)  # e.g. the valid on-time readings the raw table holds
    names = sorted({r.sensor for r in readings})
    prefix = f"{settings.hbase_table_prefix}_cmp"
    one_table = f"{prefix}_raw"
    per_sensor = {name: layout.per_sensor_table(f"{prefix}_orig", name) for name in names}
    scratch = [one_table, *per_sensor.values()]
    layout.drop_tables(settings, scratch)
    with layout.connection(settings) as conn:
        try:
            for table in scratch:
                layout.create_table(conn, table)
            with conn.table(one_table).batch(batch_size=5000) as batch:
                for r in readings:
                    batch.put(*layout.raw_row(r.sensor, layout.time_text(r.timestamp), r.value))
            for name, table in per_sensor.items():
                with conn.table(table).batch(batch_size=5000) as batch:
                    for r in (r for r in readings if r.sensor == name):
                        batch.put(*layout.per_sensor_row(layout.time_text(r.timestamp), r.value))

            def lab_one(name: str) -> int:
                start, stop = layout.key_range(name, day, day + timedelta(days=1))
                return sum(1 for _ in conn.table(one_table).scan(row_start=start, row_stop=stop))

            def original_one(name: str) -> int:
                # As the original API did: read the whole table, keep the wanted rows afterwards.
                return len(list(conn.table(per_sensor[name]).scan()))

            questions = {
                f"one sensor ({names[0]}), one day": lambda read: read(names[0]),
                "all sensors, one day": lambda read: sum(read(name) for name in names),
            }
            layouts = {
                "lab: one table, range scan": lab_one,
                "original: one table per sensor, full scan": original_one,
            }
            results = []
            for question, ask in questions.items():
                for layout_name, read in layouts.items():
                    best, rows = float("inf"), 0
                    for _ in range(repeats):
                        began = time.perf_counter()
                        rows = ask(read)
                        best = min(best, time.perf_counter() - began)
                    results.append(
                        {"question": question, "layout": layout_name, "rows read": rows,
                         "seconds": best}
                    )  # fmt: skip
            return pd.DataFrame(results)
        finally:
            existing = {name.decode() for name in conn.tables()}
            for table in scratch:
                if table in existing:
                    conn.delete_table(table, disable=True)
