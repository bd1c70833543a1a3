"""Notebooks 03 and 06: the stream layer shown. Event time and the watermark up close; the
notebook's own input (a straggler and junk included); the live job's late readings while the
sliders move; the job graph; the daily results."""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import ipywidgets as widgets
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.dates import DateFormatter
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from labkit import kafka, oracle, sandbox, sensors
from labkit.config import Settings
from labkit.flink.job import checkpoint_dir
from labkit.flink.runtime import Task, depth
from labkit.notebook.display import png
from labkit.pipeline import LiveSimulation

# --------------------------------------------------------------------------------------
# The notebook's own input
# --------------------------------------------------------------------------------------

# The straggler is stamped this long before the newest reading: behind the watermark (15
# minutes), but its day is still open.
STRAGGLER_BEHIND = timedelta(minutes=25)


@dataclass
class NotebookInput:
    """What the notebook sent to its ``input``: the first ``ticks`` of a scenario, then a
    straggler (a valid TH1 reading behind the watermark) and two invalid messages."""

    settings: Settings
    scenario: sensors.Scenario
    ticks: int
    sent: list[oracle.Sent]
    straggler: sensors.Reading

    @property
    def now(self) -> datetime:
        """The simulated time when it was sent: the next tick's."""
        return self.scenario.start + self.ticks * sensors.TICK

    def frame(self) -> pd.DataFrame:
        """Every message as the oracle sees it, with the watermark it met and whether late."""
        return oracle.with_watermark(oracle.sent_frame(self.sent))

    def continue_live(self, speed: float) -> LiveSimulation:
        """The sensors going on, live, from where this input stopped (not started)."""
        return LiveSimulation(self.settings, self.scenario, speed, first_tick=self.ticks)


def notebook_messages(
    scenario: sensors.Scenario, days: float
) -> tuple[int, list[oracle.Sent], sensors.Reading]:
    """The first ``days`` of ``scenario`` as ticks sent, then a straggler and two invalid
    messages: (the ticks, every message in order, the straggler)."""
    simulator = sensors.Simulator(scenario)
    ticks = round(days * sensors.TICKS_PER_DAY)
    readings = [reading for tick in range(ticks) for reading in simulator.tick(tick)]
    last_sent = readings[-1].sent_at
    newest = max(r.timestamp for r in readings if r.sent_at == last_sent)
    straggler = sensors.Reading("TH1", 21.5, newest - STRAGGLER_BEHIND, last_sent)
    sent = [oracle.Sent(r.message(), r.sent_at, r) for r in (*readings, straggler)]
    sent += [
        oracle.Sent(_message("TH9", 20.0, newest), last_sent),  # no such sensor
        oracle.Sent(b"not json at all", last_sent),
    ]
    return ticks, sent, straggler


def fill_input(settings: Settings, scenario: sensors.Scenario, days: float) -> NotebookInput:
    """Send ``notebook_messages`` to ``settings``' input."""
    ticks, sent, straggler = notebook_messages(scenario, days)
    producer = kafka.BatchProducer(settings)
    for message in sent:
        stamp = int((message.sent_at - sensors.EPOCH).total_seconds() * 1000)
        key = message.reading.sensor.encode() if message.reading else None
        producer.send(settings.topics.input, message.body, key, stamp)
    producer.flush()
    return NotebookInput(settings, scenario, ticks, sent, straggler)


def remove(settings: Settings) -> None:
    """Delete a sandbox's topics and the checkpoints of a live job over them."""
    sandbox.remove(settings)
    shutil.rmtree(checkpoint_dir(settings), ignore_errors=True)


def _message(name: str, value: float, stamp: datetime) -> bytes:
    return sensors.Reading(name, value, stamp, stamp).message()


# --------------------------------------------------------------------------------------
# Event time and the watermark, up close
# --------------------------------------------------------------------------------------


