"""Notebook 02: topics, partitions, keys, offsets, consumer groups and their lag.

Tables of what the broker holds; where keys land (and why partitions fill unevenly); a
consumer group's partition assignment as members join and leave; and a live lag demo: the
sensors send while a reader of a consumer group reads at a rate a slider sets, and the lag
the broker reports is plotted over time.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import ipywidgets as widgets
import pandas as pd
from confluent_kafka import Consumer
from matplotlib.figure import Figure

from labkit import kafka, sensors
from labkit.config import Settings
from labkit.errors import LabkitError
from labkit.notebook.display import redrawn
from labkit.pipeline import LiveSimulation


def fresh_topic(settings: Settings, topic: str, partitions: int = 3) -> str:
    """``topic``, created empty (deleted first if it exists) and ready to use."""
    kafka.recreate_topics(settings, [topic], partitions)
    return topic


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
    table = pd.DataFrame(rows).set_index("partition")
    if group:  # a partition without a commit shows <NA>, the others whole offsets
        table["committed"] = table["committed"].astype("Int64")
    return table


def topics_table(settings: Settings) -> pd.DataFrame:
    """The lab's topics: how many partitions each has and how many messages each holds."""
    rows = []
    for topic in settings.topics.all():
        partitions = kafka.offsets(settings, topic)
        rows.append(
            {
                "topic": topic,
                "partitions": len(partitions),
                "messages per partition": [p.messages for p in partitions],
                "messages": sum(p.messages for p in partitions),
            }
        )
    return pd.DataFrame(rows).set_index("topic")


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
# Keys and partitions
# --------------------------------------------------------------------------------------


def keys_table(records: Iterable[kafka.Record], partitions: int) -> pd.DataFrame:
    """Per key: the partitions its messages landed in, how many, and the partition that the
    producer's default partitioner picks for it (librdkafka's ``consistent_random``: the
    CRC-32 of the key modulo the number of partitions)."""
    frame = records_table(records)
    per_key = frame.groupby("key").agg(
        partitions=("partition", lambda column: sorted(set(column))), messages=("offset", "size")
    )
    per_key[f"crc32(key) % {partitions}"] = [
        zlib.crc32(str(key).encode()) % partitions for key in per_key.index
    ]
    return per_key


def partitions_table(records: Iterable[kafka.Record]) -> pd.DataFrame:
    """Per partition: the keys that hash to it and how many messages it holds."""
    frame = records_table(records)
    table = frame.groupby("partition").agg(
        keys=("key", lambda column: sorted(set(column))), messages=("offset", "size")
    )
    table["share"] = (table["messages"] / table["messages"].sum()).map("{:.0%}".format)
    return table


# --------------------------------------------------------------------------------------
# A consumer group's partition assignment
# --------------------------------------------------------------------------------------

# Members notice a rebalance at their next heartbeat: a short interval keeps the demo quick.
_QUICK_GROUP = {"heartbeat.interval.ms": 500, "session.timeout.ms": 6000}


