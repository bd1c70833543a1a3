"""Crashes and restarts lose nothing: faults injected into a live run of the real pipeline.

Each test runs the sensors live into Kafka, the live Flink job and the HBase writers on topics
and tables of its own, injects one fault mid-stream (a writer killed with SIGKILL, the HBase
Thrift server down for 10 s, the Kafka broker restarted, the Flink job cancelled and restored
from its checkpoint), lets the run go on, and then waits for HBase to equal the oracle computed
from every message the sensors sent: the raw and late tables whole, the daily table on every
day whose windows have closed. Replays (at-least-once) must leave no duplicate row behind.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from labkit import config, flink, hbase, kafka, oracle, pipeline, sensors, services

from .tables import table_rows

pytestmark = pytest.mark.slow

DAY = 86_400.0
SPEED = DAY / 4  # simulated seconds per second: a day every four seconds


def _stamp(moment) -> str:
    return moment.strftime(sensors.TIMESTAMP_FORMAT)


def mismatches(settings, readings: list[sensors.Reading]) -> list[str]:
    """How HBase differs from the oracle over ``readings``; empty when it does not."""
    expected = oracle.expected(oracle.messages_frame(readings))
    found = []
    raw = {
        f"{r.sensor}#{_stamp(r.timestamp)}".encode(): repr(r.value).encode()
        for r in expected.raw.itertuples()
    }
    late = {
        f"{r.sensor}#{_stamp(r.timestamp)}#0-{r.offset:012d}".encode(): repr(r.value).encode()
        for r in expected.late.itertuples()
    }
    for kind, wanted in (("raw", raw), ("late", late)):
        stored = {key: columns[b"d:value"] for key, columns in table_rows(settings, kind).items()}
        if stored != wanted:
            differ = len(set(stored.items()) ^ set(wanted.items()))
            found.append(f"{kind}: {len(stored)} rows, {len(wanted)} expected, {differ} differ")
    check = pipeline.oracle_check(settings, readings)
    if not check["match"].all():
        found.append(f"daily: {(~check['match']).sum()} of {len(check)} closed-day rows differ")
    # Nothing for the days still open either: their windows never fired.
    daily_rows = hbase.count_rows(settings, "daily")
    if daily_rows != len(check):
        found.append(f"daily: {daily_rows} rows, {len(check)} expected on closed days")
    if hbase.count_rows(settings, "invalid"):
        found.append("invalid: rows, though the sensors sent no junk")
    return found


def settle(settings, readings: list[sensors.Reading], timeout: float = 120.0) -> list[str]:
    """Wait until HBase equals the oracle; the last mismatches when it did not in time."""
    deadline = time.monotonic() + timeout
    while True:
        found = mismatches(settings, readings)
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(2)


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.25)


class Live:
    """The sensors (live, paced) and the live Flink job; the HBase writers are each test's."""

    def __init__(self, settings, scenario: sensors.Scenario | None = None) -> None:
        self.settings = settings
        scenario = scenario or sensors.Scenario(seed=7)
        self.simulation = pipeline.LiveSimulation(settings, scenario, SPEED, keep_all=True)
        self.job: flink.RunningJob | None = None

    def start(self) -> Live:
        self.job = flink.start_pipeline(self.settings, bounded=False)
        self.simulation.start()
        return self

    @property
    def days(self) -> float:
        return self.simulation.tick / sensors.TICKS_PER_DAY

    def raw_messages(self) -> int:
        return kafka.message_count(self.settings, self.settings.topics.output_raw)

    def run_until(self, days: float) -> list[sensors.Reading]:
        """Let the sensors send until ``days`` simulated days, then stop them; what they sent."""
        wait_for(lambda: self.days >= days, f"{days} simulated days", timeout=days * 10 + 60)
        self.simulation.stop()
        return self.simulation.history

    def close(self) -> None:
        if self.simulation.running:
            self.simulation.stop()
        if self.job is not None:
            self.job.cancel()
            self.job = None
        # A cancelled live job keeps its last checkpoint: these topics are gone after the test.
        shutil.rmtree(flink.checkpoint_dir(self.settings), ignore_errors=True)


def committed(settings, kind: str) -> int:
    """How many messages of a table's topic its writer group has committed."""
    writer = hbase.Writer(settings, kind)
    return sum(p.committed or 0 for p in kafka.offsets(settings, writer.topic, writer.group))


# --------------------------------------------------------------------------------------
# (a) A writer process killed with SIGKILL, then started again
# --------------------------------------------------------------------------------------


def _writer_process(settings, log: Path) -> subprocess.Popen:
    """``labkit write`` in a process of its own, on the test's topics and tables."""
    env = {**os.environ, **config.to_environment(settings)}
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "labkit", "write"],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip


