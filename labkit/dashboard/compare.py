"""The preview beside the notebook: each panel's data computed again, independently of the API,
from HBase or from the oracle, and the largest difference per panel explained.

    preview = dashboard.preview.collect(api_url)
    found = compare(preview, settings)                  # or expected=oracle.expected(...)
    comparison_table(found)                              # one row per panel
    found[0].figure()                                    # preview panel | notebook plot

The differences have causes a student can name:

* **downsampling**: the panel asked for at most ``maxDataPoints`` points (its width in pixels),
  so the API averaged the readings of each bucket; the notebook plots every reading;
* **roll-ups**: buckets of an hour or more are whole roll-up periods, read from ``iot_rollup``:
  each point is a period's mean, and the notebook's readings spread around it;
* **window edges**: a day on one side only (a day not closed yet, a meter's first day, a day
  the range cuts);
* **row cap**: a table lists at most ``maxDataPoints`` events;
* anything else is a **mismatch**, which the pipeline and the notebook should never show.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

import matplotlib.dates as mdates
import matplotlib.image
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from labkit import api, hbase, oracle, sensors
from labkit.config import Settings
from labkit.dashboard import draw
from labkit.dashboard.preview import PanelData, Preview
from labkit.hbase import layout

# Differences below this share of the values' size are float rounding, not a difference.
TOLERANCE = 1e-9


class Cause(StrEnum):
    """Why a panel differs from the notebook's own computation."""

    NONE = "none"
    DOWNSAMPLING = "downsampling"
    ROLLUPS = "roll-ups"
    WINDOW_EDGES = "window edges"
    ROW_CAP = "row cap"
    MISMATCH = "mismatch"


EXPLANATIONS = {
    Cause.NONE: "The panel draws exactly the values the notebook computes.",
    Cause.DOWNSAMPLING: (
        "Downsampling: the panel asks for at most maxDataPoints points (its width in pixels), "
        "so each point is the mean of a bucket of readings, at their mean time; the notebook "
        "plots every reading, which spreads around that mean."
    ),
    Cause.ROLLUPS: (
        "Roll-ups: the buckets span an hour or more, so the API read whole roll-up periods "
        "(iot_rollup) instead of every reading; each point is a period's mean, the readings "
        "the notebook plots spread around it."
    ),
    Cause.WINDOW_EDGES: (
        "Window edges: a day appears on one side only: a daily window not closed yet, a "
        "meter's first day without the day before, or a day the time range cuts."
    ),
    Cause.ROW_CAP: "Row cap: a table lists at most maxDataPoints events of the range.",
    Cause.MISMATCH: (
        "A mismatch: the panel and the notebook disagree on a value they both have. The "
        "pipeline and the notebook should never do that: look for the reason."
    ),
}


@dataclass
class SeriesComparison:
    """One metric of a panel: what the panel draws beside what the notebook computes."""

    metric: str
    drawn: pd.Series
    computed: pd.Series
    largest: float
    at: datetime | None
    cause: Cause


@dataclass
class PanelComparison:
    """A panel of the preview beside the notebook's own computation of its data."""

    data: PanelData
    preview: Preview
    source: str  # "HBase" or "the oracle"
    series: list[SeriesComparison]

    @property
    def title(self) -> str:
        return self.data.title

    @property
    def worst(self) -> SeriesComparison | None:
        return max(self.series, key=lambda s: s.largest, default=None)

    @property
    def largest(self) -> float:
        return self.worst.largest if self.worst else 0.0

    @property
    def cause(self) -> Cause:
        """The cause of the largest difference (a mismatch anywhere wins)."""
        if any(s.cause is Cause.MISMATCH for s in self.series):
            return Cause.MISMATCH
        return self.worst.cause if self.worst and self.worst.largest > 0 else Cause.NONE

    @property
    def explanation(self) -> str:
        return EXPLANATIONS[self.cause]

    @property
    def unit(self) -> str:
        """The unit of the differences: the values' own, or a count of events."""
        counted = self.data.kind == "table" or any(s.metric == "invalid" for s in self.series)
        return "short" if counted else self.data.unit_of("value")

    def figure(self) -> Figure:
        """The preview's panel (left) beside the notebook's plot of the same data (right)."""
        return side_by_side(self)


# --------------------------------------------------------------------------------------
# The differences, as pure functions of two series
# --------------------------------------------------------------------------------------


def _ms(index: pd.Index) -> np.ndarray:
    return (pd.DatetimeIndex(index) - pd.Timestamp(0)) // pd.Timedelta(milliseconds=1)


def line_difference(drawn: pd.Series, computed: pd.Series) -> tuple[float, datetime | None]:
    """The largest gap between a computed value and the panel's line at the same time (the
    line straight between the drawn points, as Grafana draws it)."""
    if drawn.empty or computed.empty:
        return 0.0, None
    line = np.interp(_ms(computed.index), _ms(drawn.index), drawn.to_numpy(dtype=float))
    gaps = np.abs(computed.to_numpy(dtype=float) - line)
    where = int(np.argmax(gaps))
    return float(gaps[where]), computed.index[where].to_pydatetime()


