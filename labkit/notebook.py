"""What the notebooks show: figures, tables, sliders and live views.

Every function here returns an object (a matplotlib Figure, a DataFrame, a widget) or draws
through a ``display`` callable, so that each can be tested without a browser.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

import ipywidgets as widgets
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from labkit import api, hbase, kafka, sensors
from labkit.config import Settings
from labkit.pipeline import LiveSimulation


def _show_figures_as_png() -> None:
    """In a Jupyter kernel, render the Figure objects this module returns as PNG images.

    pyplot does this when ``%matplotlib inline`` is on; these figures do not go through
    pyplot (so that a cell never shows the same figure twice), so the formatter is set here.
    """
    try:
        from IPython import get_ipython
    except ImportError:  # not in IPython: nothing to render
        return
    shell = get_ipython()
    if shell is not None and getattr(shell, "kernel", None) is not None:
        from matplotlib_inline.backend_inline import set_matplotlib_formats

        set_matplotlib_formats("png")


_show_figures_as_png()

# --------------------------------------------------------------------------------------
# 00: the lab at a glance
# --------------------------------------------------------------------------------------

LAYERS = [
    ("sensors", "labkit.sensors\n10 simulated sensors"),
    ("Kafka", "topic input\n(broker)"),
    ("Flink SQL", "validate, late,\ndaily windows"),
    ("Kafka", "output_raw, output_aggr,\ninput_late, input_invalid,\noutput_rollup"),
    ("HBase", "iot_raw, iot_daily,\niot_late, iot_invalid,\niot_rollup"),
    ("API", "labkit.api\n(Grafana JSON)"),
    ("Grafana", "dashboards\n& notebooks"),
]


def architecture() -> Figure:
    """The lab's layers, left to right, as a picture."""
    figure = Figure(figsize=(13, 2.6))
    axes = figure.add_subplot()
    axes.set_xlim(0, len(LAYERS) * 2)
    axes.set_ylim(0, 2)
    axes.axis("off")
    for index, (title, text) in enumerate(LAYERS):
        x = index * 2 + 0.15
        axes.add_patch(
            FancyBboxPatch((x, 0.35), 1.7, 1.3, boxstyle="round,pad=0.05", facecolor="#e8f0fe")
        )
        axes.text(x + 0.85, 1.35, title, ha="center", va="center", weight="bold", fontsize=11)
        axes.text(x + 0.85, 0.8, text, ha="center", va="center", fontsize=8)
        if index:
            axes.add_patch(
                FancyArrowPatch(
                    (x - 0.3, 1.0), (x + 0.05, 1.0), arrowstyle="-|>", mutation_scale=15
                )
            )
    figure.tight_layout()
    return figure


def health(settings: Settings) -> pd.DataFrame:
    """The lab's services: state (ready, starting, stopped), pid and ports."""
    from labkit import services

    rows = [
        {
            "service": row.service,
            "state": row.state,
            "pid": row.pid,
            "ports": ", ".join(f"{role} {port}" for role, port in row.ports.items()),
        }
        for row in services.status(settings)
    ]
    return pd.DataFrame(rows).set_index("service")


def catalogue() -> pd.DataFrame:
    """The sensor catalogue as a table."""
    rows = []
    for s in sensors.CATALOGUE:
        simulated = f"U({s.low:g}, {s.high:g})" if s.kind is sensors.SensorKind.INTERVAL else ""
        if s.kind is sensors.SensorKind.METER:
            simulated = f"+{s.daily_growth:g} ± {s.growth_spread:g} a day"
        elif s.kind is sensors.SensorKind.EVENT:
            simulated = "1 at a few random instants a day"
        rows.append(
            {
                "sensor": s.name,
                "measures": s.description,
                "unit": s.unit,
                "kind": s.kind,
                "simulated": simulated,
                "valid range": f"{s.valid_min:g} .. {s.valid_max:g}",
                "daily aggregate": s.aggregate,
            }
        )
    return pd.DataFrame(rows).set_index("sensor")