def test_a_writer_killed_mid_stream_loses_nothing_and_duplicates_nothing(isolated, tmp_path):
    log = tmp_path / "writers.log"
    first = _writer_process(isolated, log)
    live = Live(isolated).start()
    second = None
    try:
        # Mid-stream: the first writer has stored and committed some rows, more keep coming.
        wait_for(lambda: committed(isolated, "raw") > 0, "the first writer's first commit")
        first.send_signal(signal.SIGKILL)
        assert first.wait(30) == -signal.SIGKILL
        at_kill = {kind: committed(isolated, kind) for kind in hbase.TableKind}
        stored_at_kill = hbase.count_rows(isolated, "raw")
        # The sensors and Flink go on while no writer runs; then a new one starts.
        time.sleep(3)
        assert committed(isolated, "raw") == at_kill["raw"]
        second = _writer_process(isolated, log)
        readings = live.run_until(days=live.days + 3)
        problems = settle(isolated, readings)
        raw_total = live.raw_messages()
        second.send_signal(signal.SIGINT)  # Ctrl-C: the writers stop and print their rows
        assert second.wait(60) == 0
    finally:
        live.close()
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.kill()
    print(
        f"\nkilled after {at_kill['raw']} committed raw rows ({stored_at_kill} stored); "
        f"{raw_total} raw messages in all; the new writer: {log.read_text().splitlines()[-5:]}"
    )
    assert not problems
    assert at_kill["raw"] < raw_total
    # The new writer started from the last commit: it copied everything after it.
    rows = re.search(r"^raw\s+([\d,]+) rows", log.read_text(), re.MULTILINE)
    assert rows and int(rows.group(1).replace(",", "")) >= raw_total - at_kill["raw"]


# --------------------------------------------------------------------------------------
# (b) The HBase Thrift server down for 10 s
# --------------------------------------------------------------------------------------


def test_writers_retry_while_thrift_is_down_and_catch_up(isolated):
    writers = hbase.Writers(isolated).start()
    live = Live(isolated).start()
    try:
        wait_for(lambda: writers.rows > 0, "the writers' first rows")
        assert services.stop(services.THRIFT, isolated)
        down_at = time.monotonic()
        time.sleep(10)
        rows_while_down = writers.rows
        services.start(services.THRIFT, isolated)
        services.wait_ready(services.THRIFT, isolated)
        outage = time.monotonic() - down_at
        readings = live.run_until(days=live.days + 2)
        problems = settle(isolated, readings)
    finally:
        live.close()
        stats = writers.finish()
    retries = {kind: stat.retries for kind, stat in stats.items()}
    print(f"\nThrift down {outage:.0f} s; retries {retries}; {rows_while_down} rows before")
    assert not problems
    assert sum(retries.values()) > 0
    assert any(stat.last_error for stat in stats.values())


# --------------------------------------------------------------------------------------
# (c) The Kafka broker restarted
# --------------------------------------------------------------------------------------


def test_producer_flink_and_writers_survive_a_kafka_restart(isolated):
    writers = hbase.Writers(isolated).start()
    live = Live(isolated).start()
    try:
        wait_for(lambda: writers.rows > 0, "the writers' first rows")
        sent_before = live.simulation.sent
        assert services.stop(services.KAFKA, isolated)
        services.start(services.KAFKA, isolated)
        services.wait_ready(services.KAFKA, isolated)
        readings = live.run_until(days=live.days + 2)
        problems = settle(isolated, readings, timeout=180)
    finally:
        live.close()
        stats = writers.finish()
    print(f"\nKafka restarted after {sent_before} messages; {len(readings)} sent in all; {stats}")
    assert not problems
    assert len(readings) > sent_before


# --------------------------------------------------------------------------------------
# (d) The live job cancelled and restored from its last checkpoint
# --------------------------------------------------------------------------------------


def test_the_live_job_restored_from_its_checkpoint_keeps_the_aggregates(isolated):
    # No late events: the watermark is not part of a checkpoint, so a late reading that happens
    # to be the first message after the restore would not be late (docs/reliability.md).
    scenario = sensors.Scenario(seed=5, late_2d_every=0, late_10d_every=0)
    writers = hbase.Writers(isolated).start()
    live = Live(isolated, scenario).start()
    try:
        wait_for(lambda: flink.latest_checkpoint(isolated) is not None, "a checkpoint")
        checkpoint = flink.latest_checkpoint(isolated)
        time.sleep(2)  # output after the checkpoint, which the restored job produces again
        live.job.cancel()
        live.job = None
        cancelled_at_day = live.days
        time.sleep(2)
        live.job = flink.start_pipeline(isolated, bounded=False, restore=True)
        readings = live.run_until(days=cancelled_at_day + 3)
        problems = settle(isolated, readings)
        replayed = live.raw_messages() - hbase.count_rows(isolated, "raw")
    finally:
        live.close()
        writers.finish()
    print(f"\nrestored from {checkpoint.name} on day {cancelled_at_day:.2f}; {replayed} replayed")
    assert not problems