def assignment_demo(
    settings: Settings, topic: str, timeout: float = 60.0, on_step: Callable[[str], None] = print
) -> pd.DataFrame:
    """Members of one consumer group on ``topic``: two join, a third and a fourth join, the
    first leaves. After each step the members poll until the group has settled (every partition
    assigned to exactly one member, no member idle while another has two); the table shows who
    reads which partition at each step."""
    group = f"notebook-assignment-{uuid.uuid4().hex[:6]}"
    members: dict[str, Consumer] = {}
    steps: dict[str, dict[str, str]] = {}
    partitions = len(kafka.offsets(settings, topic))

    rebalances: Counter[str] = Counter()  # assignments each member has been handed

    def join(name: str) -> None:
        member = kafka.consumer(settings, group, **{"client.id": name}, **_QUICK_GROUP)
        member.subscribe([topic], on_assign=lambda _, __: rebalances.update([name]))
        members[name] = member

    def settle(step: str) -> None:
        started, before = time.monotonic(), Counter(rebalances)
        while True:
            for member in members.values():
                member.poll(0.05)  # a member takes part in a rebalance only while it polls
            owned = {
                name: sorted(tp.partition for tp in m.assignment()) for name, m in members.items()
            }
            assigned = sorted(p for mine in owned.values() for p in mine)
            busy = min(len(members), partitions)
            # Settled: every member was handed its part of this step's rebalance, and together
            # they cover every partition once, none idle while another has two.
            if (
                all(rebalances[name] > before[name] for name in members)
                and assigned == list(range(partitions))
                and sum(map(bool, owned.values())) == busy
            ):
                break
            if time.monotonic() - started > timeout:
                raise LabkitError(
                    f"consumer group {group} did not settle in {timeout:.0f} s: is Kafka "
                    "overloaded? `labkit status` shows it"
                )
        steps[step] = {name: ", ".join(map(str, mine)) or "(idle)" for name, mine in owned.items()}
        on_step(f"{step}: settled in {time.monotonic() - started:.1f} s")

    try:
        join("reader-a")
        join("reader-b")
        settle("reader-a and reader-b join")
        join("reader-c")
        settle("reader-c joins")
        join("reader-d")
        settle("reader-d joins")
        members.pop("reader-a").close()  # close() leaves the group: the others rebalance
        settle("reader-a leaves")
    finally:
        for member in members.values():
            member.close()
    table = pd.DataFrame(steps).fillna("(not a member)")
    table.index.name = "member"
    return table


# --------------------------------------------------------------------------------------
# Lag, live
# --------------------------------------------------------------------------------------

# Exact speeds a slider offers, in simulated seconds per wall second.
SPEEDS = (900, 1800, 3600, 7200, 14400, 28800, 43200, 86400)


def messages_per_tick(scenario: sensors.Scenario) -> float:
    """How many messages the sensors send per 15-minute tick, on average."""
    per_tick = 0.0
    for sensor in sensors.CATALOGUE:
        if not scenario.enabled(sensor.name):
            continue
        if sensor.kind is sensors.SensorKind.INTERVAL:
            per_tick += 1 / scenario.every.get(sensor.name, 1)
        elif sensor.kind is sensors.SensorKind.METER:
            per_tick += 1 / sensors.TICKS_PER_DAY
        else:
            per_tick += scenario.movements_per_day / sensors.TICKS_PER_DAY
    if scenario.enabled(sensors.LATE_SENSOR):
        per_tick += sum(
            1 / every for every in (scenario.late_2d_every, scenario.late_10d_every) if every
        )
    return per_tick


def sensor_rate(scenario: sensors.Scenario, speed: float) -> float:
    """Messages a second the sensors send at ``speed`` simulated seconds per wall second."""
    return messages_per_tick(scenario) * speed / sensors.TICK.total_seconds()


@dataclass(frozen=True)
class LagSample:
    seconds: float  # since the demo started
    sent: int  # messages the sensors had sent
    read: int  # messages the reader had read (and committed)
    reader_rate: int  # the reader's limit at that moment, messages a second
    lag: dict[int, int]  # per partition, as the broker reports it: next offset - committed