# --------------------------------------------------------------------------------------
# 01: the sensors
# --------------------------------------------------------------------------------------


def readings_frame(readings: Iterable[sensors.Reading]) -> pd.DataFrame:
    """Readings as a table: sensor, value, timestamp, sent_at and how late each was sent."""
    frame = pd.DataFrame(
        [(r.sensor, r.value, r.timestamp, r.sent_at) for r in readings],
        columns=["sensor", "value", "timestamp", "sent_at"],
    )
    frame["delay"] = frame["sent_at"] - frame["timestamp"]
    return frame


def sensor_overview(readings: Iterable[sensors.Reading]) -> Figure:
    """Each interval sensor's distribution, and one day of sending: who sends when."""
    frame = readings_frame(readings)
    interval = [s for s in sensors.CATALOGUE if s.kind is sensors.SensorKind.INTERVAL]
    figure = Figure(figsize=(14, 7))
    grid = figure.add_gridspec(2, len(interval))
    for column, sensor in enumerate(interval):
        axes = figure.add_subplot(grid[0, column])
        on_time = frame[(frame["sensor"] == sensor.name) & (frame["delay"] == pd.Timedelta(0))]
        axes.hist(on_time["value"], bins=20, color="#4c72b0")
        axes.set_title(f"{sensor.name} ({sensor.unit})", fontsize=9)
        axes.tick_params(labelsize=7)
    timeline = figure.add_subplot(grid[1, :])
    first_day = frame["sent_at"].min().normalize()
    day = frame[frame["sent_at"] < first_day + pd.Timedelta(days=1)]
    names = [s.name for s in sensors.CATALOGUE]
    late = day["delay"] >= pd.Timedelta(days=1)
    timeline.scatter(day.loc[~late, "timestamp"], day.loc[~late, "sensor"].map(names.index), s=6)
    timeline.scatter(
        day.loc[late, "sent_at"], day.loc[late, "sensor"].map(names.index), s=30, marker="x",
        color="red", label="late W1 reading (sent now, stamped days ago)",
    )  # fmt: skip
    timeline.set_yticks(range(len(names)), names)
    timeline.set_title("The first day: when each sensor sends (dots at the time it measured)")
    timeline.legend(loc="upper right", fontsize=8)
    figure.tight_layout()
    return figure


def live_figure(live: LiveSimulation, sensor: str = "TH1") -> Figure:
    """A running simulation: messages per sensor so far, and one sensor's recent readings."""
    figure = Figure(figsize=(13, 3.8))
    counts, series = figure.subplots(1, 2, width_ratios=[1, 2])
    names = [s.name for s in sensors.CATALOGUE]
    counts.barh(names, [live.per_sensor.get(name, 0) for name in names], color="#55a868")
    counts.set_title(f"messages sent: {live.sent:,}")
    recent = [r for r in list(live.recent) if r.sensor == sensor]
    on_time = [r for r in recent if r.sent_at == r.timestamp]
    late = [r for r in recent if r.sent_at - r.timestamp >= sensors.TICK]
    series.plot([r.timestamp for r in on_time], [r.value for r in on_time], ".-", ms=3)
    if late:
        series.plot([r.timestamp for r in late], [r.value for r in late], "rx", label="late")
        series.legend(loc="upper left")
    series.set_title(f"{sensor}, simulated time now {live.simulated_now:%Y-%m-%d %H:%M}")
    figure.autofmt_xdate()
    figure.tight_layout()
    return figure


