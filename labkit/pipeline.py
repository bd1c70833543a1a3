"""The whole path, end to end: simulate -> Kafka -> Flink -> Kafka -> HBase.

``run`` is what ``labkit run --days N`` does: a fresh, bounded run of a simulation through every
layer, with progress bars and a summary of what landed where. ``LiveSimulation`` and
``LivePipeline`` run the same path live, in real (compressed) time, for the notebooks.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any

import pandas as pd
from confluent_kafka import KafkaException
from tqdm.auto import tqdm

from labkit import flink, hbase, kafka, lock, oracle, sensors
from labkit.config import Settings

log = logging.getLogger(__name__)


@dataclass
class Summary:
    days: float
    events: int
    raw_rows: int
    daily_rows: int
    late_rows: int
    invalid_rows: int
    rollup_rows: int
    elapsed_s: float
    stages_s: dict[str, float] = field(default_factory=dict)

    @property
    def events_per_s(self) -> float:
        return self.events / self.elapsed_s if self.elapsed_s else 0.0

    def as_dict(self) -> dict:
        return {**asdict(self), "events_per_s": round(self.events_per_s, 1)}

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2)

    def __str__(self) -> str:
        stages = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in self.stages_s.items())
        return (
            f"Simulated {self.days:g} days: {self.events:,} events in {self.elapsed_s:.1f} s "
            f"({self.events_per_s:,.0f} events/s)\n"
            f"  HBase rows: raw {self.raw_rows:,}, daily {self.daily_rows:,}, "
            f"late {self.late_rows:,}, invalid {self.invalid_rows:,}, "
            f"roll-ups {self.rollup_rows:,}\n"
            f"  stages: {stages}"
        )


def has_data(settings: Settings) -> bool:
    """True when the raw table exists and holds at least one reading."""
    return hbase.has_rows(settings, hbase.TableKind.RAW)


def reset_data(settings: Settings) -> None:
    """Empty the pipeline's topics and tables, for a fresh run.

    Refused (``lock.LabInUseError``) while another process runs live on them; the live runs this
    process started on them are stopped first.
    """
    with lock.claimed(settings, lock.LiveRun.RESET):
        _recreate(settings)


def _recreate(settings: Settings) -> None:
    kafka.recreate_topics(settings)
    hbase.recreate_tables(settings)


def simulate_into_kafka(settings: Settings, scenario: sensors.Scenario, show: bool = True) -> int:
    """Send the scenario's messages to ``input`` as fast as possible; return how many."""
    with tqdm(
        total=round(scenario.days, 2), unit="day", desc="sensors -> Kafka", disable=not show
    ) as bar:

        def advance(sent: int, reading: sensors.Reading) -> None:
            done = (reading.sent_at - scenario.start).total_seconds() / 86400
            bar.n = round(min(done, scenario.days), 2)
            bar.set_postfix(events=f"{sent:,}")
            bar.refresh()

        return kafka.produce_readings(settings, sensors.simulate(scenario), on_progress=advance)


def _classified(settings: Settings) -> int:
    topics = settings.topics
    return sum(
        kafka.message_count(settings, topic)
        for topic in (topics.output_raw, topics.input_late, topics.input_invalid)
    )


def run(settings: Settings, scenario: sensors.Scenario, show: bool = True) -> Summary:
    """A fresh bounded run of ``scenario`` through every layer; returns what landed in HBase.

    It holds the lab's topics meanwhile: refused (``lock.LabInUseError``) while another process
    runs live on them.
    """
    with lock.claimed(settings, lock.LiveRun.FRESH_RUN) as claim:
        return _fresh_run(settings, scenario, show, claim)