def day_difference(drawn: pd.Series, computed: pd.Series) -> tuple[float, datetime | None, bool]:
    """The largest difference between the values of the same day, a day on one side only
    counting its whole value; and whether that largest one is such an edge day."""
    both = pd.concat([drawn.rename("drawn"), computed.rename("computed")], axis=1)
    if both.empty:
        return 0.0, None, False
    edge = both.isna().any(axis=1)
    gaps = (both["drawn"].fillna(0) - both["computed"].fillna(0)).abs()
    day = gaps.idxmax()
    return float(gaps[day]), pd.Timestamp(day).to_pydatetime(), bool(edge[day])


def _negligible(largest: float, values: pd.Series) -> bool:
    scale = float(values.abs().max()) if not values.empty else 0.0
    return largest <= TOLERANCE * max(scale, 1.0)


def reads_rollups(span_ms: int, max_points: int) -> bool:
    """Whether the API answers a raw metric from roll-ups: when a bucket spans at least the
    shortest roll-up period (docs/architecture.md, "The API")."""
    shortest = min(sensors.ROLLUP_PERIODS.values()) // timedelta(milliseconds=1)
    return shortest * max_points <= span_ms + 1


def readings_cause(drawn: pd.Series, computed: pd.Series, rollups: bool, largest: float) -> Cause:
    """Why a panel of readings differs from every reading."""
    if _negligible(largest, computed) and len(drawn) == len(computed):
        return Cause.NONE
    if len(drawn) < len(computed):
        return Cause.ROLLUPS if rollups else Cause.DOWNSAMPLING
    return Cause.MISMATCH


# --------------------------------------------------------------------------------------
# The notebook's own data: HBase read directly, or the oracle
# --------------------------------------------------------------------------------------


def _window(frame: pd.DataFrame, column: str, start: datetime, end: datetime) -> pd.DataFrame:
    """Rows whose time lies in the range, both ends included (as the API reads)."""
    return frame[(frame[column] >= start) & (frame[column] <= end)]


def computed_series(
    metric: str,
    start: datetime,
    end: datetime,
    settings: Settings,
    expected: oracle.Expected | None,
) -> pd.Series:
    """The notebook's values of a raw or daily metric in the range, by time."""
    kind = api.CATALOGUE[metric].kind
    if kind == "raw":
        sensor = metric.removesuffix("_raw")
        if expected is not None:
            rows = _window(expected.raw[expected.raw["sensor"] == sensor], "timestamp", start, end)
            return pd.Series(rows["value"].to_numpy(), index=pd.DatetimeIndex(rows["timestamp"]))
        frame = hbase.read_series(settings, sensor, start, end + timedelta(seconds=1))
        return frame["value"]
    name = metric.removesuffix("_aggr")
    if expected is not None:
        daily = expected.daily[expected.daily["metric"] == name]
        days = pd.DatetimeIndex(pd.to_datetime(daily["day"]))
        series = pd.Series(daily["value"].to_numpy(), index=days)
    else:
        frame = hbase.read_series(settings, name, start.date(), end.date() + timedelta(days=1),
                                  kind=hbase.TableKind.DAILY)  # fmt: skip
        series = frame["value"]
    return series[(series.index >= start) & (series.index <= end)]


def _event_times(settings: Settings, kind: hbase.TableKind, key: str, start: datetime,
                 end: datetime) -> list[datetime]:  # fmt: skip
    rows = hbase.scan(settings, kind, key, start, end + timedelta(seconds=1))
    times = [layout.key_time(kind, row_key) for row_key, _ in rows]
    return [moment for moment in times if moment is not None]


def _compare_series(data: PanelData, preview: Preview, settings: Settings,
                    expected: oracle.Expected | None) -> list[SeriesComparison]:  # fmt: skip
    span, found = preview.span, []
    rollups = reads_rollups(span.span_ms, data.max_data_points)
    for metric, drawn in data.series().items():
        kind = api.CATALOGUE[metric].kind
        if kind == "invalid":  # counted per bucket: compare how many in all
            times = _event_times(settings, hbase.TableKind.INVALID, layout.INVALID_PREFIX,
                                 span.start, span.end)  # fmt: skip
            computed = pd.Series(1.0, index=pd.DatetimeIndex(times)).resample("1D").sum()
            largest = abs(float(drawn.sum()) - len(times))
            cause = Cause.NONE if largest == 0 else Cause.MISMATCH
            found.append(SeriesComparison(metric, drawn, computed, largest, None, cause))
        elif kind == "raw":
            computed = computed_series(metric, span.start, span.end, settings, expected)
            largest, at = line_difference(drawn, computed)
            cause = readings_cause(drawn, computed, rollups, largest)
            found.append(SeriesComparison(metric, drawn, computed, largest, at, cause))
        else:
            computed = computed_series(metric, span.start, span.end, settings, expected)
            largest, at, edge = day_difference(drawn, computed)
            if _negligible(largest, computed):
                cause, largest = Cause.NONE, 0.0
            else:
                cause = Cause.WINDOW_EDGES if edge else Cause.MISMATCH
            found.append(SeriesComparison(metric, drawn, computed, largest, at, cause))
    return found


