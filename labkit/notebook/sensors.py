"""Notebook 01: the sensors, their distributions and cadences; a live simulation, its sliders
and its live view; the student's own meter beside the catalogue's."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import ipywidgets as widgets
import matplotlib.dates as mdates
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from labkit import sensors
from labkit.exercises.sensors import Sent
from labkit.notebook.display import redrawn
from labkit.pipeline import LiveSimulation

INTERVAL = [s for s in sensors.CATALOGUE if s.kind is sensors.SensorKind.INTERVAL]
NAMES = [s.name for s in sensors.CATALOGUE]
# The speed slider's stops, exact: simulated seconds per wall-clock second.
SPEEDS = {"15 min/s": 900.0, "1 h/s": 3600.0, "6 h/s": 21_600.0, "12 h/s": 43_200.0,
          "1 day/s": 86_400.0}  # fmt: skip
SLIDER_STYLE = {"description_width": "170px"}
SLIDER_LAYOUT = {"width": "470px"}


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
    figure = Figure(figsize=(14, 7.5))
    grid = figure.add_gridspec(2, len(INTERVAL))
    for column, sensor in enumerate(INTERVAL):
        axes = figure.add_subplot(grid[0, column])
        on_time = frame[(frame["sensor"] == sensor.name) & (frame["delay"] == pd.Timedelta(0))]
        axes.hist(on_time["value"], bins=20, color="#4c72b0")
        axes.set_title(sensor.name, fontsize=10)
        axes.set_xlabel(f"value ({sensor.unit})", fontsize=8)
        axes.set_ylabel("readings", fontsize=8)
        axes.tick_params(labelsize=7)
    timeline = figure.add_subplot(grid[1, :])
    first_day = frame["sent_at"].min().normalize()
    # Up to the next midnight included: the meters report about the day when it has ended.
    day = frame[frame["sent_at"] <= first_day + pd.Timedelta(days=1)]
    late = day["delay"] >= pd.Timedelta(days=1)
    timeline.scatter(day.loc[~late, "timestamp"], day.loc[~late, "sensor"].map(NAMES.index), s=6)
    timeline.scatter(
        day.loc[late, "sent_at"], day.loc[late, "sensor"].map(NAMES.index), s=30, marker="x",
        color="red", label="late W1 reading, drawn when it was sent (stamped days earlier)",
    )  # fmt: skip
    timeline.set_yticks(range(len(NAMES)), NAMES)
    timeline.set_xlabel("simulated time (dots: when each reading was measured)")
    timeline.set_ylabel("sensor")
    timeline.set_title("The first day: when each sensor sends")
    timeline.legend(loc="upper right", fontsize=8)
    figure.tight_layout()
    return figure


# --------------------------------------------------------------------------------------
# The student's meter
# --------------------------------------------------------------------------------------


def meter_figure(sent: list[Sent], meter: str = "Etot") -> Figure:
    """A meter's messages (as ``labkit.exercises.sensors.run_sensor`` collects them): its
    reading day by day, and each day's growth beside the catalogue's band."""
    fields = [json.loads(one.message) for one in sent]
    stamps = pd.to_datetime([f["m_timestamp"] for f in fields])
    values = pd.Series([f["m_value"] for f in fields], index=stamps)
    growth = values.diff().dropna()
    sensor = sensors.SENSORS[meter]
    figure = Figure(figsize=(13, 3.8))
    reading, spread = figure.subplots(1, 2)
    reading.plot(values.index, values.to_numpy(), ".-", ms=4)
    reading.set_title(f"{meter}: one reading a day, stamped 23:59:59")
    reading.set_xlabel("m_timestamp (simulated time)")
    reading.set_ylabel(f"reading ({sensor.unit})")
    spread.hist(growth.to_numpy(), bins=15, color="#55a868")
    low, high = (
        sensor.daily_growth - sensor.growth_spread,
        sensor.daily_growth + sensor.growth_spread,
    )
    for edge in (low, high):
        spread.axvline(edge, color="grey", linestyle="--")
    spread.axvline(sensor.daily_growth, color="black", label="the catalogue's mean")
    spread.set_title("growth from one reading to the next (dashed: the catalogue's band)")
    spread.set_xlabel(f"growth in a day ({sensor.unit})")
    spread.set_ylabel("days")
    spread.legend(loc="upper right", fontsize=8)
    figure.autofmt_xdate()
    figure.tight_layout()
    return figure


# --------------------------------------------------------------------------------------
# A live simulation: its sliders and its live view
# --------------------------------------------------------------------------------------


def _per_second(seconds: float) -> str:
    for unit, size in (("day", 86_400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size:g} {unit}/s"
    return f"{seconds:g} s/s"


def speed_options(current: float) -> list[tuple[str, float]]:
    """The speed slider's stops, the current speed among them."""
    stops = {value: label for label, value in SPEEDS.items()}
    stops.setdefault(float(current), _per_second(current))
    return [(stops[value], value) for value in sorted(stops)]