def zoom_windows(frame: pd.DataFrame, hours: float = 3.0) -> list[tuple[int, int]]:
    """Two stretches of arrivals to look at closely, as (first, last) offsets: the ``hours``
    in which the most MOV1 events arrive, and the last hour and a half (the straggler)."""
    span, movements = pd.Timedelta(hours=hours), frame[frame["sensor"] == "MOV1"]["sent_at"]
    ends = list(movements) or [frame["sent_at"].max()]
    busiest = max(ends, key=lambda end: (int(movements.between(end - span, end).sum()), end))
    last = frame["sent_at"].max()
    windows = []
    for begin, end in ((busiest - span, busiest), (last - pd.Timedelta(hours=1.5), last)):
        offsets = frame[frame["sent_at"].between(begin, end)]["offset"]
        windows.append((int(offsets.min()), int(offsets.max())))
    return windows


def window_counts(
    frame: pd.DataFrame, counted: pd.DataFrame, names: tuple[str, ...]
) -> pd.DataFrame:
    """Per sensor of ``names`` and day: the readings stamped that day, those a daily window
    counted (``counted``: m_name, day, readings) and those the lab's rule calls late."""
    valid = frame[frame["valid"] & frame["sensor"].isin(names)]
    per_day = valid.assign(day=valid["timestamp"].dt.date).groupby(["sensor", "day"])
    table = pd.DataFrame(
        {"stamped that day": per_day.size(), "late by the lab's rule": per_day["late"].sum()}
    )
    window = counted.rename(columns={"m_name": "sensor", "readings": "counted by the window"})
    window = window.assign(day=pd.to_datetime(window["day"]).dt.date)
    table = table.join(window.set_index(["sensor", "day"])["counted by the window"], how="left")
    return table.fillna(0).astype(int)


def watermark_figure(frame: pd.DataFrame, windows: list[tuple[int, int]] | None = None) -> Figure:
    """Arrivals up close: each message's event time in the order it arrived, the watermark
    it met, MOV1's out-of-order events and what is late; one panel per stretch of arrivals.

    ``frame`` comes from ``labkit.oracle.with_watermark``; ``windows`` are (first, last)
    offsets (default: ``zoom_windows``).
    """
    windows = windows or zoom_windows(frame)
    figure = Figure(figsize=(14, 5.5))
    widths = [last - first + 1 for first, last in windows]
    for axes, (first, last) in zip(
        figure.subplots(1, len(windows), width_ratios=widths, squeeze=False)[0], windows,
        strict=True,
    ):  # fmt: skip
        _arrivals(axes, frame[frame["offset"].between(first, last) & frame["valid"]])
    figure.axes[0].set_ylabel("event time (m_timestamp)")
    figure.axes[0].legend(loc="upper left", fontsize=8)
    figure.tight_layout()
    return figure


