"""The job's views and statements, by name, in the order a message goes through them.

``input_parsed`` -> ``input_fields`` -> ``input_checked`` -> ``input_classified`` split
every message into valid on-time readings (``readings``, to ``output_raw`` and the windows),
late readings (``input_late``) and invalid messages (``input_invalid``).
"""

from __future__ import annotations

from labkit.flink import parsing, validation, windows
from labkit.flink.parsing import TIME_FORMAT
from labkit.flink.sql import indented, seconds_between, statement
from labkit.flink.validation import MAX_MESSAGE_CHARS


def _classified_view() -> str:
    return statement(
        """
        SELECT *,
          -- Late: a valid reading whose event time the watermark has already passed.
          -- (Before the first watermark CURRENT_WATERMARK is NULL: nothing is late.)
          problem IS NULL AND COALESCE(ts <= CURRENT_WATERMARK(ts), FALSE) AS is_late,
          CURRENT_WATERMARK(ts) AS watermark_at
        FROM input_checked
        """
    )


def _readings_view() -> str:
    return statement(
        """
        SELECT m_name, m_value, ts
        FROM input_classified
        WHERE problem IS NULL AND NOT is_late
        """
    )


def views() -> dict[str, str]:
    """The job's views, by name: parse, validate and classify every message, keep the valid
    on-time readings, and line up each meter's two days."""
    return {
        "input_parsed": parsing.parsed_view(),
        "input_fields": parsing.fields_view(),
        "input_checked": validation.checked_view(),
        "input_classified": _classified_view(),
        "readings": _readings_view(),
        "meters_two_days": windows.meters_two_days_view(),
    }


def _route_inserts() -> dict[str, str]:
    """Valid on-time readings unchanged to ``output_raw``, late ones to ``input_late``,
    invalid messages with their reason to ``input_invalid``."""
    return {
        "raw": statement(
            """
            INSERT INTO output_raw
            SELECT m_name, message
            FROM input_classified
            WHERE problem IS NULL AND NOT is_late
            """
        ),
        "late": statement(
            f"""
            INSERT INTO input_late
            SELECT m_name, m_value, m_timestamp,
                   DATE_FORMAT(sent_at, '{TIME_FORMAT}'),
                   DATE_FORMAT(watermark_at, '{TIME_FORMAT}'),
                   -- behind_watermark_s, delay_s: in 64 bits, for readings centuries old
                   {indented([seconds_between("ts", "watermark_at")], " " * 19)},
                   {indented([seconds_between("ts", "sent_at")], " " * 19)},
                   kafka_partition, kafka_offset
            FROM input_classified
            WHERE is_late
            """
        ),
        "invalid": statement(
            f"""
            INSERT INTO input_invalid
            SELECT problem, SUBSTRING(message, 1, {MAX_MESSAGE_CHARS}),
                   COALESCE(CHAR_LENGTH(message), 0),  -- a tombstone has no message: 0
                   DATE_FORMAT(sent_at, '{TIME_FORMAT}'), kafka_partition, kafka_offset
            FROM input_classified
            WHERE problem IS NOT NULL
            """
        ),
    }


def inserts() -> dict[str, str]:
    """The job's statements, by what they produce; they run together as one statement set."""
    return {
        **_route_inserts(),
        **windows.daily_inserts(),
        **windows.meter_inserts(),
        **windows.rollup_inserts(),
    }
