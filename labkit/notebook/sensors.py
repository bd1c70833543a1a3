"""Notebook 01: the sensors, their distributions and cadences; a live simulation and its knobs."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import ipywidgets as widgets
import pandas as pd
from matplotlib.figure import Figure

from labkit import sensors
from labkit.pipeline import LiveSimulation


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
