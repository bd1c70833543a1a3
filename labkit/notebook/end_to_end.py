"""Notebook 06: the whole pipeline live, two failures injected into it, and the oracle's verdict.

``LiveRun`` runs the sensors, the live Flink job and the HBase writers, as ``labkit write`` in a
process of its own so that it can be killed for real (SIGKILL: no goodbye, no last commit).
Its steps are the notebook's: ``kill_writer`` and ``restart_writer``, ``cancel_job`` and
``restore_job`` (from the job's last checkpoint), then ``stop``, which waits until HBase holds
what the oracle computes. Meanwhile a sampler notes, every second, what was sent, what Flink
produced and what the writer committed: ``timeline_figure`` draws it with the failures marked.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from labkit import config, flink, hbase, kafka, oracle, pipeline, sensors
from labkit.config import Settings
from labkit.errors import LabkitError
from labkit.hbase import layout
from labkit.hbase.layout import TableKind

SAMPLE_EVERY_S = 1.0
# What the timeline draws, from each sample.
LINES = {"sent": "sent by the sensors", "flink output": "written by Flink to its topics",
         "committed": "committed by the HBase writer (raw)"}  # fmt: skip


class WriterProcess:
    """``labkit write`` in a process of its own, on the settings' topics and tables."""

    def __init__(self, settings: Settings, log: Path) -> None:
        self.log = log
        env = {**os.environ, **config.to_environment(settings)}
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "labkit", "write"],
                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        # A notebook stopped halfway (an error, a restarted kernel) leaves no writer behind.
        atexit.register(self.stop)

    @property
    def pid(self) -> int:
        return self.process.pid

    def kill(self) -> None:
        """SIGKILL: the process ends at once, whatever it was doing."""
        atexit.unregister(self.stop)
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def stop(self) -> str:
        """Ctrl-C (SIGINT): the writers stop after their batch; what they printed."""
        atexit.unregister(self.stop)
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.log.read_text(errors="replace")


@dataclass(frozen=True)
class Incident:
    """A failure injected, or a recovery, at ``at_s`` seconds into the run."""

    at_s: float
    day: float  # the simulated day (since the scenario's start) it happened on
    what: str