class LagDemo:
    """Sensors sending live into ``topic`` and one reader of a consumer group reading it at
    ``reader_rate`` messages a second at most, each in a thread of its own; the group's lag, as
    the broker reports it, is sampled every ``sample_every`` seconds into ``samples``.

    It runs for ``seconds`` (or until ``stop()``); ``reader_rate`` and ``speed`` may be changed
    while it runs (the sliders do it).
    """

    def __init__(
        self,
        settings: Settings,
        topic: str,
        speed: float = 3600.0,
        reader_rate: int = 10,
        scenario: sensors.Scenario | None = None,
        sample_every: float = 0.5,
    ) -> None:
        self.settings = settings
        self.topic = topic
        self.group = f"notebook-reader-{uuid.uuid4().hex[:6]}"
        self.live = LiveSimulation(settings, scenario, speed, topic=topic)
        self.reader_rate = reader_rate
        self.sample_every = sample_every
        self.read = 0
        self.samples: list[LagSample] = []
        self.error: BaseException | None = None
        self._on_stop: list[Callable[[], None]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = 0.0

    @property
    def speed(self) -> float:
        return self.live.speed

    @speed.setter
    def speed(self, value: float) -> None:
        self.live.speed = value

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._started

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def lag(self) -> int:
        """The group's total lag at the last sample."""
        return sum(self.samples[-1].lag.values()) if self.samples else 0

    def when_stopped(self, action: Callable[[], None]) -> None:
        """Call ``action()`` once the demo has stopped (the sliders disable themselves)."""
        self._on_stop.append(action)

    def start(self, seconds: float | None = None) -> LagDemo:
        self._started = time.monotonic()
        self._sample()
        self.live.start()
        self._thread = threading.Thread(
            target=self._run, args=(seconds,), name="lag-demo-reader", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop now; raise what went wrong in the sensors' or the reader's thread."""
        self._stop.set()
        self.wait()

    def wait(self) -> None:
        """Wait until the demo has stopped; raise what went wrong in its threads."""
        if self._thread is not None:
            self._thread.join()
        if self.error is not None:
            raise self.error

    def _sample(self) -> None:
        offsets = kafka.offsets(self.settings, self.topic, self.group)
        lag = {p.partition: p.lag or 0 for p in offsets}
        sample = LagSample(self.elapsed, self.live.sent, self.read, self.reader_rate, lag)
        self.samples.append(sample)

    def _run(self, seconds: float | None) -> None:
        reader = kafka.consumer(self.settings, self.group)
        reader.subscribe([self.topic])
        allowance, last, last_sample = 0.0, time.monotonic(), 0.0
        try:
            while not self._stop.is_set() and (seconds is None or self.elapsed < seconds):
                now = time.monotonic()
                # A token bucket: the reader earns reader_rate messages a second and saves at
                # most a quarter of a second's worth, so that a raised limit shows at once.
                earned = allowance + self.reader_rate * (now - last)
                allowance, last = min(earned, self.reader_rate / 4 + 1), now
                if allowance >= 1:
                    wanted = min(int(allowance), 10_000)
                    messages = kafka.checked(reader.consume(wanted, timeout=0.05))
                    if messages and kafka.commit(reader, self._stop):
                        self.read += len(messages)
                        allowance -= len(messages)
                else:  # nothing earned yet (poll() would read a message)
                    self._stop.wait(0.02)
                if now - last_sample >= self.sample_every:
                    self._sample()
                    last_sample = now
        except BaseException as error:  # noqa: BLE001 - handed to the caller by wait()
            self.error = error
        finally:
            self._finish(reader)

    def _finish(self, reader: Consumer) -> None:
        try:
            self.live.stop()
            self._sample()
        except BaseException as error:  # noqa: BLE001 - handed to the caller by wait()
            self.error = self.error or error
        finally:
            reader.close()
            for action in self._on_stop:
                action()


def _rates(times: list[float], counts: list[int], window: float = 1.0) -> list[float]:
    """Messages a second at each sample after the first, over the last ``window`` seconds (a
    sample's own interval is too short to tell a rate from the noise of batching)."""
    rates, start = [], 0
    for i in range(1, len(times)):
        while times[i] - times[start + 1] >= window:
            start += 1
        elapsed = times[i] - times[start]
        rates.append((counts[i] - counts[start]) / elapsed if elapsed > 0 else 0.0)
    return rates


PARTITION_COLOURS = ("#55a868", "#8172b3", "#c44e52", "#937860", "#da8bc3", "#8c8c8c")


def lag_figure(demo: LagDemo) -> Figure:
    """Top: the sensors' rate against the reader's, over time. Bottom: the group's lag, in
    total and per partition, as the broker reports it."""
    samples = list(demo.samples)
    times = [s.seconds for s in samples]
    figure = Figure(figsize=(11, 5.5))
    rates, lag = figure.subplots(2, 1, sharex=True, height_ratios=[1, 1.4])
    sent, read = [s.sent for s in samples], [s.read for s in samples]
    rates.plot(times[1:], _rates(times, sent), color="#4c72b0", label="sensors send")
    rates.plot(times[1:], _rates(times, read), color="#dd8452", label="reader reads")
    limits = [s.reader_rate for s in samples]
    rates.step(times, limits, where="post", color="#dd8452", linestyle=":",
               label="reader's limit (slider)")  # fmt: skip
    rates.set_ylabel("messages per second")
    lag.plot(times, [sum(s.lag.values()) for s in samples], color="black", linewidth=2,
             label="total")  # fmt: skip
    for partition in sorted({p for s in samples for p in s.lag}):
        colour = PARTITION_COLOURS[partition % len(PARTITION_COLOURS)]
        lag.plot(times, [s.lag.get(partition, 0) for s in samples], color=colour, linewidth=1,
                 label=f"partition {partition}")  # fmt: skip
    lag.set_ylabel("lag (messages not\nyet committed)")
    lag.set_xlabel("wall-clock seconds since the demo started")
    for axes in (rates, lag):
        axes.set_ylim(bottom=0)
        axes.legend(loc="upper left", fontsize=8)
        axes.grid(alpha=0.3)
    if samples:
        rates.set_title(
            f"speed {demo.speed:,.0f} sim s/s: the sensors sent {sent[-1]:,} messages, the "
            f"reader read {read[-1]:,}; lag now {sum(samples[-1].lag.values()):,}"
        )
    figure.tight_layout()
    return figure


@dataclass
class LagView:
    """A running lag demo on screen: its sliders and its lag curve, redrawn by a thread, so
    that the notebook stays free to act on the sliders while it runs."""

    demo: LagDemo
    reader_rate: widgets.IntSlider
    speed: widgets.SelectionSlider
    readout: widgets.HTML
    chart: widgets.Image

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(widgets.VBox([self.reader_rate, self.speed, self.readout, self.chart]))


def lag_view(
    demo: LagDemo, every: float = 1.0, plan: dict[float, int] | None = None, max_rate: int = 1000
) -> LagView:
    """Sliders wired to a started lag demo (exact at every value, disabled when it stops) and
    its lag curve, redrawn every ``every`` seconds. ``plan`` moves the reader's slider at given
    seconds (``{15: 100}``), as a student would, so that an unattended run shows both sides."""
    style = {"description_width": "170px"}
    layout = widgets.Layout(width="520px")
    reader_rate = widgets.IntSlider(
        value=demo.reader_rate, min=0, max=max_rate, step=5, style=style, layout=layout,
        description="reader (messages/s)",
    )  # fmt: skip
    speed = widgets.SelectionSlider(
        options=[(f"{s:,}", s) for s in sorted({*SPEEDS, int(demo.speed)})],
        value=int(demo.speed), style=style, layout=layout, description="sensors' speed (sim s/s)",
    )  # fmt: skip
    readout = widgets.HTML()

    def describe(change: dict | None = None) -> None:
        demo.reader_rate, demo.speed = reader_rate.value, speed.value
        readout.value = (
            f"the sensors send ≈ {sensor_rate(demo.live.scenario, demo.speed):,.1f} messages/s "
            f"at speed {demo.speed:,.0f}; the reader reads at most {demo.reader_rate:,}/s"
        )

    def stopped() -> None:
        reader_rate.disabled = speed.disabled = True
        readout.value = (
            f"<b>stopped</b> after {demo.elapsed:.0f} s: the sensors sent {demo.live.sent:,} "
            f"messages, the reader read {demo.read:,}; the sliders no longer act"
        )

    reader_rate.observe(describe, names="value")
    speed.observe(describe, names="value")
    demo.when_stopped(stopped)
    describe()
    moves = dict(plan or {})

    def move_on_time() -> None:
        for at in [at for at in moves if demo.elapsed >= at]:
            reader_rate.value = moves.pop(at)

    chart = redrawn(lambda: lag_figure(demo), lambda: demo.running, every, move_on_time)
    return LagView(demo, reader_rate, speed, readout, chart)
