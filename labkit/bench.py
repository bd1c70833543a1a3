"""One benchmark of the whole pipeline on the real services, beside the original's pattern.

``labkit bench`` (``make bench``) measures, in one run and on topics and tables of its own:

* the simulator -> Kafka produce rate;
* the Flink job's throughput over a pre-filled ``input`` (bounded), and its start-up time;
  beside it, its floor: a plain copy of the same input through the same connector, and the
  job's run time (and CPU time) as a multiple of the copy's;
* the HBase writers' throughput, and alone again on the same rows, best and median of a few
  runs (the machine is shared and noisy);
* end to end with the services warm (writers and a live Flink job already running): one
  simulated year from the simulator until every reading is readable in HBase;
* live latency: a reading produced -> visible through the API (p50, p95);
* the API's ``/query`` latency: a sensor-year of raw data at 1,000 points (through the
  roll-ups, and from every raw reading), and 10 targets over 7 days (p50, p95);
* the API under a short load: 5 dashboards refreshing every 2 s for 20 s
  (``labkit.loadtest``: throughput, latency, errors, shed, the API process's memory);
* the peak resident memory of each process of the stack;
* a naive baseline written the way the original system worked (a producer poll per message;
  a new HBase connection and one put per message), measured in the same run.

It prints a table and can write the figures as JSON; docs/benchmarks.md keeps their history.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import psutil

from labkit import api, flink, hbase, kafka, loadtest, sandbox, sensors, services
from labkit.config import Settings
from labkit.flink import floor

Progress = Callable[[str], None]


@dataclass(frozen=True)
class BenchConfig:
    days: float = 365  # the simulated period of the throughput and end-to-end figures
    latency_samples: int = 40  # readings timed from producer to API
    api_repeats: int = 30  # requests per API figure
    baseline_days: float = 2  # the naive baseline is slow: it runs on a sample
    writer_runs: int = 3  # the writers alone, again and again on the same rows


@dataclass
class Report:
    figures: dict[str, float | int | str] = field(default_factory=dict)
    memory_mb: dict[str, float] = field(default_factory=dict)
    machine: dict[str, str | int | float] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(
            {"figures": self.figures, "memory_mb": self.memory_mb, "machine": self.machine},
            indent=2,
        )

    def table(self) -> str:
        lines = [f"{'figure':<44} {'value':>14}"]
        lines += [f"{name:<44} {_shown(value):>14}" for name, value in self.figures.items()]
        lines.append("")
        lines.append(f"{'peak resident memory (MiB)':<44} {'':>14}")
        lines += [f"  {name:<42} {value:>14,.0f}" for name, value in self.memory_mb.items()]
        return "\n".join(lines)


def _shown(value: float | int | str) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 100 else f"{value:,.0f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def percentile(values: list[float], share: float) -> float:
    """The ``share`` percentile (0..1) of ``values``, interpolated."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=100, method="inclusive")[round(share * 100) - 1]


def machine() -> dict[str, str | int | float]:
    return {
        "cpus": os.cpu_count() or 0,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
        "processor": platform.processor() or platform.machine(),
        "date": datetime.now().strftime("%Y-%m-%d %H:%M"),
    }


class MemoryWatch:
    """Samples the resident memory of the stack's processes, keeping each one's peak."""

    def __init__(self, settings: Settings, every: float = 0.5) -> None:
        self.settings = settings
        self.every = every
        self.peaks: dict[str, float] = {}
        self.peak_total = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="memory-watch", daemon=True)

    def _processes(self) -> dict[str, psutil.Process]:
        found = {}
        for service in services.STACK:
            pid = services.running_pid(service, self.settings)
            if pid is not None:
                found[service.name] = psutil.Process(pid)
        me = psutil.Process()
        found["python (bench, writers, API)"] = me
        for child in me.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                if "java" in child.name():
                    found["flink (PyFlink's JVM)"] = child
        return found

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            total = 0.0
            for name, process in self._processes().items():
                with contextlib.suppress(psutil.Error):
                    rss = process.memory_info().rss / 2**20
                    self.peaks[name] = max(self.peaks.get(name, 0.0), rss)
                    total += rss
            self.peak_total = max(self.peak_total, total)

    def __enter__(self) -> MemoryWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


