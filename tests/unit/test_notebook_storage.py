"""Notebook 04 without the services: salted keys, regions, and the figures and tables of the
layout measurements (from hand-made measurement frames)."""

from __future__ import annotations

import dataclasses
from datetime import datetime

import pandas as pd
import pytest

from labkit import config
from labkit.errors import ServiceError
from labkit.hbase import compare, layout, regions
from labkit.notebook import storage


def test_salted_keys_spread_one_sensor_over_every_bucket_and_unsalt_back():
    times = [f"2024-01-01 {hour:02d}:{minute:02d}:00" for hour in range(24) for minute in (0, 30)]
    rows = [layout.salted_raw_row(4, "TH1", time, 1.5) for time in times]
    buckets = {key.split(b"#")[0] for key, _ in rows}
    assert buckets == {b"0", b"1", b"2", b"3"}
    for (key, columns), time in zip(rows, times, strict=True):
        assert layout.unsalted(key) == layout.raw_row("TH1", time, 1.5)[0]
        assert columns == layout.raw_row("TH1", time, 1.5)[1]
    # The same reading always gets the same bucket: a replay overwrites its own row.
    assert layout.salted_raw_row(4, "TH1", times[0], 9.0)[0] == rows[0][0]


def test_a_salted_range_is_one_range_per_bucket_and_the_splits_fall_between_buckets():
    ranges = layout.salted_key_ranges(4, "TH1", "2024-01-01", "2024-01-02")
    assert len(ranges) == 4
    row_key = layout.salted_raw_row(4, "TH1", "2024-01-01 12:00:00", 1.0)[0]
    holding = [start <= row_key < stop for start, stop in ranges]
    assert holding.count(True) == 1
    splits = layout.salt_split_keys(4)
    assert splits == [b"1", b"2", b"3"]
    region_of = [
        regions.Region(start, stop).holds(row_key)
        for start, stop in zip([b"", *splits], [*splits, b""], strict=True)
    ]
    assert region_of == holding  # bucket n is region n
    assert layout.salt_buckets(12)[:2] == ["00", "01"]  # fixed width: they sort in order


def test_per_sensor_ranges_bound_the_keys_of_a_time_range():
    start, stop = layout.per_sensor_range(datetime(2024, 1, 2), datetime(2024, 1, 3))
    inside = layout.per_sensor_row("2024-01-02 23:45:00", 1.0)[0]
    after = layout.per_sensor_row("2024-01-03 00:00:00", 1.0)[0]
    assert start <= inside < stop <= after


def test_a_region_holds_the_keys_from_its_start_to_before_its_stop():
    assert regions.Region(b"", b"g").holds(b"apple")
    assert not regions.Region(b"", b"g").holds(b"g")
    assert regions.Region(b"g", b"").holds(b"zzz")


def test_splitting_needs_the_labs_own_hbase():
    external = dataclasses.replace(config.load({}), mode=config.Mode.EXTERNAL)
    with pytest.raises(ServiceError, match="embedded"):
        regions.create_presplit(external, {"never_created": [b"m"]})


QUERIES = pd.DataFrame(
    [
        ("one sensor (TH1), January 2024", compare.LAB, compare.RANGE_SCANS, 1, 2976, 2976, 0.02),
        ("one sensor (TH1), January 2024", compare.PER_SENSOR, compare.RANGE_SCANS, 1, 2976,
         2976, 0.02),
        ("one sensor (TH1), January 2024", compare.PER_SENSOR, compare.FULL_SCANS, 1, 35040,
         2976, 0.9),
        ("all sensors, 15 January 2024", compare.LAB, compare.RANGE_SCANS, 10, 679, 679, 0.03),
        ("all sensors, 15 January 2024", compare.PER_SENSOR, compare.RANGE_SCANS, 10, 679, 679,
         0.03),
        ("all sensors, 15 January 2024", compare.PER_SENSOR, compare.FULL_SCANS, 10, 247837, 679,
         6.5),
    ],
    columns=["question", "layout", "reads", "scans", "rows read", "rows wanted", "seconds"],
)  # fmt: skip


def test_layouts_figure_draws_rows_and_time_of_every_plan():
    figure = storage.layouts_figure(QUERIES)
    rows_axes, time_axes = figure.axes
    assert sorted(bar.get_width() for bar in rows_axes.patches) == sorted(QUERIES["rows read"])
    assert sorted(round(bar.get_width()) for bar in time_axes.patches) == sorted(
        round(seconds * 1000) for seconds in QUERIES["seconds"]
    )
    assert rows_axes.get_xlabel() and time_axes.get_xlabel()


def test_full_scan_cost_compares_the_full_scans_with_the_rows_wanted():
    table = storage.full_scan_cost(QUERIES)
    day = table.loc["all sensors, 15 January 2024"]
    assert day["rows wanted"] == 679 and day["rows the full scans read"] == 247837
    assert day["times as many"] == round(247837 / 679, 1)
    assert day["full scans (ms)"] == 6500.0


LANDED = pd.DataFrame(
    [
        (compare.ORDERED, 1, pd.Timestamp("2024-01-01"), 672),
        (compare.ORDERED, 2, pd.Timestamp("2024-01-08"), 672),
        (compare.salted(2), 1, pd.Timestamp("2024-01-01"), 330),
        (compare.salted(2), 2, pd.Timestamp("2024-01-01"), 342),
        (compare.salted(2), 1, pd.Timestamp("2024-01-08"), 336),
        (compare.salted(2), 2, pd.Timestamp("2024-01-08"), 336),
    ],
    columns=["keys", "region", "week", "rows"],
)


def test_hotspot_figure_stacks_each_weeks_rows_by_region():
    figure = storage.hotspot_figure(LANDED)
    ordered, salted = figure.axes
    assert ordered.get_title() == compare.ORDERED
    assert sum(bar.get_height() for bar in ordered.patches) == 2 * 672
    assert sum(bar.get_height() for bar in salted.patches) == 2 * 672
    assert ordered.get_ylabel() and ordered.get_xlabel()


def test_newest_week_gives_each_regions_share_of_the_live_writes():
    shares = storage.newest_week(LANDED)
    assert list(shares.loc[compare.ORDERED]) == [0.0, 100.0]
    assert list(shares.loc[compare.salted(2)]) == [50.0, 50.0]


def test_stored_megabytes_counts_keys_columns_values_and_cell_overhead():
    readings = pd.DataFrame(
        {"sensor": ["TH1"], "timestamp": [pd.Timestamp("2024-01-01")], "value": [1.5]}
    )
    row_key = b"TH1#2024-01-01 00:00:00"
    # 19 bytes of lengths, timestamp and type; the row key; family and column; the value.
    assert storage.stored_megabytes(readings) == (19 + len(row_key) + len(b"d:value") + 3) / 1e6
