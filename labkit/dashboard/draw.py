"""Drawing the preview: the dashboard's panels in its own grid, with matplotlib.

Panels sit where their ``gridPos`` puts them, at the pixel sizes Grafana gives them
(``sizing``), in the colours of Grafana's dark theme and its classic palette: titles, units on
the value axis, dashed threshold lines, legends below, bars for daily values, annotations as
dashed vertical lines, tables with their first rows. It is drawn from the API's answers to the
dashboard's own queries: close to what Grafana shows, but not Grafana's rendering.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

import matplotlib.dates as mdates
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch
from matplotlib.ticker import FuncFormatter, MaxNLocator

from labkit.dashboard import sizing

if TYPE_CHECKING:
    from labkit.dashboard.preview import PanelData, Preview

DPI = 100
HEADER_PX = 44
CANVAS = "#111217"
PANEL = "#181b1f"
BORDER = "#2c3235"
TEXT = "#ccccdc"
MUTED = "#8e8e9b"
GRID = "#2a2d33"
# Grafana's classic palette (palette-classic), in its order.
PALETTE = ["#7EB26D", "#EAB839", "#6ED0E0", "#EF843C", "#E24D42", "#1F78C1", "#BA43A9",
           "#705DA0", "#508642", "#CCA300"]  # fmt: skip
NAMED = {"green": "#73BF69", "red": "#F2495C", "orange": "#FF9830", "yellow": "#FADE2A",
         "blue": "#5794F2", "purple": "#B877D9"}  # fmt: skip
TITLE_PX = 32  # Grafana's panel header
PAD_PX = 8
LEGEND_PX = 22
XTICKS_PX = 20
YTICKS_PX = 58


def color(name: str) -> str:
    return NAMED.get(name, name)


# --------------------------------------------------------------------------------------
# Units, as Grafana's value formats show them
# --------------------------------------------------------------------------------------


def _scaled(value: float, base: str, steps: list[str], factor: float = 1000) -> str:
    index = 0
    while abs(value) >= factor and index < len(steps) - 1:
        value, index = value / factor, index + 1
    return f"{value:.4g} {steps[index]}{base}".rstrip()


def format_value(value: float, unit: str) -> str:
    """A value with its Grafana unit (``celsius``, ``watth``, ``m3``, ``short``, ``suffix:``)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if unit == "celsius":
        return f"{value:.4g} °C"
    if unit == "watth":
        return _scaled(value, "Wh", ["", "k", "M", "G"])
    if unit == "m3":
        return f"{value:.4g} m³"
    if unit == "s":
        for size, name in ((86_400, "day"), (3_600, "hour"), (60, "min")):
            if abs(value) >= size:
                return f"{value / size:.3g} {name}"
        return f"{value:.3g} s"
    if unit.startswith("suffix:"):
        return f"{value:.4g} {unit.split(':', 1)[1].strip()}"
    return _scaled(value, "", ["", "K", "Mil", "Bil"])  # short, and any other unit


# --------------------------------------------------------------------------------------
# Geometry: pixels of the dashboard to figure fractions
# --------------------------------------------------------------------------------------


class Canvas:
    """The figure as the dashboard's pixels: (left, top, width, height) to figure fractions.

    It shows ``columns`` x ``rows`` grid cells from the cell ``origin`` on, below a header.
    """

    def __init__(
        self,
        cell_px: float,
        columns: int,
        rows: int,
        header_px: int = HEADER_PX,
        origin: tuple[int, int] = (0, 0),
    ) -> None:
        self.cell_px, self.header_px, self.origin = cell_px, header_px, origin
        self.width_px = sizing.cells_to_px(columns, cell_px) + 2 * PAD_PX
        self.height_px = header_px + sizing.cells_to_px(rows, sizing.CELL_HEIGHT_PX) + PAD_PX

    def box(
        self, left: float, top: float, width: float, height: float
    ) -> tuple[float, float, float, float]:
        return (left / self.width_px, 1 - (top + height) / self.height_px,
                width / self.width_px, height / self.height_px)  # fmt: skip

    def grid(self, grid: dict) -> tuple[float, float, float, float]:
        """A gridPos in pixels: left, top, width, height."""
        step_x = self.cell_px + sizing.CELL_MARGIN_PX
        step_y = sizing.CELL_HEIGHT_PX + sizing.CELL_MARGIN_PX
        width = sizing.cells_to_px(grid["w"], self.cell_px)
        height = sizing.panel_height_px(grid["h"])
        left = PAD_PX + (grid["x"] - self.origin[0]) * step_x
        top = self.header_px + (grid["y"] - self.origin[1]) * step_y
        return left, top, width, height


# --------------------------------------------------------------------------------------
# Panels
# --------------------------------------------------------------------------------------


