"""Notebook 04: the lab's tables, its layout measured against the original's, and where writes
land in a table of several regions, as tables and figures."""

from __future__ import annotations

import matplotlib.dates as mdates
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from labkit import hbase, oracle, sensors
from labkit.config import Settings
from labkit.hbase import TableKind, layout
from labkit.hbase.compare import FULL_SCANS, LAB

HOLDS = {
    TableKind.RAW: "every valid reading that arrived on time",
    TableKind.DAILY: "one row per daily metric and day (AVG, SUM, DIFF, REST)",
    TableKind.LATE: "readings that arrived behind the watermark, and how late",
    TableKind.INVALID: "messages that failed validation, with the reason",
    TableKind.ROLLUP: "per sensor and 1 h, 6 h, 12 h or 1 d period: sum, count, mean time",
}
# What a cell costs HBase besides its row key, family, qualifier and value (KeyValue format):
# key length (4), value length (4), row length (2), timestamp (8), type (1); the family's
# length byte takes the place of the ":" that the lab's column names count.
CELL_OVERHEAD = 19
COLOURS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3")


def tables_overview(settings: Settings) -> pd.DataFrame:
    """The lab's five tables: how many rows each holds, its first row key, its columns."""
    rows = []
    with hbase.connection(settings) as conn:
        existing = set(conn.tables())
        for kind in TableKind:
            name = hbase.table_name(settings, kind)
            first = None
            if name.encode() in existing:
                first = next(conn.table(name).scan(limit=1), None)
            rows.append(
                {
                    "table": name,
                    "rows": hbase.count_rows(settings, kind) if first else 0,
                    "first row key": layout.decode_text(first[0]) if first else "(empty)",
                    "columns": ", ".join(_qualifiers(first[1])) if first else "",
                    "holds": HOLDS[kind],
                }
            )
    return pd.DataFrame(rows).set_index("table")


def _qualifiers(columns: dict[bytes, bytes]) -> list[str]:
    return [layout.decode_text(name).split(":", 1)[1] for name in columns]


def simulated(days: float) -> oracle.Expected:
    """What the pipeline stores for ``days`` simulated days (the on-time readings, the daily
    aggregates...), computed by ``labkit.oracle`` from the simulator's messages, without Flink."""
    return oracle.expected(oracle.messages_frame(sensors.simulate(sensors.Scenario(days=days))))


def fresh_table(settings: Settings, suffix: str) -> str:
    """An empty table of the lab's shape (column family ``d``, one version) named
    ``<prefix>_<suffix>``, dropped first if it exists; returns its name."""
    name = f"{settings.hbase_table_prefix}_{suffix}"
    with hbase.connection(settings) as conn:
        if name.encode() in conn.tables():
            conn.delete_table(name, disable=True)
        layout.create_table(conn, name)
    return name


def stored_megabytes(readings: pd.DataFrame) -> float:
    """What ``readings`` (sensor, timestamp, value) take in the lab's raw table, in HBase's
    cell format before compression: keys, family, column name, value and each cell's fixed
    overhead (computed from the rows, not read from HBase's files)."""
    times = readings["timestamp"].dt.strftime(sensors.TIMESTAMP_FORMAT)  # as layout writes them
    total = 0
    for name, time, value in zip(readings["sensor"], times, readings["value"], strict=True):
        row_key, columns = layout.raw_row(name, time, value)
        total += sum(
            CELL_OVERHEAD + len(row_key) + len(column) + len(content)
            for column, content in columns.items()
        )
    return total / 1e6


def _dates(axes: Axes) -> None:
    locator = mdates.AutoDateLocator()
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def readings_figure(series: pd.DataFrame, title: str, unit: str) -> Figure:
    """One metric's values over time, as a range scan read them."""
    figure = Figure(figsize=(10, 3.2))
    axes = figure.subplots()
    axes.plot(series.index, series["value"], ".-", color=COLOURS[0])
    axes.set_title(title)
    axes.set_xlabel("time measured")
    axes.set_ylabel(unit)
    axes.grid(alpha=0.3)
    _dates(axes)
    figure.tight_layout()
    return figure