def _arrivals(axes: Axes, shown: pd.DataFrame) -> None:
    newest = shown["watermark"].max() + oracle.WATERMARK_DELAY
    floor = shown["watermark"].min() - pd.Timedelta(minutes=30)
    regular = shown[(shown["sensor"] != "MOV1") & ~shown["late"]]
    movements = shown[(shown["sensor"] == "MOV1") & ~shown["late"]]
    late = shown[shown["late"]]
    axes.scatter(regular["offset"], regular["timestamp"], s=10, color="#4c72b0",
                 label="reading, at its event time (m_timestamp)")  # fmt: skip
    axes.scatter(movements["offset"], movements["timestamp"], s=60, marker="D", color="#55a868",
                 label="MOV1 event: happened in the last 15 min, sent at their end")  # fmt: skip
    watermark = shown[["offset", "watermark"]].dropna()
    axes.step(watermark["offset"], watermark["watermark"], where="post", color="orange",
              linewidth=2, label="watermark it met: newest event time so far - 15 min")  # fmt: skip
    axes.step(watermark["offset"], watermark["watermark"] + oracle.WATERMARK_DELAY, where="post",
              color="orange", linestyle=":", label="newest event time so far")  # fmt: skip
    close = late[late["timestamp"] >= floor]
    axes.scatter(close["offset"], close["timestamp"], s=90, marker="x", color="red",
                 label="late: at or behind the watermark")  # fmt: skip
    far = late[late["timestamp"] < floor]
    for offset, stamp in zip(far["offset"], far["timestamp"], strict=True):
        axes.annotate(f"late W1 of {stamp:%m-%d %H:%M} ↓", (offset, floor), xytext=(0, 4),
                      textcoords="offset points", color="red", fontsize=8, ha="center",
                      va="bottom", rotation=90)  # fmt: skip
    if len(watermark):
        at, level = watermark.iloc[-1]
        axes.annotate("", (at, level), (at, level + oracle.WATERMARK_DELAY),
                      arrowprops={"arrowstyle": "<->", "color": "darkorange"})  # fmt: skip
        axes.annotate(" 15 min", (at, level + oracle.WATERMARK_DELAY / 2), color="darkorange",
                      fontsize=8, va="center")  # fmt: skip
    for _, row in pd.concat([movements.head(1), close]).iterrows():
        mov1 = row["sensor"] == "MOV1"
        what = "MOV1" if mov1 else f"late {row['sensor']}"
        text = f"{what} of {row['timestamp']:%H:%M:%S}, sent {row['sent_at']:%H:%M}"
        # Labels to the right of the first MOV1, to the left of late readings (at the end).
        offset = (8, -16) if mov1 else (-12, -3)
        axes.annotate(text, (row["offset"], row["timestamp"]), xytext=offset,
                      textcoords="offset points", fontsize=8,
                      horizontalalignment="left" if mov1 else "right")  # fmt: skip
    axes.set_ylim(floor, newest + pd.Timedelta(minutes=10))
    axes.set_xlabel("arrival order (offset in input)")
    axes.set_title(
        f"{len(shown)} arrivals, sent {shown['sent_at'].min():%m-%d %H:%M} to "
        f"{shown['sent_at'].max():%H:%M}",
        fontsize=10,
    )
    axes.yaxis.set_major_formatter(DateFormatter("%m-%d %H:%M"))
    axes.grid(alpha=0.3)


# --------------------------------------------------------------------------------------
# The live job's late readings, while the sliders move
# --------------------------------------------------------------------------------------


def controls(panel: widgets.Widget) -> Iterator[widgets.Widget]:
    """Every widget with a value inside ``panel`` (sliders, boxes), depth first."""
    if hasattr(panel, "value") and hasattr(panel, "description"):
        yield panel
    for child in getattr(panel, "children", ()):
        yield from controls(child)


def knob(panel: widgets.Widget, words: str) -> widgets.Widget:
    """The control of ``panel`` whose description contains ``words``."""
    for control in controls(panel):
        if words in control.description:
            return control
    raise KeyError(f"no control of the panel mentions {words!r}")


@dataclass(frozen=True)
class LateSample:
    seconds: float  # since the view started
    simulated: datetime  # the sensors' clock
    sent: int  # messages in input
    on_time: int  # classified by Flink: output_raw
    late: int  # input_late
    invalid: int  # input_invalid


