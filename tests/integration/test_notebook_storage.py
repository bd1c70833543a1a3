"""Notebook 04's helpers that read the running HBase: the tables' overview, a fresh table."""

from __future__ import annotations

from labkit import hbase
from labkit.hbase import layout
from labkit.notebook import storage


def test_tables_overview_counts_each_table_and_shows_a_real_key(isolated):
    with (
        layout.connection(isolated) as conn,
        conn.table(hbase.table_name(isolated, "raw")).batch() as batch,
    ):
        for minute in ("00", "15", "30"):
            batch.put(*layout.raw_row("TH1", f"2024-01-01 00:{minute}:00", 20.5))
    table = storage.tables_overview(isolated)
    assert list(table.index) == [hbase.table_name(isolated, kind) for kind in hbase.TableKind]
    raw = table.loc[hbase.table_name(isolated, "raw")]
    assert raw["rows"] == 3
    assert raw["first row key"] == "TH1#2024-01-01 00:00:00"
    assert raw["columns"] == "value"
    assert table.loc[hbase.table_name(isolated, "late"), "rows"] == 0


def test_fresh_table_is_empty_every_time(isolated):
    name = storage.fresh_table(isolated, "mine")
    try:
        with layout.connection(isolated) as conn:
            conn.table(name).put(b"apple", {hbase.Column.VALUE: b"1"})
        assert storage.fresh_table(isolated, "mine") == name
        with layout.connection(isolated) as conn:
            assert list(conn.table(name).scan()) == []
    finally:
        hbase.drop_tables(isolated, [name])