def _fresh_run(
    settings: Settings, scenario: sensors.Scenario, show: bool, claim: lock.Claim
) -> Summary:
    stages: dict[str, float] = {}
    started = time.monotonic()

    mark = time.monotonic()
    _recreate(settings)
    stages["reset"] = time.monotonic() - mark

    mark = time.monotonic()
    events = simulate_into_kafka(settings, scenario, show)
    stages["produce"] = time.monotonic() - mark

    # The writers copy Flink's output into HBase while the job is still running.
    writers = hbase.Writers(settings).start()
    try:
        mark = time.monotonic()
        desc = f"Flink job ({settings.flink_mode})"
        with tqdm(total=events, unit="msg", desc=desc, disable=not show) as bar:

            def poll() -> None:
                bar.n = _classified(settings)
                bar.refresh()

            flink.run_bounded(settings, poll if show else None, under=claim)
        stages["flink"] = time.monotonic() - mark

        mark = time.monotonic()
        total = sum(
            kafka.message_count(settings, hbase.source_topic(settings, kind))
            for kind in hbase.TableKind
        )
        with tqdm(total=total, unit="row", desc="Kafka -> HBase", disable=not show) as bar:
            writers.finish(on_progress=lambda rows: bar.update(rows - bar.n))
        stages["hbase"] = time.monotonic() - mark
    finally:
        writers.shutdown()

    elapsed = time.monotonic() - started
    rows = {kind: hbase.count_rows(settings, kind) for kind in hbase.TableKind}
    return Summary(
        days=scenario.days,
        events=events,
        raw_rows=rows[hbase.TableKind.RAW],
        daily_rows=rows[hbase.TableKind.DAILY],
        late_rows=rows[hbase.TableKind.LATE],
        invalid_rows=rows[hbase.TableKind.INVALID],
        rollup_rows=rows[hbase.TableKind.ROLLUP],
        elapsed_s=elapsed,
        stages_s=stages,
    )