class LiveRun:
    """Sensors -> Kafka -> live Flink job -> Kafka -> ``labkit write`` -> HBase, with failures."""

    def __init__(self, settings: Settings, scenario: sensors.Scenario, speed: float) -> None:
        self.settings = settings
        self.simulation = pipeline.LiveSimulation(settings, scenario, speed, keep_all=True)
        self.raw_writer = hbase.Writer(settings, TableKind.RAW)  # its topic and group's names
        self.log = settings.logs_dir / f"writer-{settings.hbase_table_prefix}.log"
        self.writer: WriterProcess | None = None
        self.job: flink.RunningJob | None = None
        self.incidents: list[Incident] = []
        self.samples: list[dict[str, float]] = []
        self._started = 0.0
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, name="live-run-sampler", daemon=True)

    # -- measuring ---------------------------------------------------------------------

    @property
    def day(self) -> float:
        return self.simulation.tick / sensors.TICKS_PER_DAY

    def committed(self) -> int:
        """How many raw messages the writer has stored and committed."""
        offsets = kafka.offsets(self.settings, self.raw_writer.topic, self.raw_writer.group)
        return sum(p.committed or 0 for p in offsets)

    def measure(self) -> dict[str, float]:
        topics = self.settings.topics
        produced = (topics.output_raw, topics.input_late, topics.input_invalid)
        return {
            "s": round(time.monotonic() - self._started, 1),
            "day": round(self.day, 2),
            "sent": self.simulation.sent,
            "flink output": sum(kafka.message_count(self.settings, t) for t in produced),
            "committed": self.committed(),
        }

    def _sample(self) -> None:
        while not self._stop.wait(SAMPLE_EVERY_S):
            self.samples.append(self.measure())

    def counts(self) -> pd.DataFrame:
        """The latest sample as a one-row table (the live view)."""
        return pd.DataFrame([self.samples[-1] if self.samples else self.measure()])

    def _wait(self, condition: Callable[[], bool], what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise LabkitError(
                    f"Gave up waiting for {what} after {timeout:.0f} s: is the lab up "
                    f"(`labkit status`)? The writer's log is {self.log}."
                )
            time.sleep(0.25)

    def _running(self) -> tuple[WriterProcess, flink.RunningJob]:
        if self.writer is None or self.job is None:
            raise LabkitError("The run is not running: start() it first")
        return self.writer, self.job

    def _note(self, what: str) -> str:
        self.incidents.append(Incident(time.monotonic() - self._started, self.day, what))
        return f"{what} (after {self.incidents[-1].at_s:.0f} s, on simulated day {self.day:.1f})"

    # -- the run and its failures --------------------------------------------------------

    def start(self) -> LiveRun:
        """Empty the topics and tables, start the writer, the live job and the sensors."""
        pipeline.reset_data(self.settings)
        self._started = time.monotonic()
        self._sampler.start()  # from the start: the timeline shows how long Flink takes to start
        self.writer = WriterProcess(self.settings, self.log)
        self.job = flink.start_pipeline(self.settings, bounded=False)
        self.simulation.start()
        return self

    def kill_writer(self, timeout: float = 300) -> str:
        """Once the writer has committed rows, kill it with SIGKILL mid-stream."""
        writer, _ = self._running()
        self._wait(lambda: self.committed() > 0, "the writer's first commit", timeout)
        writer.kill()
        committed, stored = self.committed(), hbase.count_rows(self.settings, TableKind.RAW)
        return self._note(
            f"labkit write (pid {writer.pid}) killed with SIGKILL: it had committed "
            f"{committed:,} raw messages, and HBase held {stored:,} raw rows"
        )

    def restart_writer(self) -> str:
        """A new ``labkit write``: it starts from the offsets the killed one committed."""
        self.writer = WriterProcess(self.settings, self.log)
        return self._note(f"a new labkit write (pid {self.writer.pid}) started")

    def cancel_job(self, timeout: float = 120) -> str:
        """Once the live job has a checkpoint, cancel the job (the sensors keep sending)."""
        _, job = self._running()
        self._wait(lambda: self._checkpoint() is not None, "the job's first checkpoint", timeout)
        job.cancel()
        self.job = None
        return self._note(f"Flink job cancelled; its last checkpoint is {self._checkpoint()}")

    def restore_job(self) -> str:
        """Start the live job again from its last checkpoint: offsets and open windows."""
        checkpoint = self._checkpoint()  # the one start_pipeline restores (the newest)
        self.job = flink.start_pipeline(self.settings, bounded=False, restore=True)
        return self._note(f"Flink job restored from {checkpoint}")

    def _checkpoint(self) -> str | None:
        """The name of the newest complete checkpoint (``chk-3``)."""
        newest = flink.latest_checkpoint(self.settings)
        return newest.name if newest is not None else None

    def stop(self, timeout: float = 300) -> bool:
        """Stop the sensors, wait until HBase holds as many raw readings and closed days as
        the oracle computes from everything they sent (or ``timeout`` passed), then stop the
        job and the writer. True when HBase caught up."""
        self.simulation.stop()
        messages = oracle.messages_frame(self.readings)
        expected = oracle.expected(messages)
        closed = expected.daily["day"] < oracle.first_open_day(messages).date()
        wanted = {TableKind.RAW: len(expected.raw), TableKind.DAILY: int(closed.sum())}
        deadline = time.monotonic() + timeout
        caught_up = False
        while not caught_up and time.monotonic() < deadline:
            time.sleep(1.0)
            caught_up = all(
                hbase.count_rows(self.settings, kind) >= rows for kind, rows in wanted.items()
            )
        self._stop.set()
        self._sampler.join(10)
        self.samples.append(self.measure())
        if self.job is not None:
            self.job.cancel()
            self.job = None
        if self.writer is not None:
            self.writer.stop()
        return caught_up

    @property
    def readings(self) -> list[sensors.Reading]:
        """Every reading the sensors sent."""
        return self.simulation.history or []

    def close(self) -> None:
        """Stop whatever still runs, and delete the job's checkpoints."""
        self._stop.set()
        if self.simulation.running:
            self.simulation.stop()
        if self.job is not None:
            self.job.cancel()
            self.job = None
        if self.writer is not None:
            self.writer.stop()
        shutil.rmtree(flink.checkpoint_dir(self.settings), ignore_errors=True)


# --------------------------------------------------------------------------------------
# What the notebook shows
# --------------------------------------------------------------------------------------


def timeline_figure(run: LiveRun) -> Figure:
    """Messages sent, produced by Flink and committed by the writer over the run, with the
    failures and recoveries marked and numbered."""
    frame = pd.DataFrame(run.samples)
    figure = Figure(figsize=(13, 4.6))
    axes = figure.add_subplot()
    for column, label in LINES.items():
        axes.plot(frame["s"], frame[column], label=label, linewidth=1.6)
    on_top = axes.get_xaxis_transform()  # x in data, y in axes fractions
    for number, incident in enumerate(run.incidents, start=1):
        axes.axvline(incident.at_s, color="#c44e52", linestyle="--", linewidth=1)
        axes.text(incident.at_s, 0.97 - 0.08 * (number - 1), f" {number}", color="#c44e52",
                  transform=on_top, va="top", fontweight="bold")  # fmt: skip
    axes.set_xlabel("seconds since the run started")
    axes.set_ylabel("messages")
    axes.set_title("The live run; the dashed lines are the failures and recoveries (table below)")
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=len(LINES), fontsize=9)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    return figure


