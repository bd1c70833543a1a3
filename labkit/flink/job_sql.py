"""The job's views and statements, by name, in the order a message goes through them.

``input_parsed`` -> ``input_fields`` -> ``input_checked`` -> ``input_classified`` split
every message into valid on-time readings (``readings``, to ``output_raw`` and the windows),
late readings (``input_late``) and invalid messages (``input_invalid``).

Lateness is decided by the order of the messages alone: a reading is late when it is at or
behind the newest event time of the messages before it, less the watermark delay. The windows
run on the source's periodic watermark, which trails that same newest time (it is emitted
after the messages it counts), so a reading called on time is never behind it.
"""

from __future__ import annotations

from labkit.flink import parsing, validation, windows
from labkit.flink.parsing import TIME_FORMAT
from labkit.flink.sql import indented, seconds_between, statement
from labkit.flink.tables import WATERMARK_DELAY
from labkit.flink.validation import MAX_MESSAGE_CHARS


def _classified_view() -> str:
    return statement(
        f"""
        SELECT *,
          -- Late: a valid reading at or behind the watermark, 15 minutes behind the newest
          -- event time before it. (Counting this reading's own time changes nothing: were it
          -- the newest, it would be ahead of the watermark.)
          problem IS NULL AND ts <= newest - {WATERMARK_DELAY} AS is_late,
          newest - {WATERMARK_DELAY} AS watermark_at
        FROM (
          SELECT body, kafka_partition, kafka_offset, sent_at, ts,
                 m_name, m_value, problem,
            -- The newest event time so far, in the order the messages arrived. ``input``
            -- has one partition, so that order is the order they were sent, on every run.
            MAX(ts) OVER (ORDER BY arrival ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
              AS newest
          FROM input_checked
        )
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
        **windows.views(),
    }


def _route_inserts() -> dict[str, str]:
    """Valid on-time readings unchanged to ``output_raw``, late ones to ``input_late``,
    invalid messages with their reason to ``input_invalid``."""
    return {
        "raw": statement(
            """
            INSERT INTO output_raw
            SELECT m_name, body
            FROM input_classified
            WHERE problem IS NULL AND NOT is_late
            """
        ),
        "late": statement(
            f"""
            INSERT INTO input_late
            SELECT m_name, m_value,
                   DATE_FORMAT(ts, '{TIME_FORMAT}'),  -- a valid m_timestamp is ts as text
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
            FROM (SELECT *, DECODE(body, 'UTF-8') AS message FROM input_classified)
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
