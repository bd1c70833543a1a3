"""A classroom's load on the API: dashboards refreshing in many browsers at once.

``labkit loadtest`` fills topics and tables of its own with ``days`` of simulated data (a year
by default), starts the API as its own process on a free loopback port (as ``labkit api``
runs it), and opens ``dashboards`` simulated browsers on the provisioned dashboard
(``grafana/provisioning/dashboards/iotlab.json``): each sends the dashboard's panel queries
and its enabled annotation query, shaped as Grafana's simPod plugin sends them, over the whole
period, every ``refresh_s`` seconds for ``duration_s`` seconds, at most six at a time (what a
browser opens to one host). The dashboards start spread over one refresh period, as students
open them one after another; a refresh that has not finished when the next is due skips it.
With ``live``, a live pipeline (sensors, Flink, the writers) writes into the same tables all
the while.

It reports the throughput, the latency of the answered queries (p50, p95, p99), the errors by
status (a timeout is an error too), how many queries the API shed (503 with ``Retry-After``),
the refreshes that overran, and the API process's resident memory at the start, half-way, at
its peak and at the end (memory is flat when the second half adds nothing). Everything stays
on 127.0.0.1, and the run is bounded in dashboards, time and data.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO

import psutil

from labkit import api, config, flink, hbase, kafka, pipeline, sandbox, sensors
from labkit.config import PROJECT_ROOT, Settings
from labkit.errors import LabkitError

DASHBOARD = PROJECT_ROOT / "grafana" / "provisioning" / "dashboards" / "iotlab.json"
# Requests a browser sends to one host at once (HTTP/1.1).
BROWSER_CONNECTIONS = 6
# maxDataPoints: Grafana sends a panel's width in pixels, an annotation query the window's.
SCREEN_PX = 1920
# Grafana's data proxy gives up on a datasource after 30 s.
REQUEST_TIMEOUT_S = 30.0
MAX_DASHBOARDS = 100
MAX_DURATION_S = 1800.0
MAX_DAYS = 3 * 365

Progress = Callable[[str], None]


class LoadTestError(LabkitError):
    """The load test cannot run as asked."""


@dataclass(frozen=True)
class LoadConfig:
    dashboards: int = 30
    refresh_s: float = 5.0
    duration_s: float = 120.0
    days: float = 365.0  # simulated data the dashboards show
    live: bool = False  # a live pipeline writes while the dashboards refresh
    live_speed: float = 900.0  # its simulated seconds per second

    def check(self) -> None:
        if not 1 <= self.dashboards <= MAX_DASHBOARDS:
            raise LoadTestError(f"dashboards must be from 1 to {MAX_DASHBOARDS}")
        if not 0.5 <= self.refresh_s <= self.duration_s <= MAX_DURATION_S:
            raise LoadTestError(
                f"the refresh must be at least 0.5 s and at most the duration, which is at "
                f"most {MAX_DURATION_S:.0f} s"
            )
        if not 0 < self.days <= MAX_DAYS:
            raise LoadTestError(f"days must be more than 0 and at most {MAX_DAYS}")


@dataclass
class LoadReport:
    config: dict
    figures: dict[str, float | int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)  # by status: "503", "timeout", ...

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def table(self) -> str:
        lines = [f"{name:<36} {value:>12,.1f}" for name, value in self.figures.items()]
        errors = ", ".join(f"{status}: {count}" for status, count in self.errors.items())
        return "\n".join([*lines, f"{'errors by status':<36} {errors or 'none':>12}"])


# --------------------------------------------------------------------------------------
# What a dashboard sends
# --------------------------------------------------------------------------------------


def _as_sent(target: dict) -> dict:
    """A saved target as the plugin sends it: the code-mode payload text parsed."""
    text = target.get("payload") or ""
    return {**target, "payload": json.loads(text) if text.strip() else {}}


def dashboard_queries(start: datetime, end: datetime) -> list[tuple[str, dict]]:
    """(title, /query body) of each panel with targets, and of each enabled annotation query."""
    dashboard = json.loads(DASHBOARD.read_text())
    queries = []
    for panel in dashboard["panels"]:
        targets = [_as_sent(t) for t in panel.get("targets", []) if t.get("target")]
        if targets:
            width = round(SCREEN_PX * panel["gridPos"]["w"] / 24)
            body = api.panel_request([], start, end, max_data_points=width)
            queries.append((panel["title"], {**body, "panelId": panel["id"], "targets": targets}))
    for number, annotation in enumerate(dashboard["annotations"]["list"]):
        if annotation.get("enable") and "target" in annotation:
            body = api.panel_request([], start, end, max_data_points=SCREEN_PX)
            targets = [{**_as_sent(annotation["target"]), "refId": "Anno"}]
            queries.append((annotation["name"], {**body, "requestId": f"AQ{100 + number}",
                                                 "targets": targets}))  # fmt: skip
    return queries


# --------------------------------------------------------------------------------------
# The browsers
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    sent_at: float  # time.monotonic()
    latency_s: float
    status: str  # "200", "503", ..., "timeout", "connection"
    retry_after: bool = False


class Browser:
    """One dashboard's browser: up to six keep-alive HTTP/1.1 connections to the API. One
    asyncio loop drives every browser, so that the load test itself takes little CPU from
    the API it measures."""

    def __init__(self, port: int, queries: list[dict]) -> None:
        self.port = port
        self.requests = [_http_post(port, json.dumps(body).encode()) for body in queries]
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.open = asyncio.Semaphore(BROWSER_CONNECTIONS)

    async def _exchange(self, request: bytes) -> tuple[int, bool]:
        if self.idle:
            reader, writer = self.idle.pop()
        else:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            writer.write(request)
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").lower()
            status = int(head.split(" ", 2)[1])
            length = int(head.split("content-length:", 1)[1].split("\r\n", 1)[0])
            await reader.readexactly(length)
        except BaseException:
            writer.close()
            raise
        if "connection: close" in head:
            writer.close()
        else:
            self.idle.append((reader, writer))
        return status, "retry-after:" in head

    async def _send(self, request: bytes) -> Outcome:
        async with self.open:
            began = time.monotonic()
            try:
                status, retry = await asyncio.wait_for(self._exchange(request), REQUEST_TIMEOUT_S)
            except TimeoutError:
                return Outcome(began, time.monotonic() - began, "timeout")
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError,
                    IndexError):  # fmt: skip
                return Outcome(began, time.monotonic() - began, "connection")
            return Outcome(began, time.monotonic() - began, str(status), retry)

    async def refresh(self) -> list[Outcome]:
        """Every query of the dashboard, as a browser sends them; when all are answered."""
        return list(await asyncio.gather(*(self._send(request) for request in self.requests)))

    def close(self) -> None:
        for _, writer in self.idle:
            writer.close()


def _http_post(port: int, body: bytes) -> bytes:
    head = (
        f"POST /query HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def _percentiles(values: list[float]) -> tuple[float, float, float]:
    if len(values) < 2:
        return (values[0],) * 3 if values else (0.0, 0.0, 0.0)
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[49], cuts[94], cuts[98]


class _Run:
    """The outcomes of every dashboard, and the API process's memory meanwhile."""

    def __init__(self, process: psutil.Process) -> None:
        self.process = process
        self.outcomes: list[Outcome] = []
        self.overran = 0
        self.memory_start = self.memory_peak = self.memory_half = self.memory_end = self.rss_mb()

    def rss_mb(self) -> float:
        return float(self.process.memory_info().rss) / 2**20

    async def dashboard(
        self, browser: Browser, first: float, until: float, refresh_s: float
    ) -> None:
        due = first
        while due < until:
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            self.outcomes.extend(await browser.refresh())
            due += refresh_s
            if time.monotonic() > due:  # the refresh took longer than the period: skip beats
                self.overran += 1
                due += refresh_s * ((time.monotonic() - due) // refresh_s + 1)

    async def watch_memory(self, began: float, until: float) -> None:
        half = began + (until - began) / 2
        while time.monotonic() < until:
            rss = self.rss_mb()
            self.memory_peak = max(self.memory_peak, rss)
            if time.monotonic() <= half:  # the last sample of the first half
                self.memory_half = rss
            await asyncio.sleep(1.0)

    async def run(self, browsers: list[Browser], refresh_s: float, duration_s: float) -> float:
        await browsers[0].refresh()  # warm the API's connections to HBase
        self.memory_start = self.memory_peak = self.rss_mb()
        began = time.monotonic()
        until = began + duration_s
        # The dashboards are opened one after another over one refresh period.
        spread = [began + refresh_s * index / len(browsers) for index in range(len(browsers))]
        dashboards = [
            self.dashboard(browser, first, until, refresh_s)
            for browser, first in zip(browsers, spread, strict=True)
        ]
        await asyncio.gather(self.watch_memory(began, until), *dashboards)
        elapsed = time.monotonic() - began
        self.memory_end = self.rss_mb()
        return elapsed


def load(
    port: int, process: psutil.Process, start: datetime, end: datetime, cfg: LoadConfig
) -> LoadReport:
    """The dashboards' load on the API listening on ``port`` (process ``process``), over the
    data from ``start`` to ``end``."""
    cfg.check()
    queries = [body for _, body in dashboard_queries(start, end)]
    run = _Run(process)

    async def main() -> float:
        browsers = [Browser(port, queries) for _ in range(cfg.dashboards)]
        try:
            return await run.run(browsers, cfg.refresh_s, cfg.duration_s)
        finally:
            for browser in browsers:
                browser.close()

    elapsed = asyncio.run(main())
    answered = [o.latency_s for o in run.outcomes if o.status == "200"]
    p50, p95, p99 = _percentiles(answered)
    errors = Counter(o.status for o in run.outcomes if o.status != "200")
    return LoadReport(
        config=dataclasses.asdict(cfg) | {"panels": len(queries)},
        figures={
            "queries": len(run.outcomes),
            "queries/s": len(run.outcomes) / elapsed,
            "answered (200)": len(answered),
            "latency p50 ms": 1000 * p50,
            "latency p95 ms": 1000 * p95,
            "latency p99 ms": 1000 * p99,
            "latency max ms": 1000 * max(answered, default=0.0),
            "errors": sum(errors.values()),
            "shed (503 + Retry-After)": sum(1 for o in run.outcomes if o.retry_after),
            "refreshes overrun": run.overran,
            "api memory start MiB": run.memory_start,
            "api memory half-way MiB": run.memory_half,
            "api memory peak MiB": run.memory_peak,
            "api memory end MiB": run.memory_end,
        },
        errors=dict(sorted(errors.items())),
    )


# --------------------------------------------------------------------------------------
# The API's own process, and the data
# --------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def api_process(settings: Settings) -> Iterator[tuple[int, psutil.Process]]:
    """``labkit api`` on a free loopback port, reading ``settings``' tables; stopped after."""
    port = _free_port()
    served = dataclasses.replace(settings, api_host="127.0.0.1", api_port=port, api_token="")
    environment = {**os.environ, **config.to_environment(served)}
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "labkit", "api"], env=environment, stdout=log, stderr=log
        )
        try:
            _wait_until_served(port, process, log)
            yield port, psutil.Process(process.pid)
        finally:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_until_served(port: int, process: subprocess.Popen, log: IO[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            said = log.read().decode(errors="replace")[-2000:]
            raise LoadTestError(f"The API process ended at once:\n{said}")
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2),
        ):
            return
        time.sleep(0.2)
    raise LoadTestError("The API process did not answer within 60 s")