def incidents_table(run: LiveRun) -> pd.DataFrame:
    rows = [
        {"seconds": round(i.at_s), "simulated day": round(i.day, 1), "what": i.what}
        for i in run.incidents
    ]
    return pd.DataFrame(rows, index=pd.RangeIndex(1, len(rows) + 1, name="#"))


def _stored(settings: Settings, kind: TableKind) -> dict[bytes, bytes]:
    """Row key -> value of a table's rows, one range scan per sensor."""
    return {
        key: columns[layout.Column.VALUE]
        for sensor in sensors.CATALOGUE
        for key, columns in hbase.scan(settings, kind, sensor.name)
    }


def _row(what: str, expected: int, topic: int, stored: int, missing: int, wrong: int) -> dict:
    return {"what": what, "oracle": expected, "Kafka topic (messages)": topic,
            "HBase (rows)": stored, "missing": missing, "differ or extra": wrong}  # fmt: skip


def losses(
    settings: Settings, readings: list[sensors.Reading], expected: oracle.Expected | None = None
) -> pd.DataFrame:
    """Per table: what the oracle computes from every reading sent, what the Kafka topic and
    HBase hold, and how many rows are missing, differ or are extra. A reading counted twice in
    a daily value changes the value and its count of readings: that row differs."""
    expected = expected or oracle.expected(oracle.messages_frame(readings))
    topics = settings.topics
    raw = {
        layout.raw_row(r.sensor, layout.time_text(r.timestamp), r.value)[0]: layout.encode(r.value)
        for r in expected.raw.itertuples()
    }
    stored = _stored(settings, TableKind.RAW)
    late = len(_stored(settings, TableKind.LATE))
    daily = pipeline.oracle_check(settings, readings)
    found = daily["stored"].notna()
    rows = [
        _row("raw readings", len(raw), kafka.message_count(settings, topics.output_raw),
             len(stored), len(raw.keys() - stored.keys()),
             sum(stored[key] != raw.get(key) for key in stored)),
        _row("late readings", len(expected.late), kafka.message_count(settings, topics.input_late),
             late, max(0, len(expected.late) - late), max(0, late - len(expected.late))),
        _row("daily values (closed days)", int(daily["expected"].notna().sum()),
             kafka.message_count(settings, topics.output_aggr), int(found.sum()),
             int((~found).sum()), int((~daily["match"] & found).sum())),
    ]  # fmt: skip
    frame = pd.DataFrame(rows).set_index("what")
    frame["as the oracle"] = (frame["missing"] == 0) & (frame["differ or extra"] == 0)
    return frame