# --------------------------------------------------------------------------------------
# The measurements
# --------------------------------------------------------------------------------------


def _wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what} after {timeout:.0f} s")
        time.sleep(0.05)


def _stored_readings(writers: hbase.Writers) -> int:
    stats = writers.stats()
    return stats["raw"].rows + stats["late"].rows + stats["invalid"].rows


def measure_stages(settings: Settings, scenario: sensors.Scenario) -> dict[str, float]:
    """Produce, then the Flink job (bounded), then the writers: each stage alone."""
    figures: dict[str, float] = {}
    began = time.perf_counter()
    events = kafka.produce_readings(settings, sensors.simulate(scenario))
    produce_s = time.perf_counter() - began
    figures["events"] = events
    figures["produce events/s"] = events / produce_s

    figures.update(measure_job_and_floor(settings, events))

    began = time.perf_counter()
    stats = hbase.drain(settings)
    drained = time.perf_counter() - began
    rows = sum(stat.rows for stat in stats.values())
    figures["hbase writer rows/s"] = rows / drained
    return figures


def _flink_cpu_seconds() -> float:
    """CPU seconds PyFlink's JVM (a child of this process) has used so far."""
    total = 0.0
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if "java" in child.name():
                times = child.cpu_times()
                total += times.user + times.system
    return total


def _bounded_run(start: Callable[[], flink.RunningJob]) -> tuple[float, float, float]:
    """(start-up, run, JVM CPU during the run) seconds of a bounded job."""
    began = time.perf_counter()
    job = start()
    submitted, cpu = time.perf_counter(), _flink_cpu_seconds()
    job.wait()
    return submitted - began, time.perf_counter() - submitted, _flink_cpu_seconds() - cpu


def measure_job_and_floor(settings: Settings, events: int) -> dict[str, float]:
    """The Flink job over a filled ``input``, beside its floor: a plain copy of the same input
    through the same source and sink connector (``labkit.flink.floor``), run before and after
    the job (the quicker copy counts). Ratios of run time, and of the JVM's CPU time, which a
    shared machine disturbs less."""
    copied = f"{settings.topics.output_raw}_floor"
    kafka.ensure_topics(settings, [copied])
    try:
        floors = [_bounded_run(lambda: floor.start_copy(settings, copied))]
        startup, run_s, cpu_s = _bounded_run(lambda: flink.start_pipeline(settings, bounded=True))
        floors.append(_bounded_run(lambda: floor.start_copy(settings, copied)))
    finally:
        kafka.delete_topics(settings, [copied])
    floor_run = min(run for _, run, _ in floors)
    floor_cpu = min(cpu for _, _, cpu in floors)
    return {
        "flink start-up s (JVM, plan, deploy)": startup,
        "flink bounded run s": run_s,
        "flink events/s (run)": events / run_s,
        "flink copy floor run s": floor_run,
        "flink run / copy floor (x)": run_s / floor_run,
        "flink JVM cpu s (run)": cpu_s,
        "flink copy floor JVM cpu s": floor_cpu,
        "flink cpu / copy floor cpu (x)": cpu_s / floor_cpu,
    }


def measure_writers(settings: Settings, runs: int) -> dict[str, float]:
    """The writers alone, ``runs`` times over what the output topics hold, each run into tables
    and consumer groups of its own (created before the clock starts): the same rows every time."""
    rates = []
    for run in range(runs):
        copy = replace(settings, hbase_table_prefix=f"{settings.hbase_table_prefix}_w{run}")
        hbase.ensure_tables(copy)
        try:
            began = time.perf_counter()
            stats = hbase.drain(copy)
            rates.append(sum(stat.rows for stat in stats.values()) / (time.perf_counter() - began))
        finally:
            hbase.drop_tables(copy)
    return {
        f"hbase writers rows/s, best of {runs}": max(rates),
        f"hbase writers rows/s, median of {runs}": statistics.median(rates),
    }