@contextlib.contextmanager
def live_pipeline(settings: Settings, after: datetime, speed: float) -> Iterator[None]:
    """Writers and a live Flink job on ``settings``' topics, and the sensors sending from
    ``after`` on; ``input`` already holds the earlier data, which the job reads first."""
    writers = hbase.Writers(settings).start()
    job = flink.start_pipeline(settings, bounded=False)
    simulation = None
    try:
        expected = kafka.message_count(settings, settings.topics.input)
        deadline = time.monotonic() + 1800
        while _stored(writers) < expected:  # the year first, then the live readings
            if time.monotonic() > deadline:
                raise LoadTestError("The live pipeline did not store the data within 30 min")
            time.sleep(1.0)
        live = sensors.Scenario(start=after, days=365, seed=7)
        simulation = pipeline.LiveSimulation(settings, live, speed).start()
        yield
    finally:
        if simulation is not None:
            simulation.stop()
        job.cancel()
        writers.shutdown()


def _stored(writers: hbase.Writers) -> int:
    stats = writers.stats()
    return stats["raw"].rows + stats["late"].rows + stats["invalid"].rows


def run(settings: Settings, cfg: LoadConfig, progress: Progress = print) -> LoadReport:
    """The whole load test on data of its own (see the module doc)."""
    cfg.check()
    scenario = sensors.Scenario(days=cfg.days, seed=2024)
    with sandbox.sandbox(settings, "load") as mine:
        progress(f"Filling tables of the load test's own with {cfg.days:g} simulated days...")
        if cfg.live:
            pipeline.simulate_into_kafka(mine, scenario, show=False)
            running: contextlib.AbstractContextManager = live_pipeline(
                mine, scenario.end, cfg.live_speed
            )
        else:
            pipeline.run(mine, scenario, show=False)
            running = contextlib.nullcontext()
        with running, api_process(mine) as (port, process):
            progress(
                f"{cfg.dashboards} dashboards refreshing every {cfg.refresh_s:g} s for "
                f"{cfg.duration_s:g} s{' while a live pipeline writes' if cfg.live else ''}..."
            )
            return load(port, process, scenario.start, scenario.end, cfg)


def bench_figures(settings: Settings, start: datetime, end: datetime) -> dict[str, float | int]:
    """A short load test for ``labkit bench``, over the data it already stored."""
    cfg = LoadConfig(dashboards=5, refresh_s=2.0, duration_s=20.0)
    with api_process(settings) as (port, process):
        report = load(port, process, start, end, cfg)
    return {f"load 5 dashboards x 2 s {name}": value for name, value in report.figures.items()}