def knob_panel(live: LiveSimulation) -> widgets.Widget:
    """Sliders wired to a running simulation: each change applies at the next tick."""
    scenario = live.scenario
    style = {"description_width": "150px"}
    layout = widgets.Layout(width="460px")
    speed = widgets.FloatLogSlider(
        value=live.speed, base=10, min=1, max=5, step=0.1, style=style, layout=layout,
        description="speed (sim s / s)",
    )  # fmt: skip
    speed.observe(lambda change: setattr(live, "speed", change["new"]), names="value")
    rates = []
    for sensor in (s for s in sensors.CATALOGUE if s.kind is sensors.SensorKind.INTERVAL):
        slider = widgets.IntSlider(
            value=scenario.every.get(sensor.name, 1), min=0, max=8, style=style, layout=layout,
            description=f"{sensor.name}: 1 per N ticks",
        )  # fmt: skip
        slider.observe(_rate_setter(live, sensor.name), names="value")
        rates.append(slider)
    late = []
    for field, days in (("late_2d_every", 2), ("late_10d_every", 10)):
        slider = widgets.IntSlider(
            value=getattr(scenario, field), min=0, max=200, style=style, layout=layout,
            description=f"{days}-day-late W1 every N",
        )  # fmt: skip
        slider.observe(
            lambda change, field=field: live.update(**{field: change["new"]}), names="value"
        )
        late.append(slider)
    note = widgets.HTML("<i>0 switches a sensor (or a kind of late event) off.</i>")
    return widgets.VBox([speed, *rates, *late, note])


def _rate_setter(live: LiveSimulation, name: str) -> Callable[[dict], None]:
    def apply(change: dict) -> None:
        every = dict(live.scenario.every)
        disabled = set(live.scenario.disabled)
        if change["new"] == 0:
            disabled.add(name)
        else:
            disabled.discard(name)
            every[name] = change["new"]
        live.update(every=every, disabled=frozenset(disabled))

    return apply


def watch(
    draw: Callable[[], object],
    seconds: float,
    every: float = 1.0,
    display: Callable[..., Any] | None = None,
) -> int:
    """Redraw ``draw()`` in place every ``every`` seconds for ``seconds``; return the frames.

    It always ends: a live view in a notebook must not run forever.
    """
    if display is None:
        from IPython.display import display as show
    else:
        show = display
    handle = show(draw(), display_id=True)
    frames = 1
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(min(every, max(0.0, deadline - time.monotonic())))
        content = draw()
        if handle is not None:
            handle.update(content)
        frames += 1
    return frames


# --------------------------------------------------------------------------------------
# 02: Kafka
# --------------------------------------------------------------------------------------


def offsets_table(settings: Settings, topic: str, group: str | None = None) -> pd.DataFrame:
    """Per partition: the offsets a topic holds, and a consumer group's commit and lag."""
    rows = [
        {
            "partition": p.partition,
            "first offset": p.low,
            "next offset": p.high,
            "messages": p.messages,
            **({"committed": p.committed, "lag": p.lag} if group else {}),
        }
        for p in kafka.offsets(settings, topic, group)
    ]
    return pd.DataFrame(rows).set_index("partition")


def records_table(records: Iterable[kafka.Record]) -> pd.DataFrame:
    """Kafka records as a table, values decoded as text."""
    return pd.DataFrame(
        [
            {
                "partition": r.partition,
                "offset": r.offset,
                "key": r.key.decode(errors="replace") if r.key else None,
                "timestamp": pd.to_datetime(r.timestamp_ms, unit="ms"),
                "value": r.value.decode(errors="replace") if r.value else None,
            }
            for r in records
        ]
    )


def records_frame(records: Iterable[kafka.Record]) -> pd.DataFrame:
    """Kafka records whose values are JSON objects, one column per field."""
    return pd.DataFrame([json.loads(r.value) for r in records if r.value])


def topic_counts(settings: Settings) -> pd.DataFrame:
    """How many messages each of the lab's topics holds."""
    counts = {topic: kafka.message_count(settings, topic) for topic in settings.topics.all()}
    return pd.DataFrame([counts], index=["messages"])


# --------------------------------------------------------------------------------------
# 03 and 06: event time, watermarks, daily results
# --------------------------------------------------------------------------------------


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
        axes.legend(fontsize=8)
        axes.tick_params(axis="x", labelrotation=30, labelsize=8)
    figure.tight_layout()
    return figure


