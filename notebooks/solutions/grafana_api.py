"""Notebook 05."""

from datetime import datetime, timedelta

import pandas as pd

from labkit import api


def bucket_average(stored: pd.Series, day: datetime) -> float:
    """The first of 8 buckets over a day spans its first 3 hours: the mean of their readings."""
    first = stored[day : day + timedelta(hours=3) - timedelta(milliseconds=1)]
    return float(first.mean())


def leak_body(start: datetime, end: datetime) -> dict:
    """One target, the leak, as a table, over the whole period."""
    return api.panel_request(["Wtot_AggDayRest"], start, end, payload={"format": "table"})
