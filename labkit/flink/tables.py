"""The job's tables: ``input`` as the source, five output topics as sinks, all Kafka.

One helper, ``kafka_table``, writes the DDL of each from its name, topic, columns, key and
format, so that every table reads the same way and differs only where it truly differs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from labkit.config import Settings
from labkit.flink import parsing
from labkit.flink.sql import indented, quote

# How far behind the newest event time the watermark trails. MOV1 events reach Kafka up to
# 15 minutes after they happened (they are sent when their 15-minute slot ends), so a shorter
# delay would make some of them late.
WATERMARK_DELAY_MINUTES = 15
WATERMARK_DELAY = f"INTERVAL '{WATERMARK_DELAY_MINUTES}' MINUTE"

# Every sink: at least once, batched and compressed like the lab's own producer.
SINK_OPTIONS = {
    "sink.delivery-guarantee": "at-least-once",
    "properties.linger.ms": "20",
    "properties.compression.type": "lz4",
}


def kafka_table(
    settings: Settings,
    name: str,
    topic: str,
    columns: Sequence[str],
    value_format: str,
    key: str | None = None,
    options: Mapping[str, str] | None = None,
) -> str:
    """``CREATE TEMPORARY TABLE name (columns) WITH (...)`` over a Kafka topic.

    ``columns`` are column definitions (a computed column or a watermark may span lines, and
    a line starting with ``--`` is a comment). With a ``key`` column, that column is the
    record's key (its text) and the others its value; a ``raw`` value holds one column only,
    so it leaves the key out. ``options`` are added after the connector's own.
    """
    with_options = {
        "connector": "kafka",
        "topic": topic,
        "properties.bootstrap.servers": settings.kafka_bootstrap,
    }
    if key is None:
        with_options["format"] = value_format
    else:
        with_options |= {
            "key.format": "raw",
            "key.fields": key,
            "value.format": value_format,
            "value.fields-include": "EXCEPT_KEY" if value_format == "raw" else "ALL",
        }
    with_options |= options or {}
    last = max(i for i, column in enumerate(columns) if not _is_comment(column))
    definitions = [
        column if _is_comment(column) or i == last else _before_comment(column, ",")
        for i, column in enumerate(columns)
    ]
    settings_lines = ",\n  ".join(f"{quote(k)} = {quote(v)}" for k, v in with_options.items())
    return (
        f"CREATE TEMPORARY TABLE {name} (\n"
        f"  {indented(definitions, '  ')}\n"
        f") WITH (\n"
        f"  {settings_lines}\n"
        ")"
    )


def _is_comment(line: str) -> bool:
    return line.lstrip().startswith("--")


def _before_comment(column: str, text: str) -> str:
    """``text`` added at the end of a column's definition, before its trailing comment."""
    head, newline, last = column.rpartition("\n")
    definition, dash, comment = last.partition("  --")
    return f"{head}{newline}{definition}{text}{dash}{comment}"


def source_table(settings: Settings, bounded: bool) -> str:
    """``input`` as raw bytes, with Kafka's metadata and a watermark on trusted event time."""
    if bounded:
        # From the first message to those present when the job starts; then the job ends.
        scan = {"scan.startup.mode": "earliest-offset", "scan.bounded.mode": "latest-offset"}
    else:
        scan = {
            "scan.startup.mode": "group-offsets",
            "properties.group.id": "labkit-flink",
            "properties.auto.offset.reset": "earliest",
        }
    return kafka_table(
        settings,
        "input_messages",
        settings.topics.input,
        [
            "body BYTES  -- the message, exactly as it was sent",
            "kafka_partition INT METADATA FROM 'partition' VIRTUAL",
            "kafka_offset BIGINT METADATA FROM 'offset' VIRTUAL",
            "sent_at TIMESTAMP_LTZ(3) METADATA FROM 'timestamp' VIRTUAL",
            "-- Event time: m_timestamp, but never later than the message was sent, and 1970",
            "-- when it is missing or malformed. So bad input cannot move the watermark ahead",
            "-- of the good readings and make them late.",
            f"ts AS {parsing.event_time('CAST(body AS STRING)')}",
            "arrival AS PROCTIME()  -- orders the messages as they arrive",
            "-- For the windows, every 200 ms: never ahead of the verdict on lateness.",
            f"WATERMARK FOR ts AS ts - {WATERMARK_DELAY}",
        ],
        value_format="raw",
        options=scan,
    )


def sink_tables(settings: Settings) -> list[str]:
    """The five output topics."""
    topics = settings.topics
    return [
        kafka_table(
            settings, "output_raw", topics.output_raw,
            ["m_name STRING", "message BYTES"],
            value_format="raw", key="m_name", options=SINK_OPTIONS,
        ),
        kafka_table(
            settings, "output_aggr", topics.output_aggr,
            ["metric STRING", "`day` DATE", "kind STRING", "`value` DOUBLE", "readings BIGINT"],
            value_format="json", key="metric", options=SINK_OPTIONS,
        ),
        kafka_table(
            settings, "input_late", topics.input_late,
            [
                "m_name STRING", "m_value DOUBLE", "m_timestamp STRING",
                "sent_at STRING", "watermark_at STRING",
                "behind_watermark_s BIGINT", "delay_s BIGINT",
                "kafka_partition INT", "kafka_offset BIGINT",
            ],
            value_format="json", key="m_name", options=SINK_OPTIONS,
        ),
        kafka_table(
            settings, "output_rollup", topics.output_rollup,
            [
                "m_name STRING", "resolution STRING", "period_start STRING",
                "total DOUBLE", "readings BIGINT", "offset_sum BIGINT",
            ],
            value_format="json", key="m_name", options=SINK_OPTIONS,
        ),
        kafka_table(
            settings, "input_invalid", topics.input_invalid,
            [
                "reason STRING", "message STRING", "message_chars INT",
                "sent_at STRING", "kafka_partition INT", "kafka_offset BIGINT",
            ],
            value_format="json", options=SINK_OPTIONS,
        ),
    ]  # fmt: skip
