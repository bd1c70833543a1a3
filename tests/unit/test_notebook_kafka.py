"""labkit.notebook.kafka without the services: rates, key tables, the lag figure and sliders."""

from __future__ import annotations

import zlib

import pytest

from labkit import config, kafka, sensors
from labkit.notebook import display
from labkit.notebook import kafka as nk


def test_messages_per_tick_is_what_the_simulator_sends_on_average():
    for scenario in (
        sensors.Scenario(days=20),
        sensors.Scenario(days=20, every={"TH1": 4}, disabled=frozenset({"MOV1", "Etot"})),
        sensors.Scenario(days=20, late_2d_every=0, movements_per_day=12),
    ):
        sent = sum(1 for _ in sensors.simulate(scenario))
        assert abs(sent / scenario.ticks - nk.messages_per_tick(scenario)) < 0.01


def test_sensor_rate_scales_with_speed():
    scenario = sensors.Scenario()
    per_tick = nk.messages_per_tick(scenario)
    # At 900 simulated seconds a second, one 15-minute tick passes each wall second.
    assert nk.sensor_rate(scenario, 900) == pytest.approx(per_tick)
    assert nk.sensor_rate(scenario, 3600) == pytest.approx(4 * per_tick)


def _record(partition: int, offset: int, key: str) -> kafka.Record:
    return kafka.Record("t", partition, offset, 0, key.encode(), b"{}")


def test_keys_and_partitions_tables_count_where_each_key_landed():
    records = [_record(0, 0, "TH1"), _record(0, 1, "TH1"), _record(2, 0, "W1")]
    keys = nk.keys_table(records, partitions=3)
    assert keys.loc["TH1", "messages"] == 2 and keys.loc["TH1", "partitions"] == [0]
    assert keys.loc["W1", "crc32(key) % 3"] == zlib.crc32(b"W1") % 3
    parts = nk.partitions_table(records)
    assert parts.loc[0, "keys"] == ["TH1"] and parts.loc[2, "messages"] == 1
    assert list(parts["share"]) == ["67%", "33%"]


def _demo_with(samples: list[nk.LagSample]) -> nk.LagDemo:
    demo = nk.LagDemo(config.load({}), "t", speed=3600, reader_rate=10)  # never started
    demo.samples.extend(samples)
    return demo


def test_lag_figure_plots_rates_and_lag_over_time():
    demo = _demo_with(
        [
            nk.LagSample(0.0, 0, 0, 10, {0: 0, 1: 0}),
            nk.LagSample(1.0, 30, 10, 10, {0: 15, 1: 5}),
            nk.LagSample(2.0, 60, 20, 100, {0: 30, 1: 10}),
        ]
    )
    figure = nk.lag_figure(demo)
    rates, lag = figure.axes
    sent, read, limit = rates.lines
    assert list(sent.get_ydata()) == [30.0, 30.0] and list(read.get_ydata()) == [10.0, 10.0]
    assert list(limit.get_ydata()) == [10, 10, 100]
    total, *partitions = lag.lines
    assert list(total.get_ydata()) == [0, 20, 40] and len(partitions) == 2
    assert lag.get_xlabel() and lag.get_ylabel() and rates.get_ylabel()
    assert display.size(figure) > 0


def test_lag_view_sliders_are_exact_and_act_on_the_demo():
    demo = _demo_with([])
    view = nk.lag_view(demo, every=60)
    view.reader_rate.value = 135
    view.speed.value = 86400
    assert demo.reader_rate == 135 and demo.speed == 86400 == demo.live.speed
    assert view.speed.label == "86,400"  # the exact value, not a rounded 8.64e+4
    assert "135" in view.readout.value
