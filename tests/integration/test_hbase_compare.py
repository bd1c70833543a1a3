"""The layouts measured and hot-spotting, against the real HBase: the rows each plan reads,
where each row landed in a table split into regions, and the scratch tables dropped after."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd

from labkit import hbase, oracle, sensors
from labkit.hbase import compare, layout, regions

# Five weeks of every sensor: January, a few days of February and one reading of 2023.
READINGS = oracle.expected(
    oracle.messages_frame(sensors.simulate(sensors.Scenario(days=35, seed=3)))
).raw


def _tables(settings) -> list[bytes]:
    with layout.connection(settings) as conn:
        return conn.tables()


def test_range_scans_read_the_rows_asked_for_the_original_reads_whole_tables(isolated):
    month, day = date(2024, 1, 1), date(2024, 1, 15)
    result = hbase.compare_layouts(isolated, READINGS, month, day, sensor="TH2", repeats=1,
                                   show=False)  # fmt: skip
    queries = result.queries.set_index(["question", "layout", "reads"])
    stamps = READINGS["timestamp"]
    th2 = READINGS[READINGS["sensor"] == "TH2"]
    in_january = th2[(th2["timestamp"] >= "2024-01-01") & (th2["timestamp"] < "2024-02-01")]
    on_day = READINGS[stamps.dt.date == day]
    month_question, day_question = "one sensor (TH2), January 2024", "all sensors, 15 January 2024"
    for question, wanted, whole in (
        (month_question, len(in_january), len(th2)),
        (day_question, len(on_day), len(READINGS)),
    ):
        lab = queries.loc[(question, compare.LAB, compare.RANGE_SCANS)]
        per_sensor = queries.loc[(question, compare.PER_SENSOR, compare.RANGE_SCANS)]
        full = queries.loc[(question, compare.PER_SENSOR, compare.FULL_SCANS)]
        assert lab["rows read"] == lab["rows wanted"] == wanted
        assert per_sensor["rows read"] == per_sensor["rows wanted"] == wanted
        # The original read every row of the tables it touched, and kept the range afterwards.
        assert full["rows read"] == whole and full["rows wanted"] == wanted
    sensors_count = READINGS["sensor"].nunique()
    assert queries.loc[(day_question, compare.LAB, compare.RANGE_SCANS), "scans"] == sensors_count
    assert (result.queries["seconds"] > 0).all()
    writes = result.writes.set_index("layout")
    assert writes.loc[compare.LAB, "tables"] == 1 and result.lab_regions == 1
    assert writes.loc[compare.PER_SENSOR, "regions"] == sensors_count
    assert (writes["rows"] == len(READINGS)).all()
    assert not [name for name in _tables(isolated) if b"_cmp_" in name]


def test_presplit_tables_have_their_regions_and_each_row_lands_in_one(isolated):
    name = f"{isolated.hbase_table_prefix}_split"
    regions.create_presplit(isolated, {name: [b"g", b"p"]})
    try:
        with layout.connection(isolated) as conn:
            found = regions.regions(conn, name)
            assert [(r.start, r.stop) for r in found] == [(b"", b"g"), (b"g", b"p"), (b"p", b"")]
            with conn.table(name).batch() as batch:
                for word in (b"apple", b"grape", b"kiwi", b"pear", b"zucchini"):
                    batch.put(word, {layout.Column.VALUE: b"1"})
            assert regions.keys_per_region(conn, name) == [
                [b"apple"], [b"grape", b"kiwi"], [b"pear", b"zucchini"],
            ]  # fmt: skip
    finally:
        hbase.drop_tables(isolated, [name])


def test_time_ordered_keys_send_a_week_to_one_region_salted_keys_to_all(isolated):
    result = hbase.hotspots(isolated, READINGS, sensor="TH1", buckets=4, repeats=1)
    landed = result.landed
    ordered, salted = compare.ORDERED, compare.salted(4)
    th1 = READINGS[READINGS["sensor"] == "TH1"]
    for design in (ordered, salted):
        assert landed[landed["keys"] == design]["rows"].sum() == len(th1)
    # Time-ordered: the regions hold consecutive quarters, the newest week is all in the last.
    per_region = landed[landed["keys"] == ordered].groupby("region")["rows"].sum()
    assert list(per_region.index) == [1, 2, 3, 4]
    assert per_region.max() - per_region.min() <= 1
    newest = landed[(landed["keys"] == ordered) & (landed["week"] == landed["week"].max())]
    assert list(newest["region"]) == [4]
    # Salted: every region takes rows of every week.
    mine = landed[landed["keys"] == salted]
    weeks = mine["week"].nunique()
    assert (mine.groupby("region")["week"].nunique() == weeks).all()
    assert result.split_keys[salted] == [b"1", b"2", b"3"]
    # Reading back: the same rows, one scan against one per bucket.
    scans = result.scans.set_index(["question", "keys"])
    last_day = th1["timestamp"].max().normalize()
    in_last_day = (
        (th1["timestamp"] >= last_day) & (th1["timestamp"] < last_day + timedelta(days=1))
    ).sum()
    in_january = (th1["timestamp"] < pd.Timestamp("2024-02-01")).sum()
    questions = list(dict.fromkeys(result.scans["question"]))
    assert [scans.loc[(q, ordered), "rows read"] for q in questions] == [in_last_day, in_january]
    assert [scans.loc[(q, salted), "rows read"] for q in questions] == [in_last_day, in_january]
    assert (result.scans.set_index("keys").loc[ordered, "scans"] == 1).all()
    assert (result.scans.set_index("keys").loc[salted, "scans"] == 4).all()
    assert not [name for name in _tables(isolated) if b"_hot_" in name]