def layouts_figure(queries: pd.DataFrame) -> Figure:
    """Per question a dashboard asks: the rows each layout read and its best time."""
    designs = list(dict.fromkeys(zip(queries["layout"], queries["reads"], strict=True)))
    questions = list(dict.fromkeys(queries["question"]))
    figure = Figure(figsize=(13, 4))
    rows_axes, time_axes = figure.subplots(1, 2, sharey=True)
    height = 0.8 / len(designs)
    for index, (design, reads) in enumerate(designs):
        mine = queries[(queries["layout"] == design) & (queries["reads"] == reads)]
        mine = mine.set_index("question").loc[questions]
        places = [row + (index - (len(designs) - 1) / 2) * height for row in range(len(questions))]
        label = f"{design}, {reads}"
        rows_axes.barh(places, mine["rows read"], height, color=COLOURS[index], label=label)
        time_axes.barh(places, mine["seconds"] * 1000, height, color=COLOURS[index])
    rows_axes.set_yticks(range(len(questions)), questions)
    rows_axes.invert_yaxis()
    rows_axes.set_xlabel("rows read from HBase (log scale)")
    rows_axes.set_title("rows read", fontsize=10)
    time_axes.set_xlabel("best time of the runs (ms, log scale)")
    time_axes.set_title("time", fontsize=10)
    for axes in (rows_axes, time_axes):
        axes.set_xscale("log")
        axes.grid(alpha=0.3, axis="x")
    figure.legend(loc="upper center", ncols=len(designs), fontsize=8, frameon=False)
    figure.tight_layout(rect=(0, 0, 1, 0.9))
    return figure


def hotspot_figure(landed: pd.DataFrame) -> Figure:
    """Per way of keying: the rows written each week, coloured by the region that took them."""
    designs = list(dict.fromkeys(landed["keys"]))
    figure = Figure(figsize=(13, 4))
    panels = figure.subplots(1, len(designs), sharey=True)
    for axes, design in zip(panels, designs, strict=True):
        table = landed[landed["keys"] == design].pivot_table(
            index="week", columns="region", values="rows", aggfunc="sum", fill_value=0
        )
        bottom = pd.Series(0, index=table.index)
        for region in table.columns:
            colour = COLOURS[(region - 1) % len(COLOURS)]
            label = f"region {region}" if axes is panels[0] else None  # one legend entry each
            axes.bar(table.index, table[region], width=6, align="edge", bottom=bottom,
                     color=colour, label=label)  # fmt: skip
            bottom += table[region]
        axes.set_title(design, fontsize=10)
        axes.set_xlabel("week written (the readings arrive in time order)")
        axes.grid(alpha=0.3, axis="y")
        _dates(axes)
    panels[0].set_ylabel("rows written that week")
    figure.legend(loc="upper center", ncols=landed["region"].nunique(), fontsize=8, frameon=False)
    figure.tight_layout(rect=(0, 0, 1, 0.9))
    return figure


def newest_week(landed: pd.DataFrame) -> pd.DataFrame:
    """The share of the newest week's writes each region took: where live writes would go."""
    last = landed[landed["week"] == landed["week"].max()]
    table = last.pivot_table(index="keys", columns="region", values="rows", fill_value=0)
    shares = table.div(table.sum(axis=1), axis=0).mul(100).round(1)
    shares.columns = [f"region {region} (%)" for region in shares.columns]
    return shares


def full_scan_cost(queries: pd.DataFrame) -> pd.DataFrame:
    """Per question: the rows wanted, the rows the original's full scans read for them, and
    the best times of the lab's range scans and of the full scans."""
    rows = []
    for question, asked in queries.groupby("question", sort=False):
        lab = asked[asked["layout"] == LAB].iloc[0]
        full = asked[asked["reads"] == FULL_SCANS].iloc[0]
        rows.append(
            {
                "question": question,
                "rows wanted": lab["rows wanted"],
                "rows the full scans read": full["rows read"],
                "times as many": round(full["rows read"] / max(1, lab["rows wanted"]), 1),
                "lab, range scans (ms)": round(lab["seconds"] * 1000, 1),
                "full scans (ms)": round(full["seconds"] * 1000, 1),
            }
        )
    return pd.DataFrame(rows).set_index("question")
