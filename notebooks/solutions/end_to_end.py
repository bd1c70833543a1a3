"""Notebook 06."""

import pandas as pd

from labkit.dashboard.compare import PanelComparison


def largest_leak_day(daily: pd.DataFrame) -> str:
    """The day of the largest Wtot_AggDayRest in a table of daily metrics (metric, day, value)."""
    leak = daily[daily["metric"] == "Wtot_AggDayRest"]
    return f"{leak.loc[leak['value'].idxmax(), 'day']:%Y-%m-%d}"


def difference_cause(compared: PanelComparison) -> str:
    """The largest difference lies on a day the oracle computes and the panel does not draw:
    a daily window that has not closed yet (the watermark never passed the day's end)."""
    worst = compared.worst
    if worst is None or worst.at is None:
        return "none"
    return "window edges" if worst.at not in worst.drawn.index else "mismatch"