# --------------------------------------------------------------------------------------
# Exercises: each notebook's check cells call `check`, which knows the answers
# --------------------------------------------------------------------------------------


def _largest_leak_day(settings: Settings) -> str:
    from labkit import hbase

    leak = hbase.read_series(settings, sensors.rest_metric("Wtot"), kind="daily")
    return f"{leak['value'].idxmax():%Y-%m-%d}"


def _input_messages(settings: Settings) -> int:
    return kafka.message_count(settings, settings.topics.input)


EXERCISES: dict[str, tuple[Callable[[Any], object], str]] = {
    "th1_hourly": (lambda s: 4, "A tick is 15 minutes; how many ticks make an hour?"),
    "mov1_max_delay_minutes": (
        lambda s: 15,
        "A movement is sent when its 15-minute slot ends. How early in the slot can it happen?",
    ),
    "input_messages": (
        _input_messages,
        "labkit.kafka.offsets(settings, topic) gives each partition's first and next offset.",
    ),
    "late_at_watermark": (
        lambda s: True,
        "Flink calls a row late when its time is at or behind the watermark, not only behind.",
    ),
    "window_of_last_second": (
        lambda s: "2024-01-03",
        "A 1-day tumbling window covers [midnight, next midnight).",
    ),
    "row_key": (
        lambda s: "TH2#2024-01-02 06:30:00",
        "<metric>#<YYYY-MM-DD HH:MM:SS>, as in the table above.",
    ),
    "largest_leak_day": (
        _largest_leak_day,
        "Read Wtot_AggDayRest with labkit.hbase.read_series(..., kind='daily').",
    ),
}


def check(exercise: str, answer: object, settings: Settings | None = None) -> bool:
    """Say whether ``answer`` solves ``exercise``; give a hint when it does not."""
    solve, hint = EXERCISES[exercise]
    if answer is None or answer is ...:
        print(f"Not answered yet. Hint: {hint}")
        return False
    expected = solve(settings)
    right = answer == expected or str(answer).strip() == str(expected)
    print("✓ Right!" if right else f"✗ Not quite. Hint: {hint}")
    return right


# --------------------------------------------------------------------------------------
# 05: the API's answers beside HBase
# --------------------------------------------------------------------------------------


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


# Notebook 05's exercises: the checks ask the API itself.
FIRST_DAY = (datetime(2024, 1, 1), datetime(2024, 1, 2) - timedelta(milliseconds=1))
API_HINTS = {
    "bucket_average": "8 buckets over one day are 3 hours wide; average TH1's readings in the "
    "first one (00:00 to 02:59:59.999).",
    "leak_table": "one target, Wtot_AggDayRest, with the payload {'format': 'table'} "
    "(api.panel_request builds the rest), over the whole simulated period.",
}


def check_api_exercise(exercise: str, answer: object, url: str, settings: Settings) -> bool:
    """Say whether ``answer`` solves one of notebook 05's exercises; give a hint if not."""
    hint = API_HINTS[exercise]
    if answer is None:
        print(f"Not answered yet. Hint: {hint}")
        return False
    if exercise == "bucket_average":
        served = api.call(
            url, "/query", api.panel_request(["TH1_raw"], *FIRST_DAY, max_data_points=8)
        )
        expected = served[0]["datapoints"][0][0]
        right = isinstance(answer, int | float) and math.isclose(answer, expected, rel_tol=1e-9)
    else:
        status, served = api.request(url, "/query", answer)
        days = len(hbase.read_series(settings, "Wtot_AggDayRest", kind="daily"))
        right = (
            status == 200
            and len(served) == 1
            and served[0].get("type") == "table"
            and served[0].get("name") == "Wtot_AggDayRest"
            and len(served[0]["rows"]) == days
        )
        if status != 200:
            said = served.get("message") if isinstance(served, dict) else served
            hint = f"the API answered {status}: {said}"
    print("✓ Right!" if right else f"✗ Not quite. Hint: {hint}")
    return right