def knob_panel(live: LiveSimulation) -> widgets.VBox:
    """Sliders wired to a running simulation: each change applies at the next tick. When the
    simulation ends they are disabled: a slider that moves nothing would mislead."""
    scenario = live.scenario
    speed = widgets.SelectionSlider(
        options=speed_options(live.speed), value=float(live.speed), style=SLIDER_STYLE,
        layout=SLIDER_LAYOUT, description="speed (sim s / s)",
    )  # fmt: skip
    speed.observe(lambda change: setattr(live, "speed", change["new"]), names="value")
    sliders: list[widgets.Widget] = [speed]
    for sensor in INTERVAL:
        slider = widgets.IntSlider(
            value=scenario.every.get(sensor.name, 1), min=0, max=8, style=SLIDER_STYLE,
            layout=SLIDER_LAYOUT, description=f"{sensor.name}: 1 per N ticks",
        )  # fmt: skip
        slider.observe(_rate_setter(live, sensor.name), names="value")
        sliders.append(slider)
    for knob, days in (("late_2d_every", 2), ("late_10d_every", 10)):
        slider = widgets.IntSlider(
            value=getattr(scenario, knob), min=0, max=200, style=SLIDER_STYLE,
            layout=SLIDER_LAYOUT, description=f"{days}-day-late W1 every N",
        )  # fmt: skip
        slider.observe(lambda change, knob=knob: live.update(**{knob: change["new"]}), "value")
        sliders.append(slider)
    note = widgets.HTML("<i>0 switches a sensor (or a kind of late event) off.</i>")

    def disable() -> None:
        for slider in sliders:
            slider.disabled = True
        note.value = "<i>The simulation has ended: these sliders move nothing any more.</i>"

    live.on_end(disable)
    return widgets.VBox([*sliders, note])


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


@dataclass(frozen=True)
class Sample:
    """What a live simulation had sent at one instant of the wall clock."""

    seconds: float  # since the view started
    sent: int
    per_sensor: dict[str, int]
    running: bool


