"""How Grafana sizes a panel's query: the panel's pixels from its ``gridPos``, then
``maxDataPoints`` and ``interval`` from them.

Grafana (12, dashboards as scenes) asks each panel's datasource for at most as many points as
the panel is wide in pixels, and an annotation query for as many as the browser window is wide.
Re-derived from Grafana's source, read at these files:

* grafana/scenes ``packages/scenes/src/components/layout/grid/SceneGridLayoutRenderer.tsx``:
  24 columns, 8 px between cells, no outer padding; a cell is
  ``(gridWidth - 23 * 8) / 24`` px wide and 30 px high, and an item of ``w`` cells
  ``round(w * (cell + 8) - 8)`` px (``cellToPixelSize``);
* grafana/scenes ``packages/scenes/src/components/VizPanel/VizPanelRenderer.tsx``: the query
  runner is told the measured width of that item, ``Math.round(width)``;
* grafana/scenes ``packages/scenes/src/querying/SceneQueryRunner.ts``: ``maxDataPoints`` is the
  panel's own ``maxDataPoints`` if set, else that width (``getMaxDataPoints``); ``interval``
  and ``intervalMs`` come from ``rangeUtil.calculateInterval(range, maxDataPoints,
  minInterval or the datasource's interval)``;
* grafana/grafana ``packages/grafana-data/src/datetime/rangeutil.ts``: ``calculateInterval``
  rounds ``(to - from) / maxDataPoints`` with ``roundInterval``'s table, raises it to the
  lower limit (1 ms by default) and names it with ``secondsToHms``;
* grafana/grafana ``public/app/features/annotations/executeAnnotationQuery.ts``: an annotation
  query gets ``window.innerWidth`` as ``maxDataPoints`` ("no more points than pixels").
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

GRID_COLUMNS = 24
CELL_HEIGHT_PX = 30
CELL_MARGIN_PX = 8


@dataclass(frozen=True)
class Screen:
    """The browser the dashboard would be opened in.

    ``window_px``: the window's inner width (what annotation queries ask for);
    ``grid_px``: the width of the dashboard's grid in it: the window less Grafana's page
    padding (16 px each side) with the side menu closed.
    """

    window_px: int = 1600
    grid_px: int = 1568

    @property
    def cell_px(self) -> float:
        return (self.grid_px - (GRID_COLUMNS - 1) * CELL_MARGIN_PX) / GRID_COLUMNS


def _js_round(value: float) -> int:
    """JavaScript's Math.round: halves go up (Python's round() goes to even)."""
    return math.floor(value + 0.5)


def cells_to_px(cells: int, cell_px: float) -> int:
    """The pixels of ``cells`` grid cells with the margins between them."""
    return max(_js_round(cells * (cell_px + CELL_MARGIN_PX) - CELL_MARGIN_PX), 0)


def panel_width_px(w: int, screen: Screen) -> int:
    return cells_to_px(w, screen.cell_px)


def panel_height_px(h: int) -> int:
    return cells_to_px(h, CELL_HEIGHT_PX)


def max_data_points(panel: dict, screen: Screen) -> int:
    """What Grafana sends as the panel's ``maxDataPoints``."""
    own = panel.get("maxDataPoints")
    return int(own) if own else panel_width_px(panel["gridPos"]["w"], screen)


# roundInterval: an interval below the first value (ms) becomes the second.
_ROUNDED_MS = (
    (10, 1), (15, 10), (35, 20), (75, 50), (150, 100), (350, 200), (750, 500),
    (1_500, 1_000), (3_500, 2_000), (7_500, 5_000), (12_500, 10_000), (17_500, 15_000),
    (25_000, 20_000), (45_000, 30_000), (90_000, 60_000), (210_000, 120_000),
    (450_000, 300_000), (750_000, 600_000), (1_050_000, 900_000), (1_500_000, 1_200_000),
    (2_700_000, 1_800_000), (5_400_000, 3_600_000), (9_000_000, 7_200_000),
    (16_200_000, 10_800_000), (32_400_000, 21_600_000), (86_400_000, 43_200_000),
    (604_800_000, 86_400_000), (1_814_400_000, 604_800_000), (3_628_800_000, 2_592_000_000),
)  # fmt: skip
_YEAR_MS = 31_536_000_000


def round_interval(interval_ms: float) -> int:
    return next((rounded for below, rounded in _ROUNDED_MS if interval_ms < below), _YEAR_MS)


_UNIT_MS = {"y": 31_536_000_000, "M": 2_592_000_000, "w": 604_800_000, "d": 86_400_000,
            "h": 3_600_000, "m": 60_000, "s": 1_000, "ms": 1}  # fmt: skip
_INTERVAL = re.compile(r"^(-?\d+(?:\.\d+)?)(ms|[Mwdhmsy])")


def interval_to_ms(text: str) -> int:
    """A Grafana interval (``10s``, ``1h``; a bare number is seconds) in milliseconds."""
    text = text.strip()
    if re.fullmatch(r"\d+", text):
        return int(text) * 1000
    found = _INTERVAL.match(text)
    if found is None:
        raise ValueError(f"{text!r} is not an interval such as 30s, 5m or 1h")
    return int(float(found.group(1))) * _UNIT_MS[found.group(2)]


def interval_text(interval_ms: int) -> str:
    """``secondsToHms``: the interval's largest non-zero unit, as Grafana names it (7d, 30m)."""
    rest = interval_ms
    for unit in ("y", "d", "h", "m", "s"):
        count, rest = divmod(rest, _UNIT_MS[unit])
        if count:
            return f"{count}{unit}"
    return f"{interval_ms}ms" if interval_ms >= 1 else "less than a millisecond"


def calculate_interval(span_ms: int, resolution: int, low_limit_ms: int = 1) -> tuple[int, str]:
    """``(intervalMs, interval)`` for a range of ``span_ms`` drawn in ``resolution`` points."""
    interval_ms = max(round_interval(span_ms / resolution), low_limit_ms)
    return interval_ms, interval_text(interval_ms)
