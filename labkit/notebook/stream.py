"""Notebooks 03 and 06: event time and the watermark, and the daily results, as figures."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure


def watermark_figure(frame: pd.DataFrame) -> Figure:
    """Event time against arrival order, with the watermark; late readings in red.

    ``frame`` comes from ``labkit.oracle.with_watermark``.
    """
    figure = Figure(figsize=(13, 4.5))
    axes = figure.add_subplot()
    on_time = frame[~frame["late"]]
    late = frame[frame["late"]]
    axes.scatter(on_time["offset"], on_time["timestamp"], s=4, label="reading (event time)")
    axes.step(frame["offset"], frame["watermark"], where="post", color="orange",
              label="watermark when it arrived (newest time - 15 min)")  # fmt: skip
    axes.scatter(late["offset"], late["timestamp"], s=40, color="red", marker="x",
                 label="late: at or behind the watermark")  # fmt: skip
    axes.set_xlabel("arrival order (offset in input)")
    axes.set_ylabel("event time (m_timestamp)")
    axes.legend(loc="lower right")
    figure.tight_layout()
    return figure


DAILY_PANELS = [
    ("Temperatures: daily average (°C)", ["TH1", "TH2"]),
    ("Energy: daily sums (Wh)", ["HVAC1", "HVAC2", "MiAC1", "MiAC2"]),
    ("Energy meter: daily difference and rest (Wh)", ["Etot_DailyDiff", "Etot_AggDayRest"]),
    ("Water: W1 sum, meter difference, leak (m³)", ["W1", "Wtot_DailyDiff", "Wtot_AggDayRest"]),
]


def daily_figure(daily: pd.DataFrame) -> Figure:
    """The daily metrics (columns metric, day, value) in four panels."""
    figure = Figure(figsize=(13, 8))
    for axes, (title, metrics) in zip(figure.subplots(2, 2).flat, DAILY_PANELS, strict=True):
        for metric in metrics:
            rows = daily[daily["metric"] == metric].sort_values("day")
            axes.plot(pd.to_datetime(rows["day"]), rows["value"], ".-", label=metric)
        axes.set_title(title)
        axes.set_xlabel("day")
        axes.set_ylabel("value of the day")
        axes.legend(fontsize=8)
        axes.tick_params(axis="x", labelrotation=30, labelsize=8)
    figure.tight_layout()
    return figure