@dataclass
class LiveView:
    """A running simulation, seen as it runs: messages per second (in all and per sensor) over
    the last ``window`` seconds of the wall clock, and ``sensor``'s recent readings.

    Each ``figure()`` takes a sample of the simulation's counters first; ``panel()`` shows the
    sliders and the figure, redrawn in the background while the simulation runs.
    """

    live: LiveSimulation
    sensor: str = sensors.LATE_SENSOR
    window: float = 3.0
    hours_shown: float = 48.0  # of simulated time, in the readings panel
    samples: list[Sample] = field(default_factory=list)
    # Slider moves made through ``panel()``: (seconds since the view started, what changed).
    moves: list[tuple[float, str]] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def sample(self) -> Sample:
        # dict() copies in one step under the GIL, while the simulation's thread counts on.
        live = self.live
        sample = Sample(
            time.monotonic() - self.started, live.sent, dict(live.per_sensor), live.running
        )
        self.samples.append(sample)
        return sample

    def rates(self) -> pd.DataFrame:
        """Messages per second at each sample (from the second on), since the last sample at
        least ``window`` seconds before it (or the first): a column ``all``, one per sensor,
        and ``running`` (whether the simulation still ran at the end of that span)."""
        rows = []
        for index, now in enumerate(self.samples[1:], 1):
            earlier = self.samples[:index]
            before = [s for s in earlier if s.seconds <= now.seconds - self.window]
            then = before[-1] if before else earlier[0]
            span = now.seconds - then.seconds
            row = {
                "seconds": now.seconds,
                "running": then.running,
                "all": (now.sent - then.sent) / span,
            }
            for name in NAMES:
                row[name] = (now.per_sensor.get(name, 0) - then.per_sensor.get(name, 0)) / span
            rows.append(row)
        columns = ["seconds", "running", "all", *NAMES]
        return pd.DataFrame(rows, columns=columns).set_index("seconds")

    def figure(self) -> Figure:
        """The view now: rates over time, rates per sensor, recent readings, late readings."""
        self.sample()
        live, rates = self.live, self.rates()
        figure = Figure(figsize=(13, 7))
        grid = figure.add_gridspec(2, 3)
        over_time, per_sensor = figure.add_subplot(grid[0, :2]), figure.add_subplot(grid[0, 2])
        readings, late = figure.add_subplot(grid[1, :2]), figure.add_subplot(grid[1, 2])
        state = "running" if live.running else "ended"
        figure.suptitle(
            f"{live.sent:,} messages sent; simulated time {live.simulated_now:%Y-%m-%d %H:%M}; "
            f"{state}"
        )
        over_time.plot(rates.index, rates["all"], ".-", color="#4c72b0")
        for seconds, what in self.moves:
            over_time.axvline(seconds, color="grey", linestyle=":")
            over_time.annotate(what, (seconds, 0.98), xycoords=("data", "axes fraction"),
                               rotation=90, va="top", ha="right", fontsize=7)  # fmt: skip
        highest = rates["all"].max() if len(rates) else 0.0
        over_time.set_ylim(0, max(1.0, 1.15 * highest))
        over_time.set_title(f"messages per second (over the last {self.window:g} s)")
        over_time.set_xlabel("wall-clock seconds since the view started (dotted: a slider moved)")
        over_time.set_ylabel("messages / s")
        # Per sensor: the latest window in which the simulation ran.
        ran = rates[rates["running"]]
        now = ran.iloc[-1] if len(ran) else pd.Series(0.0, index=NAMES)
        per_sensor.barh(NAMES, [now[name] for name in NAMES], color="#55a868")
        per_sensor.invert_yaxis()
        per_sensor.set_title("per sensor, now" if live.running else "per sensor, at the end")
        per_sensor.set_xlabel("messages / s")
        per_sensor.set_ylabel("sensor")
        self._draw_readings(readings, late)
        figure.tight_layout()
        return figure

    def _draw_readings(self, readings: Axes, late: Axes) -> None:
        """``sensor``'s readings: those sent on time by when they were measured (the last
        ``hours_shown``), the late ones apart, by when they were sent and how late, so that a
        reading stamped ten days ago does not stretch the on-time axis over ten days."""
        frame = readings_frame(r for r in list(self.live.recent) if r.sensor == self.sensor)
        is_late = frame["delay"] >= pd.Timedelta(sensors.TICK)
        on_time, behind = frame[~is_late], frame[is_late]
        if len(on_time):
            since = on_time["timestamp"].max() - pd.Timedelta(hours=self.hours_shown)
            on_time = on_time[on_time["timestamp"] >= since]
        unit = sensors.SENSORS[self.sensor].unit
        readings.plot(on_time["timestamp"], on_time["value"], ".-", ms=3)
        readings.set_title(
            f"{self.sensor}: readings sent on time (the last {self.hours_shown:g} h)"
        )
        readings.set_xlabel("measured at (simulated time)")
        readings.set_ylabel(f"{self.sensor} ({unit})")
        late.scatter(
            behind["sent_at"], behind["delay"] / pd.Timedelta(days=1), marker="x", color="red", s=25
        )
        late.set_title(f"{self.sensor}: late readings ({len(behind)} recent)")
        late.set_xlabel("sent at (simulated time)")
        late.set_ylabel("stamped this many days earlier")
        late.set_ylim(0, 11)
        for axes in (readings, late):
            locator = few_date_ticks()
            axes.xaxis.set_major_locator(locator)
            axes.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, show_offset=False))

    def panel(self, every: float = 1.0) -> widgets.VBox:
        """The sliders and the live view, redrawn every ``every`` seconds until the simulation
        ends, then once more. The cell that shows it returns at once: the kernel must be idle
        to hear the sliders (while a cell runs, their moves wait for it to end)."""
        knobs = knob_panel(self.live)
        for slider in knobs.children:
            if isinstance(slider, widgets.IntSlider | widgets.SelectionSlider):
                slider.observe(self._note_move, names="value")
        return widgets.VBox([knobs, redrawn(self.figure, lambda: self.live.running, every)])

    def _note_move(self, change: dict) -> None:
        slider = change["owner"]
        value = slider.label if isinstance(slider, widgets.SelectionSlider) else change["new"]
        self.moves.append((time.monotonic() - self.started, f"{slider.description} = {value}"))


def few_date_ticks() -> mdates.AutoDateLocator:
    """Three to five ticks on a time axis, so that narrow panels stay legible. The longer
    steps (an hour of minutes, a day of hours) let every range find one."""
    locator = mdates.AutoDateLocator(minticks=3, maxticks=5)
    locator.intervald[mdates.MINUTELY] = [1, 5, 10, 15, 30, 60]
    locator.intervald[mdates.HOURLY] = [1, 2, 3, 4, 6, 12, 24]
    return locator