def _chrome(fig: Figure, canvas: Canvas, grid: dict, title: str) -> tuple[float, ...]:
    left, top, width, height = canvas.grid(grid)
    x, y, w, h = canvas.box(left, top, width, height)
    fig.patches.append(
        FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0,rounding_size=0.002",
                       transform=fig.transFigure, facecolor=PANEL, edgecolor=BORDER, linewidth=1,
                       zorder=-1)
    )  # fmt: skip
    fig.text((left + PAD_PX) / canvas.width_px, 1 - (top + TITLE_PX / 2) / canvas.height_px,
             title, color=TEXT, fontsize=9.5, fontweight="bold", va="center")  # fmt: skip
    return left, top, width, height


def _axes(fig: Figure, canvas: Canvas, area: tuple[float, ...], legend_lines: int) -> Axes:
    left, top, width, height = area
    bottom_px = XTICKS_PX + legend_lines * LEGEND_PX + PAD_PX
    ax = fig.add_axes(canvas.box(left + YTICKS_PX, top + TITLE_PX, width - YTICKS_PX - PAD_PX * 2,
                                 height - TITLE_PX - bottom_px))  # fmt: skip
    ax.set_facecolor(PANEL)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.tick_params(colors=MUTED, labelsize=7.5, length=0)
    ax.grid(True, color=GRID, linewidth=0.8)
    ax.set_axisbelow(True)
    return ax


def _time_axis(ax: Axes, start: datetime, end: datetime) -> None:
    ax.set_xlim(mdates.date2num(start), mdates.date2num(end))
    locator = mdates.AutoDateLocator(minticks=3, maxticks=8)
    ax.xaxis.set_major_locator(locator)
    span = end - start
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M" if span.days < 1 else "%m/%d"))


def _bar_width(series: dict[str, pd.Series]) -> float:
    """Grafana's bar width: 60 % of the smallest step between points (in days), the bar
    centred on its point."""
    steps = [s.index.to_series().diff().min() for s in series.values() if len(s) > 1]
    smallest = min(steps) if steps else pd.Timedelta(days=1)
    return 0.6 * smallest / pd.Timedelta(days=1)


def _thresholds(ax: Axes, panel: dict) -> None:
    defaults = panel.get("fieldConfig", {}).get("defaults", {})
    style = defaults.get("custom", {}).get("thresholdsStyle", {}).get("mode", "off")
    if style == "off":
        return
    low, high = ax.get_ylim()
    for step in defaults.get("thresholds", {}).get("steps", [])[1:]:
        if step.get("value") is not None and low <= step["value"] <= high:
            dashes = (0, (5, 5)) if "dashed" in style else "-"
            ax.axhline(step["value"], color=color(step["color"]), alpha=0.7, linewidth=1.5,
                       linestyle=dashes)  # fmt: skip


def _annotations(ax: Axes, preview: Preview) -> None:
    for event in preview.events:
        if preview.span.start <= event.time <= preview.span.end:
            at = mdates.date2num(event.time)
            ax.axvline(at, color=color(event.color), alpha=0.55, linewidth=0.8,
                       linestyle=(0, (3, 3)))  # fmt: skip
            ax.plot(at, 0, marker="^", markersize=4, color=color(event.color),
                    transform=ax.get_xaxis_transform(), clip_on=False)  # fmt: skip


def timeseries_panel(fig: Figure, canvas: Canvas, data: PanelData, preview: Preview) -> Axes:
    series = data.series()
    area = _chrome(fig, canvas, data.panel["gridPos"], data.title)
    ax = _axes(fig, canvas, area, legend_lines=1 if series else 0)
    _time_axis(ax, preview.span.start, preview.span.end)
    custom = data.panel.get("fieldConfig", {}).get("defaults", {}).get("custom", {})
    bars = custom.get("drawStyle") == "bars"
    width = _bar_width(series)
    for index, (name, values) in enumerate(series.items()):
        shade = PALETTE[index % len(PALETTE)]
        if bars:
            at = mdates.date2num(values.index)
            ax.bar(at, values.values, width=width, color=shade, alpha=0.7, edgecolor=shade,
                   linewidth=0.8, label=name)  # fmt: skip
        else:
            ax.plot(
                mdates.date2num(values.index), values.values, color=shade, linewidth=1, label=name
            )
    if not series or all(s.empty for s in series.values()):
        ax.text(0.5, 0.5, "No data", color=MUTED, ha="center", va="center",
                transform=ax.transAxes, fontsize=11)  # fmt: skip
        ax.set_yticks([])
    else:
        ax.yaxis.set_major_locator(MaxNLocator(nbins=5))
        formatter: Callable[[float, object], str] = lambda v, _: format_value(v, data.unit)  # noqa: E731
        ax.yaxis.set_major_formatter(FuncFormatter(formatter))
        ax.legend(loc="upper left", bbox_to_anchor=(-0.01, -0.1), ncol=max(len(series), 1),
                  frameon=False, fontsize=7.5, labelcolor=TEXT, handlelength=1.2,
                  columnspacing=1.2, borderaxespad=0)  # fmt: skip
    _thresholds(ax, data.panel)
    _annotations(ax, preview)
    return ax