def measure_end_to_end(
    settings: Settings, scenario: sensors.Scenario, latency_samples: int
) -> dict[str, float]:
    """With the writers and a live job running: a year as fast as possible, then latency."""
    figures: dict[str, float] = {}
    writers = hbase.Writers(settings).start()
    job = flink.start_pipeline(settings, bounded=False)
    server = api.start_in_thread(settings, port=0)
    try:
        # Warm: one reading all the way through before the clock starts.
        warm_up = sensors.Scenario(start=scenario.start - timedelta(days=30), days=1 / 96)
        sent = kafka.produce_readings(settings, sensors.simulate(warm_up))
        _wait_for(lambda: _stored_readings(writers) >= sent, 180, "the warm-up readings")

        already = _stored_readings(writers)
        began = time.perf_counter()
        events = kafka.produce_readings(settings, sensors.simulate(scenario))
        produced = time.perf_counter() - began
        _wait_for(lambda: _stored_readings(writers) >= already + events, 1800, "the year in HBase")
        elapsed = time.perf_counter() - began
        figures["end-to-end events"] = events
        figures["end-to-end s (warm)"] = elapsed
        figures["end-to-end events/s (warm)"] = events / elapsed
        figures["end-to-end produce share s"] = produced

        latencies = _live_latencies(settings, server.url, scenario.end, latency_samples)
        figures["live latency p50 s"] = percentile(latencies, 0.5)
        figures["live latency p95 s"] = percentile(latencies, 0.95)
    finally:
        server.stop()
        job.cancel()
        writers.shutdown()
    return figures


def _live_latencies(settings: Settings, url: str, after: datetime, samples: int) -> list[float]:
    """Seconds from producing one TH1 reading to seeing it in the API's answer."""
    producer = kafka.BatchProducer(settings, **{"linger.ms": 0})
    latencies = []
    for index in range(samples):
        moment = after + timedelta(minutes=15 * (index + 1))
        reading = sensors.Reading("TH1", 20.0 + index / 100, moment, moment)
        body = api.panel_request(["TH1_raw"], moment, moment + timedelta(seconds=1))
        began = time.perf_counter()
        producer.send(settings.topics.input, reading.message(), b"TH1", reading.sent_at_ms)
        producer.flush()

        def visible(body: dict = body) -> bool:
            answer = api.call(url, "/query", body)
            return bool(answer and answer[0]["datapoints"])

        _wait_for(visible, 60, "a live reading in the API")
        latencies.append(time.perf_counter() - began)
    return latencies


def measure_api(settings: Settings, scenario: sensors.Scenario, repeats: int) -> dict[str, float]:
    """/query latency over what the stages measurement stored (a year of raw data)."""
    server = api.start_in_thread(settings, port=0)
    try:
        bodies = {
            "api year of TH1 @1000 points": api.panel_request(
                ["TH1_raw"], scenario.start, scenario.end, max_data_points=1000
            ),
            # The same without the roll-ups: every raw reading read and downsampled.
            "api year of TH1 @1000 points, raw only": api.panel_request(
                ["TH1_raw"], scenario.start, scenario.end, 1000, payload={"source": "raw"}
            ),
            "api 10 targets x 7 days": api.panel_request(
                [f"{s.name}_raw" for s in sensors.CATALOGUE],
                scenario.start,
                scenario.start + timedelta(days=7),
                max_data_points=1000,
            ),
        }
        figures = {}
        for name, body in bodies.items():
            api.call(server.url, "/query", body)  # warm the connection pool
            times = []
            for _ in range(repeats):
                began = time.perf_counter()
                api.call(server.url, "/query", body)
                times.append(time.perf_counter() - began)
            figures[f"{name} p50 ms"] = 1000 * percentile(times, 0.5)
            figures[f"{name} p95 ms"] = 1000 * percentile(times, 0.95)
        return figures
    finally:
        server.stop()


# --------------------------------------------------------------------------------------
# The original's pattern
# --------------------------------------------------------------------------------------


def naive_produce(settings: Settings, readings: list[sensors.Reading]) -> None:
    """As the original's producer: one message, then a flush, then the next."""
    producer = kafka.BatchProducer(settings, **{"linger.ms": 0, "enable.idempotence": False})
    for reading in readings:
        producer.send(settings.topics.input, reading.message(), reading.sensor.encode())
        producer.flush()