@dataclass
class LateView:
    """The live job's verdicts counted from its output topics while the sensors send; the
    sliders of ``panel`` steer the sensors, and every move is marked on the curves."""

    settings: Settings
    live: LiveSimulation
    panel: widgets.Widget
    every: float = 1.0
    samples: list[LateSample] = field(default_factory=list)
    moves: list[tuple[float, str]] = field(default_factory=list)
    readout: widgets.HTML = field(default_factory=widgets.HTML)
    chart: widgets.Image = field(default_factory=lambda: widgets.Image(format="png"))
    error: BaseException | None = None

    def __post_init__(self) -> None:
        self._started = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        for control in controls(self.panel):
            control.observe(self._moved, names="value")

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._started

    @property
    def late(self) -> int:
        return self.samples[-1].late if self.samples else 0

    def _moved(self, change: dict) -> None:
        label = change["owner"].description
        self.moves.append((self.elapsed, f"{label}: {change['old']:g} → {change['new']:g}"))

    def start(self, seconds: float, plan: dict[float, tuple[str, float]] | None = None) -> LateView:
        """Run the sensors and count for ``seconds``; ``plan`` moves sliders at given seconds
        (``{10: ("2-day", 2)}``), as a student would, for an unattended run."""
        self._started = time.monotonic()
        if not self.live.running:
            self.live.start()
        self._thread = threading.Thread(
            target=self._run, args=(seconds, dict(plan or {})), name="late-view", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.wait()

    def wait(self) -> None:
        """Wait until the view has ended; raise what went wrong in its thread."""
        if self._thread is not None:
            self._thread.join()
        if self.error is not None:
            raise self.error

    def sample(self) -> LateSample:
        topics, count = self.settings.topics, kafka.message_count
        sample = LateSample(
            self.elapsed, self.live.simulated_now, count(self.settings, topics.input),
            count(self.settings, topics.output_raw), count(self.settings, topics.input_late),
            count(self.settings, topics.input_invalid),
        )  # fmt: skip
        self.samples.append(sample)
        return sample

    def _run(self, seconds: float, plan: dict[float, tuple[str, float]]) -> None:
        try:
            while not self._stop.is_set() and self.elapsed < seconds:
                for at in [at for at in plan if self.elapsed >= at]:
                    words, value = plan.pop(at)
                    knob(self.panel, words).value = value
                self._draw(self.sample())
                self._stop.wait(self.every)
        except BaseException as error:  # noqa: BLE001 - handed to the caller by wait()
            self.error = error
        finally:
            self._finish()

    def _finish(self) -> None:
        try:
            self.live.stop()
            time.sleep(self.every)  # the job's last verdicts
            self._draw(self.sample(), stopped=True)
        except BaseException as error:  # noqa: BLE001 - handed to the caller by wait()
            self.error = self.error or error
        finally:
            for control in controls(self.panel):
                control.disabled = True

    def _draw(self, sample: LateSample, stopped: bool = False) -> None:
        state = "<b>stopped</b>: the sliders no longer act. " if stopped else ""
        self.readout.value = (
            f"{state}{sample.seconds:.0f} s, simulated {sample.simulated:%Y-%m-%d %H:%M}: "
            f"{sample.sent:,} messages in input; Flink's verdicts: on time {sample.on_time:,}, "
            f"<b>late {sample.late:,}</b>, invalid {sample.invalid:,}"
        )
        self.chart.value = png(self.figure(), dpi=72)

    def figure(self) -> Figure:
        """Messages sent and classified, and late readings, over wall-clock time."""
        samples = list(self.samples)
        seconds = [s.seconds for s in samples]
        figure = Figure(figsize=(12, 5.5))
        flow, late = figure.subplots(2, 1, sharex=True, height_ratios=[1, 1.2])
        flow.plot(seconds, [s.sent for s in samples], label="in input (sent by the sensors)")
        flow.plot(seconds, [s.on_time for s in samples], label="on time (output_raw)")
        flow.set_ylabel("messages")
        late.plot(seconds, [s.late for s in samples], color="red", linewidth=2,
                  label="late (input_late)")  # fmt: skip
        late.set_ylabel("late readings so far")
        late.set_xlabel("wall-clock seconds since the view started")
        for axes in (flow, late):
            axes.grid(alpha=0.3)
            axes.legend(loc="upper left", fontsize=8)
            for at, _ in self.moves:
                axes.axvline(at, color="grey", linestyle="--")
        for at, text in self.moves:
            late.annotate(text, (at, 0.97), xycoords=("data", "axes fraction"), xytext=(-3, 0),
                          textcoords="offset points", fontsize=8, ha="right", va="top")  # fmt: skip
        if samples:
            flow.set_title(f"late readings so far: {samples[-1].late:,}")
        figure.tight_layout()
        return figure

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(widgets.VBox([self.panel, self.readout, self.chart]))


def wait_classified(settings: Settings, messages: int, timeout: float = 180.0) -> float:
    """Wait until the job has given every one of ``messages`` a verdict (on time, late or
    invalid); the seconds it took."""
    topics, started = settings.topics, time.monotonic()
    outputs = (topics.output_raw, topics.input_late, topics.input_invalid)
    while sum(kafka.message_count(settings, topic) for topic in outputs) < messages:
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"the job gave no verdict on some of {messages} messages")
        time.sleep(0.5)
    return time.monotonic() - started