def _cell(value: object, unit: str) -> str:
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, int | float):
        return format_value(float(value), unit)
    return "" if value is None else str(value)


def table_panel(fig: Figure, canvas: Canvas, data: PanelData) -> Axes:
    """The table's first rows, as many as the panel's height holds (Grafana scrolls)."""
    left, top, width, height = _chrome(fig, canvas, data.panel["gridPos"], data.title)
    ax = fig.add_axes(canvas.box(left + PAD_PX, top + TITLE_PX, width - 2 * PAD_PX,
                                 height - TITLE_PX - PAD_PX))  # fmt: skip
    ax.set_axis_off()
    tables = data.tables()
    frame = tables[0] if tables else pd.DataFrame()
    if frame.empty:
        ax.text(0.5, 0.5, "No data", color=MUTED, ha="center", va="center", fontsize=11)
        return ax
    area_px = height - TITLE_PX - PAD_PX
    row_px = 24
    shown = max(int(area_px // row_px) - 2, 1)  # a header row, and room for "rows 1-n of N"
    columns = list(frame.columns)
    units = [data.unit_of(column) for column in columns]
    texts = [[_cell(value, unit) for value, unit in zip(row, units, strict=True)]
             for row in frame.head(shown).itertuples(index=False)]  # fmt: skip
    # Column widths in proportion to their longest text.
    widest = [max([len(c)] + [len(t[i]) for t in texts]) for i, c in enumerate(columns)]
    chars_fit = (width - 2 * PAD_PX) / 6.2
    step = row_px / area_px
    x = 0.0
    for i, column in enumerate(columns):
        share = widest[i] / sum(widest)
        limit = max(int(share * chars_fit) - 1, 4)
        for r, text in enumerate([column] + [row[i] for row in texts]):
            fitted = text if len(text) <= limit else text[: limit - 1] + "…"
            weight = "bold" if r == 0 else "normal"
            ax.text(x, 1 - (r + 0.5) * step, fitted, color=TEXT, fontsize=7.5, fontweight=weight,
                    va="center", transform=ax.transAxes)  # fmt: skip
        x += share
    ax.axhline(1 - step, color=BORDER, linewidth=1)
    if len(frame) > shown:
        ax.text(1, 0, f"rows 1-{shown} of {len(frame)}", color=MUTED, fontsize=7, ha="right",
                va="bottom", transform=ax.transAxes)  # fmt: skip
    return ax


def dashboard_figure(preview: Preview) -> Figure:
    """The whole dashboard: its rows and panels in its grid, a header saying what it is."""
    board = preview.dashboard
    items = [p for p in board.get("panels", []) if "gridPos" in p]
    rows = max((p["gridPos"]["y"] + p["gridPos"]["h"] for p in items), default=1)
    canvas = Canvas(preview.screen.cell_px, sizing.GRID_COLUMNS, rows)
    fig = _figure(canvas)
    span = f"{preview.span.start:%Y-%m-%d %H:%M} to {preview.span.end:%Y-%m-%d %H:%M} UTC"
    fig.text(PAD_PX / canvas.width_px, 1 - 16 / canvas.height_px, preview.title, color=TEXT,
             fontsize=13, fontweight="bold", va="center")  # fmt: skip
    fig.text(PAD_PX / canvas.width_px, 1 - 34 / canvas.height_px,
             f"A preview drawn from the dashboard's queries (not Grafana): {span}",
             color=MUTED, fontsize=8.5, va="center")  # fmt: skip
    for item in items:
        if item.get("type") == "row":
            left, top, _, height = canvas.grid(item["gridPos"])
            fig.text((left + 2) / canvas.width_px, 1 - (top + height / 2) / canvas.height_px,
                     f"⌄  {item.get('title', '')}", color=TEXT, fontsize=10.5,
                     fontweight="bold", va="center")  # fmt: skip
    for data in preview.panels:
        _panel(fig, canvas, data, preview)
    return fig


def panel_figure(preview: Preview, data: PanelData) -> Figure:
    """One panel of the preview alone, at its size on the dashboard."""
    grid = data.panel["gridPos"]
    origin = (grid["x"], grid["y"])
    canvas = Canvas(preview.screen.cell_px, grid["w"], grid["h"], PAD_PX, origin)
    fig = _figure(canvas)
    _panel(fig, canvas, data, preview)
    return fig


def _figure(canvas: Canvas) -> Figure:
    size = (canvas.width_px / DPI, canvas.height_px / DPI)
    return Figure(figsize=size, dpi=DPI, facecolor=CANVAS)


def _panel(fig: Figure, canvas: Canvas, data: PanelData, preview: Preview) -> None:
    if data.kind == "table":
        table_panel(fig, canvas, data)
    else:
        timeseries_panel(fig, canvas, data, preview)
