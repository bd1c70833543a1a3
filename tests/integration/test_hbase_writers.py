"""labkit.hbase against the real HBase: writers from Kafka, idempotent replays, range reads."""

import json
from datetime import date, datetime

import pandas as pd
import pytest

from labkit import hbase, kafka, sensors

from .tables import table_rows


def _send(settings, topic, values, key=b"k"):
    producer = kafka.BatchProducer(settings)
    for value in values:
        producer.send(topic, value.encode() if isinstance(value, str) else value, key=key)
    producer.flush()


def _raw(sensor, stamp, value):
    return json.dumps({"m_name": sensor, "m_value": value, "m_timestamp": stamp})


def test_writers_store_each_topic_and_commit_after_storing(isolated):
    topics = isolated.topics
    _send(
        isolated,
        topics.output_raw,
        [_raw("TH1", f"2024-01-01 00:{m:02d}:00", 20.0 + m) for m in range(0, 60, 15)],
    )
    _send(
        isolated,
        topics.output_aggr,
        [
            json.dumps(
                {"metric": "TH1", "day": "2024-01-01", "kind": "AVG", "value": 21.5, "readings": 4}
            )
        ],
    )
    _send(
        isolated,
        topics.input_late,
        [
            json.dumps(
                {"m_name": "W1", "m_value": 0.5, "m_timestamp": "2023-12-30 00:00:00",
                 "sent_at": "2024-01-01 00:00:00", "watermark_at": "2023-12-31 23:45:00",
                 "behind_watermark_s": 171900, "delay_s": 172800, "kafka_partition": 0,
                 "kafka_offset": 17}
            )
        ],
    )  # fmt: skip
    _send(
        isolated,
        topics.input_invalid,
        [
            json.dumps(
                {"reason": "not a JSON object", "message": "oops", "message_chars": 4,
                 "sent_at": "2024-01-01 00:00:00", "kafka_partition": 0, "kafka_offset": 18}
            )
        ],
    )  # fmt: skip
    stats = hbase.drain(isolated)
    assert {kind: stat.rows for kind, stat in stats.items()} == {
        "raw": 4, "daily": 1, "late": 1, "invalid": 1, "rollup": 0,
    }  # fmt: skip
    assert table_rows(isolated, "raw")[b"TH1#2024-01-01 00:30:00"] == {b"d:value": b"50.0"}
    assert table_rows(isolated, "daily")[b"TH1#2024-01-01"] == {
        b"d:value": b"21.5", b"d:readings": b"4", b"d:kind": b"AVG",
    }  # fmt: skip
    late = table_rows(isolated, "late")[b"W1#2023-12-30 00:00:00#0-000000000017"]
    assert late[b"d:watermark"] == b"2023-12-31 23:45:00"
    invalid = table_rows(isolated, "invalid")[b"input#2024-01-01 00:00:00#0-000000000018"]
    assert invalid[b"d:reason"] == b"not a JSON object" and invalid[b"d:message"] == b"oops"
    # The offsets are committed: nothing is left for the writers' groups.
    for writer in hbase.Writers(isolated).writers:
        assert kafka.group_lag(isolated, writer.group, writer.topic) == 0


def test_a_replayed_topic_overwrites_the_same_rows(isolated):
    readings = [_raw("HVAC1", f"2024-01-02 {h:02d}:00:00", float(h)) for h in range(24)]
    _send(isolated, isolated.topics.output_raw, readings)
    hbase.drain(isolated, ("raw",))
    before = table_rows(isolated, "raw")
    # At-least-once delivery may bring the same messages again: same keys, same rows.
    _send(isolated, isolated.topics.output_raw, readings)
    stats = hbase.drain(isolated, ("raw",))
    assert stats["raw"].rows == 24  # written again ...
    assert table_rows(isolated, "raw") == before  # ... onto the same 24 rows
    assert hbase.count_rows(isolated, "raw") == 24


def test_read_series_is_a_range_scan_of_one_metric(isolated):
    readings = [
        _raw(s, f"2024-01-0{d} 12:00:00", float(d)) for s in ("TH1", "TH2") for d in range(1, 6)
    ]
    _send(isolated, isolated.topics.output_raw, readings)
    hbase.drain(isolated, ("raw",))
    series = hbase.read_series(isolated, "TH1", datetime(2024, 1, 2), date(2024, 1, 4))
    assert list(series.index) == [
        pd.Timestamp("2024-01-02 12:00"),
        pd.Timestamp("2024-01-03 12:00"),
    ]
    assert series["value"].tolist() == [2.0, 3.0]
    assert len(hbase.read_series(isolated, "TH2")) == 5
    assert hbase.read_series(isolated, "TH3").empty


def test_every_partition_is_copied_and_committed(isolated):
    topic = isolated.topics.output_raw
    sensors_ = [s.name for s in sensors.CATALOGUE]
    producer = kafka.BatchProducer(isolated)
    for minute in range(0, 24 * 60, 5):
        for sensor in sensors_:
            stamp = f"2024-01-03 {minute // 60:02d}:{minute % 60:02d}:00"
            producer.send(topic, _raw(sensor, stamp, float(minute)).encode(), key=sensor.encode())
    producer.flush()
    sent = 24 * 12 * len(sensors_)
    offsets = kafka.offsets(isolated, topic)
    assert len([p for p in offsets if p.messages > 0]) == isolated.kafka_partitions  # all used
    stats = hbase.drain(isolated, ("raw",))
    assert stats["raw"].rows == sent
    assert hbase.count_rows(isolated, "raw") == sent
    writer = hbase.Writer(isolated, "raw")
    committed = kafka.offsets(isolated, topic, writer.group)
    assert [p.committed for p in committed] == [p.high for p in offsets]


def test_a_message_of_another_shape_stops_the_writers_and_is_named(isolated):
    topic = isolated.topics.output_raw
    _send(isolated, topic, [_raw("TH1", "2024-01-01 00:00:00", 20.0), "not a reading"])
    with pytest.raises(hbase.WriterError) as failure:
        hbase.drain(isolated, ("raw",))
    assert f"{topic} holds a message the raw writer cannot store" in str(failure.value)
    assert "offset 1" in str(failure.value)
    # The bad message (offset 1) is never committed past: it is read again after a fix.
    writer = hbase.Writer(isolated, "raw")
    assert all((p.committed or 0) <= 1 for p in kafka.offsets(isolated, topic, writer.group))