def naive_write(
    settings: Settings, kind: hbase.TableKind, expected: int, timeout: float = 1800
) -> int:
    """As the original's happybase scripts: per message, a new connection and one put."""
    reader = kafka.consumer(
        settings, f"naive-{uuid.uuid4().hex[:6]}", **{"enable.auto.commit": True}
    )
    reader.subscribe([hbase.source_topic(settings, kind)])
    make_row = hbase.ROW_MAKERS[kind]
    written = 0
    deadline = time.monotonic() + timeout
    try:
        while written < expected and time.monotonic() < deadline:
            message = reader.poll(0.5)
            if message is None or message.error():
                continue
            key, columns = make_row(message.value())
            connection = hbase.connect(settings)
            connection.table(hbase.table_name(settings, kind)).put(key, columns)
            connection.close()
            written += 1
    finally:
        reader.close()
    return written


def measure_baseline(settings: Settings, scenario: sensors.Scenario) -> dict[str, float]:
    """The original's pattern on a sample: produce, the same (warm) Flink job, write."""
    readings = list(sensors.simulate(scenario))
    figures: dict[str, float] = {"baseline events": len(readings)}
    job = flink.start_pipeline(settings, bounded=False)
    try:
        warm_up = sensors.Scenario(start=scenario.start - timedelta(days=30), days=1 / 96)
        warm = list(sensors.simulate(warm_up))
        naive_produce(settings, warm)
        naive_write(settings, hbase.TableKind.RAW, len(warm), timeout=180)

        began = time.perf_counter()
        naive_produce(settings, readings)
        produced = time.perf_counter() - began
        on_time = sum(1 for r in readings if r.sent_at - r.timestamp < sensors.TICK)
        naive_write(settings, hbase.TableKind.RAW, on_time)
        elapsed = time.perf_counter() - began
    finally:
        job.cancel()
    figures["baseline produce events/s"] = len(readings) / produced
    figures["baseline end-to-end events/s"] = len(readings) / elapsed

    # The writer alone, on rows already in output_raw.
    began = time.perf_counter()
    sample = min(on_time, 1000)
    hbase.drop_tables(settings)
    hbase.ensure_tables(settings)
    naive_write(settings, hbase.TableKind.RAW, sample)
    figures["baseline hbase writer rows/s"] = sample / (time.perf_counter() - began)
    return figures


# --------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------


def run(settings: Settings, config: BenchConfig, progress: Progress = print) -> Report:
    report = Report(machine=machine())
    scenario = sensors.Scenario(days=config.days, seed=2024)
    with MemoryWatch(settings) as memory:
        progress(f"stages: produce, Flink (bounded), writers on {config.days:g} simulated days")
        with sandbox.sandbox(settings, "stages") as mine:
            report.figures.update(measure_stages(mine, scenario))
            progress(f"the HBase writers alone, {config.writer_runs} runs on the same rows")
            report.figures.update(measure_writers(mine, config.writer_runs))
            progress("API /query latency")
            report.figures.update(measure_api(mine, scenario, config.api_repeats))
            progress("API under load: 5 dashboards refreshing every 2 s for 20 s")
            report.figures.update(loadtest.bench_figures(mine, scenario.start, scenario.end))
        progress("end to end with the services warm, then live latency")
        with sandbox.sandbox(settings, "e2e") as mine:
            report.figures.update(measure_end_to_end(mine, scenario, config.latency_samples))
        progress(f"naive baseline on {config.baseline_days:g} simulated days")
        with sandbox.sandbox(settings, "naive") as mine:
            baseline = replace(scenario, days=config.baseline_days)
            report.figures.update(measure_baseline(mine, baseline))
    figures = report.figures
    figures["speed-up produce (x)"] = float(figures["produce events/s"]) / float(
        figures["baseline produce events/s"]
    )
    figures["speed-up hbase writer (x)"] = float(figures["hbase writer rows/s"]) / float(
        figures["baseline hbase writer rows/s"]
    )
    figures["speed-up end to end (x)"] = float(figures["end-to-end events/s (warm)"]) / float(
        figures["baseline end-to-end events/s"]
    )
    report.memory_mb = {name: round(peak, 1) for name, peak in sorted(memory.peaks.items())}
    report.memory_mb["whole stack (peak of the sum)"] = round(memory.peak_total, 1)
    return report
