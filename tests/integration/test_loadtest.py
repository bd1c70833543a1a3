"""The load test against a real API process over real HBase (tests never assert timings)."""

from __future__ import annotations

from datetime import datetime, timedelta

from labkit import hbase, loadtest, sandbox

START = datetime(2024, 1, 1)


def test_dashboards_refresh_against_an_api_process_of_its_own(stack):
    with sandbox.sandbox(stack, "t") as mine:
        with (
            hbase.connection(mine) as connection,
            connection.table(hbase.table_name(mine, "raw")).batch() as batch,
        ):
            for tick in range(2 * 96):
                moment = START + tick * timedelta(minutes=15)
                batch.put(f"TH1#{moment:%Y-%m-%d %H:%M:%S}".encode(), {b"d:value": b"21.5"})
        cfg = loadtest.LoadConfig(dashboards=3, refresh_s=1.0, duration_s=4.0)
        with loadtest.api_process(mine) as (port, process):
            report = loadtest.load(port, process, START, START + timedelta(days=2), cfg)
        assert not process.is_running()  # stopped afterwards
    figures = report.figures
    panels = len(loadtest.dashboard_queries(START, START))
    assert report.config["dashboards"] == 3 and report.config["panels"] == panels >= 12
    # Whole refreshes only, at least one per dashboard, each query answered or counted.
    assert figures["queries"] % panels == 0 and figures["queries"] >= 3 * panels
    assert figures["answered (200)"] + figures["errors"] == figures["queries"]
    assert (
        set(report.errors) <= {"503"} and figures["shed (503 + Retry-After)"] == figures["errors"]
    )
    assert figures["latency p50 ms"] <= figures["latency p95 ms"] <= figures["latency p99 ms"]
    assert 0 < figures["api memory start MiB"] <= figures["api memory peak MiB"]
    assert figures["api memory half-way MiB"] <= figures["api memory peak MiB"]
    assert "queries/s" in report.table()