def _compare_table(data: PanelData, preview: Preview, settings: Settings,
                   expected: oracle.Expected | None) -> list[SeriesComparison]:  # fmt: skip
    """A table of late readings or invalid messages: the events it lists."""
    span = preview.span
    tables = data.tables()
    listed = tables[0] if tables else pd.DataFrame(columns=["time"])
    metric = data.panel["targets"][0]["target"]
    if api.CATALOGUE[metric].kind == "late":
        sensor = metric.removesuffix("_late")
        if expected is not None:
            late = expected.late[expected.late["sensor"] == sensor]
            times = list(_window(late, "timestamp", span.start, span.end)["timestamp"])
        else:
            times = _event_times(settings, hbase.TableKind.LATE, sensor, span.start, span.end)
    else:
        times = _event_times(settings, hbase.TableKind.INVALID, layout.INVALID_PREFIX,
                             span.start, span.end)  # fmt: skip
    drawn = listed.groupby("time").size().astype(float) if len(listed) else pd.Series(dtype=float)
    computed = pd.Series(1.0, index=pd.DatetimeIndex(times)).groupby(level=0).sum()
    largest, at, _ = day_difference(drawn, computed)
    if largest == 0:
        cause = Cause.NONE
    elif len(listed) == data.max_data_points and len(times) > len(listed):
        cause = Cause.ROW_CAP
    else:
        cause = Cause.MISMATCH
    return [SeriesComparison(metric, drawn, computed, largest, at, cause)]


def compare(
    preview: Preview, settings: Settings, expected: oracle.Expected | None = None
) -> list[PanelComparison]:
    """Every panel of ``preview`` beside the notebook's own computation of its data: raw and
    daily values from the oracle's ``expected`` when given, else read from HBase directly;
    late and invalid events from HBase (late ones from the oracle when given)."""
    source = "the oracle" if expected is not None else "HBase"
    found = []
    for data in preview.panels:
        compared = (_compare_table if data.kind == "table" else _compare_series)(
            data, preview, settings, expected
        )
        found.append(PanelComparison(data, preview, source, compared))
    return found


def comparison_table(comparisons: list[PanelComparison]) -> pd.DataFrame:
    """One row per panel: points drawn and values computed, the largest difference (in the
    panel's unit) and its cause."""
    rows = []
    for item in comparisons:
        worst = item.worst
        rows.append({
            "panel": item.title,
            "metric": worst.metric if worst else "",
            "drawn": sum(len(s.drawn) for s in item.series),
            "computed": sum(len(s.computed) for s in item.series),
            "largest difference": draw.format_value(item.largest, item.unit),
            "at": worst.at if worst and worst.largest else None,
            "cause": str(item.cause),
        })  # fmt: skip
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------
# Side by side
# --------------------------------------------------------------------------------------


def _picture(figure: Figure) -> np.ndarray:
    buffer = io.BytesIO()
    FigureCanvasAgg(figure).print_png(buffer)
    buffer.seek(0)
    return matplotlib.image.imread(buffer, format="png")


def side_by_side(item: PanelComparison) -> Figure:
    """The preview's panel as drawn (left), the notebook's own plot of its data (right)."""
    figure = Figure(figsize=(14, 3.6), layout="constrained")
    picture = _picture(draw.panel_figure(item.preview, item.data))
    height, width = picture.shape[:2]
    left, right = figure.subplots(1, 2, width_ratios=[width / height, 2.4])
    left.imshow(picture)
    left.set_axis_off()
    left.set_title("A preview drawn from the dashboard's queries", fontsize=10)
    bars = item.data.kind == "table" or all(len(s.computed) <= 62 for s in item.series)
    for index, compared in enumerate(item.series):
        shade = draw.PALETTE[index % len(draw.PALETTE)]
        when = mdates.date2num(compared.computed.index)
        if bars:
            right.plot(when, compared.computed.to_numpy(), "o", color=shade, markersize=4,
                       label=f"{compared.metric} ({len(compared.computed)} values)")  # fmt: skip
        else:
            right.plot(when, compared.computed.to_numpy(), color=shade, linewidth=0.6,
                       label=f"{compared.metric} ({len(compared.computed)} readings)")  # fmt: skip
    right.set_xlim(mdates.date2num(item.preview.span.start), mdates.date2num(item.preview.span.end))
    right.xaxis.set_major_formatter(mdates.DateFormatter("%m/%d"))
    right.legend(fontsize=8, loc="best")
    right.grid(True, alpha=0.3)
    right.set_title(
        f"The notebook, from {item.source}: largest difference "
        f"{draw.format_value(item.largest, item.unit)} ({item.cause})",
        fontsize=10,
    )
    return figure
