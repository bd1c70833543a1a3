"""Notebook 05: the API's answers as tables, and beside what HBase holds."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure


def datapoints_frame(answer: list[dict]) -> pd.DataFrame:
    """The time series of a ``/query`` answer as one DataFrame: a column per target."""
    series = {
        item["target"]: pd.Series(
            [value for value, _ in item["datapoints"]],
            index=pd.to_datetime([ms for _, ms in item["datapoints"]], unit="ms"),
            dtype=float,
        )
        for item in answer
        if "datapoints" in item
    }
    frame = pd.DataFrame(series)
    frame.index.name = "time"
    return frame


def table_frame(item: dict) -> pd.DataFrame:
    """A table of a ``/query`` answer (``columns`` and ``rows``) as a DataFrame."""
    frame = pd.DataFrame(item["rows"], columns=[column["text"] for column in item["columns"]])
    for column in item["columns"]:
        if column.get("type") == "time":
            frame[column["text"]] = pd.to_datetime(frame[column["text"]], unit="ms")
    return frame


def comparison_figure(stored: pd.Series, served: pd.Series, title: str) -> Figure:
    """What HBase holds beside what the API served a panel, on the same axes scale."""
    figure = Figure(figsize=(13, 3.6))
    left, right = figure.subplots(1, 2, sharey=True)
    left.plot(stored.index, stored.values, ".-", color="#4c72b0")
    left.set_title(f"{title} in HBase: {len(stored)} readings", fontsize=10)
    right.plot(served.index, served.values, "o-", color="#dd8452")
    right.set_title(f"{title} as the panel gets it: {len(served)} points", fontsize=10)
    for axes in (left, right):
        axes.tick_params(labelsize=8)
        axes.grid(alpha=0.3)
    figure.autofmt_xdate()
    figure.tight_layout()
    return figure
