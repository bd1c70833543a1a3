"""The writers' rows made from the messages the job writes: numbers keep their type and sign."""

import json

from labkit.hbase import layout, writers


def test_a_late_reading_keeps_its_whole_numbers_whole():
    message = {
        "m_name": "W1", "m_value": 0.5, "m_timestamp": "2024-01-03 10:00:00",
        "sent_at": "2024-01-05 10:00:00", "watermark_at": "2024-01-05 09:45:00",
        "behind_watermark_s": 171900, "delay_s": 172800, "kafka_partition": 2,
        "kafka_offset": 0,
    }  # fmt: skip
    row = writers.late_row(json.dumps(message).encode())
    expected = layout.late_row(
        "W1", "2024-01-03 10:00:00", layout.origin(2, 0), 0.5,
        "2024-01-05 10:00:00", "2024-01-05 09:45:00", 171900, 172800,
    )  # fmt: skip
    assert row == expected


def test_a_raw_reading_of_minus_zero_keeps_its_sign():
    for text, expected in (("-0", "-0.0"), ("0", "0.0"), ("-0.0", "-0.0"), ("17", "17.0")):
        body = f'{{"m_name": "HVAC1", "m_value": {text}, "m_timestamp": "2024-01-05 10:00:00"}}'
        key, cells = writers.raw_row(body.encode())
        assert key == b"HVAC1#2024-01-05 10:00:00"
        assert cells[b"d:value"] == expected.encode(), text