def late_table(records: list[kafka.Record]) -> pd.DataFrame:
    """input_late's records as a table: the reading, when it was sent, the watermark it met."""
    frame = pd.DataFrame([json.loads(r.value) for r in records if r.value])
    if frame.empty:
        return frame
    columns = ["m_name", "m_value", "m_timestamp", "sent_at", "watermark_at"]
    extra = [c for c in ("behind_watermark_s", "delay_s") if c in frame]
    return frame[[c for c in columns if c in frame] + extra].sort_values("sent_at")


# --------------------------------------------------------------------------------------
# The job graph
# --------------------------------------------------------------------------------------


_COLUMN, _WIDTH, _HEIGHT = 5.0, 3.4, 0.8  # data units: columns apart, a box's size


def _label(task: Task) -> str:
    lines = [task.name]
    if task.window:
        lines.append(task.window)
    if len(task.operators) > 1:
        lines.append(f"{len(task.operators)} operators chained")
    writers = [name.split(":")[0] for name in task.operators[1:] if name.endswith("Writer")]
    if writers:
        lines.append("writes " + ", ".join(writers))
    lines.append(f"parallelism {task.parallelism}")
    return "\n".join(lines)


def job_graph_figure(tasks: list[Task], title: str = "") -> Figure:
    """The tasks of a job as boxes, sources on the left, arrows as rows travel between them
    (labelled with how: FORWARD one to one, HASH by key, GLOBAL all to one task)."""
    layers: dict[int, list[Task]] = {}
    for task in tasks:
        layers.setdefault(depth(tasks, task), []).append(task)
    rows = max(len(layer) for layer in layers.values())
    figure = Figure(figsize=(4.2 * len(layers) + 1, 1.1 * rows + 1.2))
    axes = figure.add_subplot()
    where: dict[str, tuple[float, float]] = {}
    for column, layer in sorted(layers.items()):
        for row, task in enumerate(layer):
            x, y = column * _COLUMN, (len(layer) - 1) / 2 - row + (rows - 1) / 2
            where[task.id] = (x, y)
            axes.add_patch(Rectangle((x - _WIDTH / 2, y - _HEIGHT / 2), _WIDTH, _HEIGHT,
                                     facecolor=_colour(task), edgecolor="dimgrey"))  # fmt: skip
            axes.text(x, y, _label(task), ha="center", va="center", fontsize=8)
    for task in tasks:
        for source, strategy in task.inputs:
            if source not in where:
                continue
            (x0, y0), (x1, y1) = where[source], where[task.id]
            start, end = (x0 + _WIDTH / 2, y0), (x1 - _WIDTH / 2, y1)
            axes.annotate("", end, start, arrowprops={"arrowstyle": "->", "color": "grey"})
            # The label sits near the arrow's head, where the arrows are apart.
            share = 1 - 0.6 / (end[0] - start[0])
            axes.text(end[0] - 0.6, y0 + (y1 - y0) * share, strategy.split("[")[0],
                      fontsize=7, color="dimgrey", ha="right", va="bottom")  # fmt: skip
    axes.set_xlim(-_WIDTH / 2 - 0.2, _COLUMN * (len(layers) - 1) + _WIDTH / 2 + 0.2)
    axes.set_ylim(-0.6, rows - 0.4)
    axes.axis("off")
    axes.set_title(title or f"the job's {len(tasks)} tasks, as Flink runs them")
    figure.tight_layout()
    return figure


def _colour(task: Task) -> str:
    if task.name.startswith("Source"):
        return "#c6dbef"
    if any(name.endswith("Writer") for name in task.operators):
        return "#fdd0a2" if "Aggregate" not in task.name else "#c7e9c0"
    return "#c7e9c0"


# --------------------------------------------------------------------------------------
# The daily results (notebook 06)
# --------------------------------------------------------------------------------------

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
        axes.set_xlabel("day")
        axes.set_ylabel(title.rsplit("(", 1)[-1].rstrip(")"))
        axes.legend(fontsize=8)
        axes.tick_params(axis="x", labelrotation=30, labelsize=8)
    figure.tight_layout()
    return figure