class LiveSimulation:
    """The sensors sending into Kafka in real time: ``speed`` simulated seconds per second.

    It runs in a background thread until ``stop()`` (or ``seconds``, if given, have passed).
    ``update(...)`` changes the scenario's knobs (rates, sensors off, late events) and
    ``speed`` may be changed at any time: the notebook sliders do both while it runs, and
    ``on_end`` tells them when it has ended.
    ``first_tick`` continues a scenario whose earlier ticks were sent already (by
    ``sensors.Simulator`` ticked as far): the sensors go on from the same state.

    It claims its topic while it runs (``labkit.lock``): it does not start while another process
    runs live on it, and it stops by itself on an interrupt, for a newer run of this process, or
    when the lab is taken down (then ``stop()`` raises ``lock.LabDownError``).
    """

    def __init__(
        self,
        settings: Settings,
        scenario: sensors.Scenario | None = None,
        speed: float = 900.0,
        keep: int = 20_000,
        keep_all: bool = False,
        topic: str | None = None,
        first_tick: int = 0,
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive (simulated seconds per wall second)")
        self.settings = settings
        self.topic = topic or settings.topics.input
        self.simulator = sensors.Simulator(scenario or sensors.Scenario())
        self.speed = speed
        self.sent = 0
        self.per_sensor: Counter[str] = Counter()
        self.recent: deque[sensors.Reading] = deque(maxlen=keep)
        # Every reading sent, for an oracle check afterwards (a live run of a few weeks).
        self.history: list[sensors.Reading] | None = [] if keep_all else None
        for tick in range(first_tick):  # the sensors' state (meters, random numbers) so far
            self.simulator.tick(tick)
        self.tick = first_tick
        self.error: BaseException | None = None
        self.failure: lock.LiveRunError | None = None  # why it was halted, when it was an error
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ended = False
        self._on_end: list[Callable[[], None]] = []
        self._end_lock = threading.Lock()
        self._claim: lock.Claim | None = None
        self._flush_timeout = 60.0

    @property
    def scenario(self) -> sensors.Scenario:
        return self.simulator.scenario

    @property
    def simulated_now(self) -> datetime:
        return self.scenario.start + self.tick * sensors.TICK

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def update(self, **changes: Any) -> None:
        """Change knobs of the running scenario, e.g. ``update(late_2d_every=5)``."""
        self.simulator.scenario = replace(self.simulator.scenario, **changes)

    def on_end(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` once the simulation has ended (stopped, or its time is up), in
        the thread that ends it; at once if it already has."""
        with self._end_lock:
            if not self._ended:
                self._on_end.append(callback)
                return
        callback()

    def _finish(self) -> None:
        with self._end_lock:
            self._ended, callbacks, self._on_end = True, self._on_end, []
        for callback in callbacks:
            try:
                callback()
            except Exception:  # a broken callback must not hide the run's end
                log.exception("a callback at the end of the live simulation failed")

    def start(
        self, seconds: float | None = None, under: lock.Claim | None = None
    ) -> LiveSimulation:
        """Start sending; ``under``: the claim of the run it is part of (a ``LivePipeline``'s),
        else it claims its topic for itself."""
        if under is None:
            self._claim = lock.claim(self.settings, lock.LiveRun.SENSORS, self._halt, self.topic)
        self._thread = threading.Thread(
            target=self._run, args=(seconds,), name="live-simulation", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
        else:  # never started: it has ended all the same
            self._finish()
        if self.failure is not None:
            raise self.failure
        if self.error is not None:
            raise self.error

    def _halt(self, reason: lock.LiveRunError | None) -> None:
        """Stop now (an interrupt, a newer run, the lab down: ``reason``)."""
        self.failure = reason
        if reason is not None:
            self._flush_timeout = 5.0  # the lab is down: what is queued cannot be delivered
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)

    def wait(self) -> None:
        """Wait until the simulation ends by itself (``seconds`` passed)."""
        if self._thread is not None:
            self._thread.join()
        self.stop()

    def _run(self, seconds: float | None) -> None:
        producer = kafka.BatchProducer(self.settings, **{"linger.ms": 5})
        topic = self.topic
        started = time.monotonic()
        # The simulated clock is anchored to the wall clock; a speed change re-anchors it.
        anchor_wall, anchor_tick, anchor_speed = started, self.tick, self.speed
        try:
            while not self._stop.is_set():
                if seconds is not None and time.monotonic() - started >= seconds:
                    break
                if self.speed != anchor_speed:
                    anchor_wall, anchor_tick, anchor_speed = time.monotonic(), self.tick, self.speed
                due = (
                    anchor_wall
                    + (self.tick - anchor_tick) * sensors.TICK.total_seconds() / anchor_speed
                )
                if self._stop.wait(max(0.0, due - time.monotonic())):
                    break
                for reading in self.simulator.tick(self.tick):
                    producer.send(
                        topic, reading.message(), reading.sensor.encode(), reading.sent_at_ms
                    )
                    self.per_sensor[reading.sensor] += 1
                    self.recent.append(reading)
                    if self.history is not None:
                        self.history.append(reading)
                    self.sent += 1
                producer.producer.poll(0)
                self.tick += 1
            producer.flush(self._flush_timeout)
        except BaseException as error:  # noqa: BLE001 - handed to the caller by stop()
            self.error = error
        finally:
            # What Kafka did not take in time (the lab went down) is dropped here: queued, it
            # would be delivered once the lab is back, into the next run's topics.
            producer.producer.purge()
            producer.producer.flush(0)
            if self._claim is not None:
                self._claim.release()
            self._finish()


class LivePipeline:
    """The whole pipeline live: sensors -> Kafka -> Flink (unbounded job) -> Kafka -> HBase.

    It claims the lab's topics from ``start()`` to ``stop()`` (``labkit.lock``): it does not
    start while another process runs live on them, and it is halted (``partial`` becomes True)
    by an interrupt, by a newer run of this process, or when the lab is taken down (then
    ``counts()`` and ``stop()`` raise ``lock.LabDownError``).
    """

    def __init__(
        self, settings: Settings, scenario: sensors.Scenario | None = None, speed: float = 3600.0
    ) -> None:
        self.settings = settings
        self.scenario = scenario or sensors.Scenario()
        self.speed = speed
        self.writers: hbase.Writers | None = None
        self.job: flink.RunningJob | None = None
        self.simulation: LiveSimulation | None = None
        # Halted before Flink and the writers caught up: HBase holds part of what was sent.
        self.partial = False
        self.failure: lock.LiveRunError | None = None
        self._claim: lock.Claim | None = None

    def start(self, fresh: bool = True) -> LivePipeline:
        """Start the writers and the Flink job, then the sensors (a fresh run by default).

        A live run this process started earlier on the same topics is stopped first; an
        interrupt while it starts stops what had started.
        """
        self._claim = lock.claim(self.settings, lock.LiveRun.PIPELINE, self._halt)
        try:
            if fresh:
                _recreate(self.settings)
            self.writers = hbase.Writers(self.settings).start()
            self.job = flink.start_pipeline(self.settings, bounded=False, under=self._claim)
            self.simulation = LiveSimulation(
                self.settings, self.scenario, self.speed, keep_all=True
            ).start(under=self._claim)
        except BaseException as error:
            self._halt(None)
            if isinstance(error, KeyboardInterrupt):
                print("Interrupted while starting: what had started is stopped.")
            raise
        return self

    def counts(self) -> dict[str, int]:
        """Messages sent, classified by Flink per output topic, and rows written to HBase."""
        if self.failure is not None:
            raise self.failure
        topics = self.settings.topics
        counts = {"sent": self.simulation.sent if self.simulation else 0}
        try:
            for name, topic in (
                ("raw", topics.output_raw),
                ("late", topics.input_late),
                ("invalid", topics.input_invalid),
                ("daily", topics.output_aggr),
            ):
                counts[name] = kafka.message_count(self.settings, topic)
        except KafkaException:
            if (down := self._halt_if_lab_down()) is not None:
                raise down from None
            raise
        counts["hbase rows"] = self.writers.rows if self.writers else 0
        return counts

    def stop(self, timeout: float = 120.0) -> dict[str, int]:
        """Stop the sensors, let Flink and the writers catch up, then stop the job.

        Once halted, it only returns the counts, which are partial.
        """
        if self.failure is not None:
            raise self.failure
        if self.partial:
            return self.counts()
        deadline = time.monotonic() + timeout
        try:
            if self.simulation is not None:
                self.simulation.stop()
                while _classified(self.settings) < self.simulation.sent:
                    if time.monotonic() > deadline:
                        raise TimeoutError("Flink did not catch up with the sensors in time")
                    time.sleep(0.5)
            if self.job is not None:
                self.job.cancel()
            if self.writers is not None:
                self.writers.finish()
        except Exception:
            if (down := self._halt_if_lab_down()) is not None:
                raise down from None
            self._halt(None)
            raise
        if self._claim is not None:
            self._claim.release()
        return self.counts()

    def _halt_if_lab_down(self) -> lock.LabDownError | None:
        """When the lab has been taken down: halt, and return the error that says so."""
        if not lock.lab_down(self.settings):
            return None
        error = lock.lab_down_error(lock.LiveRun.PIPELINE)
        self._halt(error)
        return error

    def _halt(self, reason: lock.LiveRunError | None) -> None:
        """Stop every part at once, without letting Flink and the writers catch up."""
        self.partial = True
        self.failure = self.failure or reason
        if self.writers is not None:
            self.writers.stop.set()  # at once: they may be retrying while HBase is gone
        if self.simulation is not None:
            _quietly("the sensors", self.simulation._halt, reason)
        if self.job is not None:
            _quietly("the Flink job", self.job.cancel)
        if self.writers is not None:
            _quietly("the HBase writers", self.writers.shutdown)
        if self._claim is not None:
            self._claim.release()


def _quietly(what: str, stop: Callable[..., object], *args: object) -> None:
    """``stop(*args)``, logging a failure: one part failing to stop must not keep the others."""
    try:
        stop(*args)
    except Exception as error:
        log.warning("stopping %s failed: %s", what, error)
        log.debug("how stopping %s failed", what, exc_info=True)


def oracle_check(settings: Settings, readings: list[sensors.Reading]) -> pd.DataFrame:
    """HBase's daily metrics beside the oracle's, for every day whose windows have closed.

    Columns: metric, day, kind, expected, stored, readings_expected, readings_stored, match.
    """
    messages = oracle.messages_frame(readings)
    expected = oracle.expected(messages).daily
    open_day = oracle.first_open_day(messages).date()
    expected = expected[expected["day"] < open_day]
    stored = []
    for metric in sensors.daily_metrics():
        series = hbase.read_series(settings, metric, end=open_day, kind="daily")
        stored += [
            (metric, moment.date(), row.value, row.readings) for moment, row in series.iterrows()
        ]
    found = pd.DataFrame(stored, columns=["metric", "day", "stored", "readings_stored"])
    table = expected.rename(columns={"value": "expected", "readings": "readings_expected"})
    table = table.merge(found, on=["metric", "day"], how="outer")
    table["match"] = [
        e == e and s == s and math.isclose(e, s, rel_tol=1e-9) and re == rs
        for e, s, re, rs in zip(
            table["expected"], table["stored"], table["readings_expected"],
            table["readings_stored"], strict=True,
        )
    ]  # fmt: skip
    return table
