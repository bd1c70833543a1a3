"""The benchmark runs end to end in a tiny configuration (tests never assert timings)."""

import json

from labkit import bench


def test_a_tiny_benchmark_reports_every_figure(stack, capsys):
    config = bench.BenchConfig(
        days=2, latency_samples=3, api_repeats=3, baseline_days=0.25, writer_runs=2
    )
    report = bench.run(stack, config, progress=print)
    figures = report.figures
    expected = [
        "produce events/s", "flink events/s (run)", "hbase writer rows/s",
        "hbase writers rows/s, best of 2", "hbase writers rows/s, median of 2",
        "end-to-end events/s (warm)", "live latency p50 s", "live latency p95 s",
        "api year of TH1 @1000 points p50 ms", "api 10 targets x 7 days p95 ms",
        "baseline end-to-end events/s", "speed-up end to end (x)",
    ]  # fmt: skip
    for name in expected:
        assert figures[name] > 0, name
    # The same events went through every measurement.
    assert figures["events"] == figures["end-to-end events"]
    assert figures["live latency p95 s"] >= figures["live latency p50 s"]
    assert (
        figures["hbase writers rows/s, best of 2"] >= figures["hbase writers rows/s, median of 2"]
    )
    assert report.memory_mb["whole stack (peak of the sum)"] >= max(
        value for name, value in report.memory_mb.items() if not name.startswith("whole")
    )
    assert {"kafka", "hbase", "thrift"} <= set(report.memory_mb)
    assert json.loads(report.to_json())["figures"]["events"] == figures["events"]
    assert "speed-up end to end (x)" in report.table()


def test_percentiles_interpolate():
    assert bench.percentile([1.0, 2.0, 3.0, 4.0, 5.0], 0.5) == 3.0
    assert bench.percentile([4.0], 0.95) == 4.0
    assert 4.0 < bench.percentile([float(n) for n in range(1, 6)], 0.95) <= 5.0
