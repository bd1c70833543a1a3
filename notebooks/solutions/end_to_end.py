"""Notebook 06."""

import pandas as pd


def largest_leak_day(daily: pd.DataFrame) -> str:
    """The day of the largest Wtot_AggDayRest in a table of daily metrics (metric, day, value)."""
    leak = daily[daily["metric"] == "Wtot_AggDayRest"]
    return f"{leak.loc[leak['value'].idxmax(), 'day']:%Y-%m-%d}"
