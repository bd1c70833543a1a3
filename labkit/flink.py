"""The stream layer: one PyFlink job, in SQL only, built from the sensor catalogue.

The job reads every message of ``input`` as raw bytes and, in SQL:

1. parses and validates it (``input_parsed``, ``input_checked``): anything wrong goes to
   ``input_invalid`` with the reason;
2. compares its event time with the watermark (``input_classified``): a valid reading behind
   the watermark goes to ``input_late``, with how late it was;
3. passes every valid on-time reading, unchanged, to ``output_raw``;
4. computes the daily aggregates in event-time windows into ``output_aggr``: AVG and SUM in
   1-day tumbling windows; each meter's daily difference and rest in 2-day windows that slide
   by a day, which hold today's and yesterday's meter readings.

It runs on Flink's local mini-cluster (inside the JVM PyFlink starts) or, with
``LABKIT_FLINK_MODE=remote``, is submitted to a Flink cluster with ``flink run -py``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from labkit import sensors
from labkit.config import LOOPBACK, FlinkMode, Settings
from labkit.errors import ServiceError
from labkit.jvm import check_java, jar_group

# How far behind the newest event time the watermark trails. MOV1 events reach Kafka up to
# 15 minutes after they happened (they are sent when their 15-minute slot ends), so a shorter
# delay would make some of them late.
WATERMARK_DELAY_MINUTES = 15
MAX_MESSAGE_CHARS = 1024
TIME_FORMAT = "yyyy-MM-dd HH:mm:ss"
# A JSON number: 20.5, -1E+400.
_NUMBER = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?"
NUMBER_JSON = rf"^\[{_NUMBER}\]$"  # ... in brackets, as JSON_QUERY writes it: [20.5]
# The message as the sensors write it: these three fields in this order, strings without
# quotes or escapes. Split at its quotes, such a message has the name as its part 3, the value
# (between a colon and a comma) as part 6 and the time as part 9.
SENSOR_JSON = r'^\{"m_name": ?"[^"\\]*", ?"m_value": ?[-+.0-9eE]+, ?"m_timestamp": ?"[^"\\]*"\}$'
STRICT_TIME = "^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$"
NO_TIME = "TIMESTAMP '1970-01-01 00:00:00'"
# Roll-ups of each sensor's readings (labkit.api reads them), as SQL intervals.
ROLLUPS = {
    name: f"'{period // timedelta(hours=1)}' HOUR"
    for name, period in sensors.ROLLUP_PERIODS.items()
}


def flink_version() -> str:
    from pyflink.version import __version__

    return __version__


def connector_jar(settings: Settings) -> Path:
    """The Flink Kafka SQL connector jar that matches the installed PyFlink."""
    jars = sorted(jar_group(settings, "flink").glob("flink-sql-connector-kafka-*.jar"))
    if not jars:
        raise ServiceError(
            f"The Flink Kafka SQL connector is missing from {settings.jars_dir / 'flink'}: "
            "run `labkit up` (or `make jars`)."
        )
    jar = jars[-1]
    # Connector versions end in the Flink minor version they are built for: 5.0.0-2.2.
    built_for = jar.stem.rsplit("-", 1)[-1]
    installed = ".".join(flink_version().split(".")[:2])
    if built_for != installed:
        raise ServiceError(
            f"{jar.name} is built for Flink {built_for}, but PyFlink {flink_version()} is "
            "installed. Align flink.kafka.connector.version in services/pom.xml with the "
            "apache-flink pin in pyproject.toml."
        )
    return jar


def _prepare_gateway(settings: Settings) -> None:
    """Settings for the JVM that PyFlink starts on first use (it hosts the mini-cluster)."""
    check_java()
    log_dir = settings.logs_dir / "flink"
    log_dir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("FLINK_LOG_DIR", str(log_dir))
    os.environ.setdefault("JVM_ARGS", f"-Xmx{settings.flink_heap}")
    # The job is SQL: it never runs Python functions. Without this, PyFlink serves a pool of
    # Python workers for the mini-cluster over gRPC, unauthenticated, on every interface.
    os.environ.setdefault("_python_worker_execution_mode", "process")


def table_environment(settings: Settings, streaming: bool = True):
    """A TableEnvironment with the Kafka connector on its classpath, in UTC."""
    _prepare_gateway(settings)
    from pyflink.table import EnvironmentSettings, TableEnvironment

    mode = (
        EnvironmentSettings.in_streaming_mode()
        if streaming
        else EnvironmentSettings.in_batch_mode()
    )
    env = TableEnvironment.create(mode)
    config = env.get_config()
    config.set("pipeline.jars", connector_jar(settings).as_uri())
    config.set("parallelism.default", str(settings.flink_parallelism))
    # m_timestamp carries no zone; the lab reads it, and Kafka's record timestamps, as UTC.
    config.set("table.local-time-zone", "UTC")
    # A cancelled job's Kafka client threads outlive its class loader; Flink's check for that
    # only prints a scary stack trace.
    config.set("classloader.check-leaked-classloader", "false")
    # A view that several statements read is computed once, not once per statement: without
    # this, each INSERT would parse every message's JSON again.
    config.set("table.optimizer.reuse-optimize-block-with-digest-enabled", "true")
    # Operators chained in one task pass rows on without copying them (SQL operators do not
    # keep the rows they are given).
    config.set("pipeline.object-reuse", "true")
    # The mini-cluster serves this process alone: its RPC, blob, data and REST ports listen on
    # the loopback (Flink's default is every interface). A remote cluster ignores these.
    for option in ("jobmanager.bind-host", "taskmanager.bind-host", "rest.bind-address"):
        config.set(option, LOOPBACK)
    return env


# --------------------------------------------------------------------------------------
# The SQL
# --------------------------------------------------------------------------------------


def _sql(text: str, **blocks: str) -> str:
    """Dedent a statement; put each multi-line block in at its ``{name}`` placeholder's indent."""
    lines = []
    for line in textwrap.dedent(text).strip().splitlines():
        stripped = line.lstrip()
        indent = line[: len(line) - len(stripped)]
        name = next((n for n in blocks if stripped.startswith("{" + n + "}")), None)
        if name is None:
            lines.append(line)
            continue
        block = blocks[name].splitlines()
        block[-1] += stripped[len(name) + 2 :]
        lines += [indent + part for part in block]
    return "\n".join(lines)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _names(names: list[str] | tuple[str, ...]) -> str:
    return ", ".join(_quote(name) for name in names)


def _number(value: float) -> str:
    return repr(float(value)) if value == value else "NULL"


def _kafka(settings: Settings, topic: str) -> str:
    return (
        "'connector' = 'kafka',\n"
        f"'topic' = {_quote(topic)},\n"
        f"'properties.bootstrap.servers' = {_quote(settings.kafka_bootstrap)}"
    )


def _split_part(text: str, part: int) -> str:
    """Part ``part`` of a message in the sensors' shape, split at its quotes (SENSOR_JSON)."""
    piece = f"SPLIT_INDEX({text}, '\"', {part})"
    # The value sits between a colon and a comma.
    return f"TRIM(BOTH ' :,' FROM {piece})" if part == 6 else piece


def _field_json(field: str, part: int, brackets: tuple[str, str]) -> str:
    """A field as bracketed JSON text: split out when the message has the sensors' shape."""
    before, after = brackets
    return (
        f"CASE WHEN m.sensor_shape\n"
        f"  THEN '{before}' || {_split_part('m.message', part)} || '{after}'\n"
        f"  ELSE JSON_QUERY(m.message, '$.{field}' WITH UNCONDITIONAL ARRAY WRAPPER) END"
    )


def source_table(settings: Settings, bounded: bool) -> str:
    """``input`` as raw bytes, with Kafka's metadata and a watermark on trusted event time."""
    if bounded:
        # From the first message to those present when the job starts; then the job ends.
        scan = "'scan.startup.mode' = 'earliest-offset',\n'scan.bounded.mode' = 'latest-offset'"
    else:
        scan = (
            "'scan.startup.mode' = 'group-offsets',\n"
            "'properties.group.id' = 'labkit-flink',\n"
            "'properties.auto.offset.reset' = 'earliest'"
        )
    # (CAST, not DECODE: Flink cannot compile DECODE inside a watermark expression.)
    text = "CAST(body AS STRING)"  # not DECODE: Flink cannot compile it in a watermark
    split_time = _split_part(text, 9)
    json_time = f"JSON_VALUE({text}, '$.m_timestamp')"
    return _sql(
        f"""
        CREATE TEMPORARY TABLE input_messages (
          body BYTES,  -- the message, exactly as it was sent
          kafka_partition INT METADATA FROM 'partition' VIRTUAL,
          kafka_offset BIGINT METADATA FROM 'offset' VIRTUAL,
          sent_at TIMESTAMP_LTZ(3) METADATA FROM 'timestamp' VIRTUAL,
          -- Event time: m_timestamp, but never later than the message was sent, and 1970
          -- when it is missing or malformed. So bad input cannot move the watermark ahead
          -- of the good readings and make them late.
          ts AS COALESCE(LEAST(
              CASE
                WHEN REGEXP({text}, '{SENSOR_JSON}')
                 AND REGEXP({split_time}, '{STRICT_TIME}')
                  THEN TO_TIMESTAMP({split_time}, '{TIME_FORMAT}')
                WHEN REGEXP({json_time}, '{STRICT_TIME}')
                  THEN TO_TIMESTAMP({json_time}, '{TIME_FORMAT}')
              END,
              CAST(sent_at AS TIMESTAMP(3))),
            {NO_TIME}),
          WATERMARK FOR ts AS ts - INTERVAL '{WATERMARK_DELAY_MINUTES}' MINUTE
        ) WITH (
          {{kafka}},
          {{scan}},
          'format' = 'raw',
          -- A watermark after every message, not every 200 ms: lateness is then decided by
          -- the order of the messages alone, the same on every run.
          'scan.watermark.emit.strategy' = 'on-event'
        )
        """,
        kafka=_kafka(settings, settings.topics.input),
        scan=scan,
    )


def sink_tables(settings: Settings) -> list[str]:
    topics = settings.topics
    # At least once; batched and compressed like the lab's own producer.
    delivery = (
        "'sink.delivery-guarantee' = 'at-least-once',\n"
        "'properties.linger.ms' = '20',\n"
        "'properties.compression.type' = 'lz4'"
    )
    return [
        _sql(
            """
            CREATE TEMPORARY TABLE output_raw (
              m_name STRING,
              message STRING
            ) WITH (
              {kafka},
              'key.format' = 'raw', 'key.fields' = 'm_name',
              'value.format' = 'raw', 'value.fields-include' = 'EXCEPT_KEY',
              {delivery}
            )
            """,
            kafka=_kafka(settings, topics.output_raw),
            delivery=delivery,
        ),
        _sql(
            """
            CREATE TEMPORARY TABLE output_aggr (
              metric STRING,
              `day` DATE,
              kind STRING,
              `value` DOUBLE,
              readings BIGINT
            ) WITH (
              {kafka},
              'key.format' = 'raw', 'key.fields' = 'metric',
              'value.format' = 'json', 'value.fields-include' = 'ALL',
              {delivery}
            )
            """,
            kafka=_kafka(settings, topics.output_aggr),
            delivery=delivery,
        ),
        _sql(
            """
            CREATE TEMPORARY TABLE input_late (
              m_name STRING,
              m_value DOUBLE,
              m_timestamp STRING,
              sent_at STRING,
              watermark_at STRING,
              behind_watermark_s BIGINT,
              delay_s BIGINT,
              kafka_partition INT,
              kafka_offset BIGINT
            ) WITH (
              {kafka},
              'key.format' = 'raw', 'key.fields' = 'm_name',
              'value.format' = 'json', 'value.fields-include' = 'ALL',
              {delivery}
            )
            """,
            kafka=_kafka(settings, topics.input_late),
            delivery=delivery,
        ),
        _sql(
            """
            CREATE TEMPORARY TABLE output_rollup (
              m_name STRING,
              resolution STRING,
              period_start STRING,
              total DOUBLE,
              readings BIGINT,
              offset_sum BIGINT
            ) WITH (
              {kafka},
              'key.format' = 'raw', 'key.fields' = 'm_name',
              'value.format' = 'json', 'value.fields-include' = 'ALL',
              {delivery}
            )
            """,
            kafka=_kafka(settings, topics.output_rollup),
            delivery=delivery,
        ),
        _sql(
            """
            CREATE TEMPORARY TABLE input_invalid (
              reason STRING,
              message STRING,
              message_chars INT,
              sent_at STRING,
              kafka_partition INT,
              kafka_offset BIGINT
            ) WITH (
              {kafka},
              'format' = 'json',
              {delivery}
            )
            """,
            kafka=_kafka(settings, topics.input_invalid),
            delivery=delivery,
        ),
    ]


def _range_checks() -> str:
    checks = []
    for sensor in sensors.CATALOGUE:
        low, high = sensor.valid_min, sensor.valid_max
        bounds = []
        if low != float("-inf"):
            bounds.append(f"m_value < {_number(low)}")
        if high != float("inf"):
            bounds.append(f"m_value > {_number(high)}")
        if bounds:
            shown = f"{low:g}..{high:g}".replace("inf", "∞")
            checks.append(
                f"WHEN m_name = {_quote(sensor.name)} AND ({' OR '.join(bounds)})\n"
                f"  THEN {_quote(f'm_value outside the range of {sensor.name} ({shown})')}"
            )
    return "\n".join(checks)


def views() -> dict[str, str]:
    """The job's views, by name: parse, validate and classify every message, keep the valid
    on-time readings, and line up each meter's two days."""
    known = _names([sensor.name for sensor in sensors.CATALOGUE])
    biggest = "1.7976931348623157E308"
    return {
        "input_parsed": _sql(
            f"""
            SELECT m.*, f.*
            FROM (
              SELECT body, message, kafka_partition, kafka_offset, sent_at, ts,
                     REGEXP(message, '{SENSOR_JSON}') AS sensor_shape
              FROM (
                SELECT body, DECODE(body, 'UTF-8') AS message, kafka_partition, kafka_offset,
                       CAST(sent_at AS TIMESTAMP(3)) AS sent_at, ts
                FROM input_messages
              )
            ) AS m
            -- Each field as JSON text in brackets, NULL when absent or null: ["TH1"] is a
            -- string, [20.5] a number, [{{...}}] an object, [["TH1"]] an array. Messages in
            -- the sensors' own shape are split at their quotes; any other shape goes through
            -- Flink's JSON functions (slower: each call parses the whole message again).
            -- The one-row UNNEST makes Flink compute these once per message: columns of a
            -- plain sub-query would be computed again wherever the later views use them.
            CROSS JOIN UNNEST(ARRAY[ROW(
              {{name_json}},
              {{value_json}},
              {{time_json}}
            )]) AS f (name_json, value_json, time_json)
            """,
            name_json=_field_json("m_name", 3, ('["', '"]')),
            value_json=_field_json("m_value", 6, ("[", "]")),
            time_json=_field_json("m_timestamp", 9, ('["', '"]')),
        ),
        "input_fields": _sql(
            f"""
            SELECT *,
              CASE WHEN name_json LIKE '["%"]'
                THEN SUBSTRING(name_json FROM 3 FOR CHAR_LENGTH(name_json) - 4) END AS m_name,
              CASE WHEN REGEXP(value_json, '{NUMBER_JSON}')
                THEN CAST(SUBSTRING(value_json FROM 2 FOR CHAR_LENGTH(value_json) - 2) AS DOUBLE)
              END AS m_value,
              CASE WHEN time_json LIKE '["%"]'
                THEN SUBSTRING(time_json FROM 3 FOR CHAR_LENGTH(time_json) - 4) END AS m_timestamp
            FROM input_parsed
            """
        ),
        "input_checked": _sql(
            f"""
            SELECT *, CASE
              WHEN body IS NULL OR CHAR_LENGTH(TRIM(message)) = 0 THEN 'empty message'
              WHEN CHAR_LENGTH(message) > {MAX_MESSAGE_CHARS}
                THEN 'message longer than {MAX_MESSAGE_CHARS} characters'
              WHEN ENCODE(message, 'UTF-8') <> body THEN 'not valid UTF-8'
              WHEN name_json IS NULL OR value_json IS NULL OR time_json IS NULL THEN CASE
                WHEN message IS NOT JSON OBJECT AND REGEXP(message, '(NaN|Infinity)')
                  THEN 'NaN or Infinity, which JSON does not allow'
                WHEN message IS NOT JSON OBJECT THEN 'not a JSON object'
                WHEN name_json IS NULL THEN 'missing m_name'
                WHEN value_json IS NULL THEN 'missing m_value'
                ELSE 'missing m_timestamp'
              END
              WHEN m_name IS NULL THEN 'm_name is not a string'
              WHEN m_name NOT IN ({known}) THEN 'unknown sensor'
              WHEN m_value IS NULL THEN 'm_value is not a number'
              WHEN NOT m_value BETWEEN -{biggest} AND {biggest}
                THEN 'm_value is not a finite number'
              WHEN m_timestamp IS NULL THEN 'm_timestamp is not a string'
              -- Valid times are exactly the source's event time, written back as text.
              WHEN DATE_FORMAT(ts, '{TIME_FORMAT}') <> m_timestamp THEN CASE
                WHEN TO_TIMESTAMP(m_timestamp, '{TIME_FORMAT}') > sent_at
                  THEN 'm_timestamp is later than the message was sent'
                ELSE 'm_timestamp is not a valid YYYY-MM-DD HH:MM:SS time'
              END
              {{range_checks}}
              ELSE NULL
            END AS problem
            FROM input_fields
            """,
            range_checks=_range_checks(),
        ),
        "input_classified": _sql(
            """
            SELECT *,
              -- Late: a valid reading whose event time the watermark has already passed.
              -- (Before the first watermark CURRENT_WATERMARK is NULL: nothing is late.)
              problem IS NULL AND COALESCE(ts <= CURRENT_WATERMARK(ts), FALSE) AS is_late,
              CURRENT_WATERMARK(ts) AS watermark_at
            FROM input_checked
            """
        ),
        "readings": _sql(
            """
            SELECT m_name, m_value, ts
            FROM input_classified
            WHERE problem IS NULL AND NOT is_late
            """
        ),
        "meters_two_days": _two_day_view(),
    }


def _two_day_view() -> str:
    """Per day: each meter's reading today and yesterday, and today's sums of its parts."""
    today = "ts >= window_start + INTERVAL '1' DAY"
    yesterday = "ts < window_start + INTERVAL '1' DAY"
    columns = []
    for meter in (s for s in sensors.CATALOGUE if s.kind is sensors.SensorKind.METER):
        key, name = meter.name.lower(), _quote(meter.name)
        parts = _names(meter.parts)
        columns += [
            # A cumulative meter only grows: its last reading of a day is its largest.
            f"MAX(m_value) FILTER (WHERE m_name = {name} AND {today}) AS {key}_today",
            f"MAX(m_value) FILTER (WHERE m_name = {name} AND {yesterday}) AS {key}_yesterday",
            f"COUNT(*) FILTER (WHERE m_name = {name}) AS {key}_readings",
            f"SUM(m_value) FILTER (WHERE m_name IN ({parts}) AND {today}) AS {key}_parts",
            f"COUNT(*) FILTER (WHERE m_name IN ({parts}) AND {today}) AS {key}_parts_readings",
        ]
    body = ",\n  ".join(columns)
    return (
        "SELECT\n"
        "  CAST(window_start + INTERVAL '1' DAY AS DATE) AS `day`,\n"
        f"  {body}\n"
        "FROM TABLE(HOP(TABLE readings, DESCRIPTOR(ts), INTERVAL '1' DAY, INTERVAL '2' DAY))\n"
        "GROUP BY window_start, window_end"
    )


def inserts(settings: Settings) -> dict[str, str]:
    """The job's statements, by what they produce; they run together as one statement set."""
    by_aggregate: dict[str, list[str]] = {}
    for sensor in sensors.CATALOGUE:
        if sensor.kind is not sensors.SensorKind.METER:
            by_aggregate.setdefault(sensor.aggregate, []).append(sensor.name)
    statements = {
        "raw": _sql(
            """
            INSERT INTO output_raw
            SELECT m_name, message
            FROM input_classified
            WHERE problem IS NULL AND NOT is_late
            """
        ),
        "late": _sql(
            f"""
            INSERT INTO input_late
            SELECT m_name, m_value, m_timestamp,
                   DATE_FORMAT(sent_at, '{TIME_FORMAT}'),
                   DATE_FORMAT(watermark_at, '{TIME_FORMAT}'),
                   TIMESTAMPDIFF(SECOND, ts, watermark_at),
                   TIMESTAMPDIFF(SECOND, ts, sent_at),
                   kafka_partition, kafka_offset
            FROM input_classified
            WHERE is_late
            """
        ),
        "invalid": _sql(
            f"""
            INSERT INTO input_invalid
            SELECT problem, SUBSTRING(message, 1, {MAX_MESSAGE_CHARS}), CHAR_LENGTH(message),
                   DATE_FORMAT(sent_at, '{TIME_FORMAT}'), kafka_partition, kafka_offset
            FROM input_classified
            WHERE problem IS NOT NULL
            """
        ),
    }
    for aggregate, names in by_aggregate.items():
        statements[f"daily_{aggregate.lower()}"] = _sql(
            f"""
            INSERT INTO output_aggr
            SELECT m_name, CAST(window_start AS DATE), '{aggregate}', {aggregate}(m_value), COUNT(*)
            FROM TABLE(TUMBLE(TABLE readings, DESCRIPTOR(ts), INTERVAL '1' DAY))
            WHERE m_name IN ({_names(names)})
            GROUP BY m_name, window_start, window_end
            """
        )
    statements.update(_meter_inserts())
    for resolution, interval in ROLLUPS.items():
        statements[f"rollup_{resolution}"] = _sql(
            f"""
            INSERT INTO output_rollup
            SELECT m_name, '{resolution}', DATE_FORMAT(window_start, '{TIME_FORMAT}'),
                   SUM(m_value), COUNT(*), SUM(TIMESTAMPDIFF(SECOND, window_start, ts))
            FROM TABLE(TUMBLE(TABLE readings, DESCRIPTOR(ts), INTERVAL {interval}))
            GROUP BY m_name, window_start, window_end
            """
        )
    return statements


def _meter_inserts() -> dict[str, str]:
    """Per meter: its daily difference, and its rest (the difference its parts leave over)."""
    statements = {}
    for meter in (s for s in sensors.CATALOGUE if s.kind is sensors.SensorKind.METER):
        key = meter.name.lower()
        diff = f"{key}_today - {key}_yesterday"
        both = f"{key}_today IS NOT NULL AND {key}_yesterday IS NOT NULL"
        statements[f"{key}_diff"] = _sql(
            f"""
            INSERT INTO output_aggr
            SELECT {_quote(sensors.diff_metric(meter.name))}, `day`, 'DIFF',
                   {diff}, {key}_readings
            FROM meters_two_days
            WHERE {both}
            """
        )
        statements[f"{key}_rest"] = _sql(
            f"""
            INSERT INTO output_aggr
            SELECT {_quote(sensors.rest_metric(meter.name))}, `day`, 'REST',
                   {diff} - {key}_parts, {key}_readings + {key}_parts_readings
            FROM meters_two_days
            WHERE {both} AND {key}_parts IS NOT NULL
            """
        )
    return statements


def statements(settings: Settings, bounded: bool) -> list[str]:
    """Everything the job declares before its inserts: source, sinks and views, as SQL."""
    return [
        source_table(settings, bounded),
        *sink_tables(settings),
        *(f"CREATE TEMPORARY VIEW {name} AS\n{select}" for name, select in views().items()),
    ]


def declare(env, settings: Settings, bounded: bool) -> None:
    """Create the job's tables and views in a TableEnvironment.

    Each view is registered from its query (``create_temporary_view``) rather than with
    CREATE VIEW: every statement then reads one and the same plan node, which Flink runs once.
    """
    for table in (source_table(settings, bounded), *sink_tables(settings)):
        env.execute_sql(table)
    for name, select in views().items():
        env.create_temporary_view(name, env.sql_query(select))


# --------------------------------------------------------------------------------------
# Running the job
# --------------------------------------------------------------------------------------


@dataclass
class RunningJob:
    """A submitted pipeline job: wait for it (bounded) or cancel it (live)."""

    result: Any  # pyflink's TableResult

    @property
    def job_id(self) -> str:
        return str(self.result.get_job_client().get_job_id())

    def status(self) -> str:
        return str(self.result.get_job_client().get_job_status().result())

    def wait(self, poll: Callable[[], None] | None = None, interval: float = 1.0) -> None:
        """Block until the job ends (raising if it failed); ``poll()`` runs meanwhile."""
        finished = self.result.get_job_client().get_job_execution_result()
        while poll is not None and not finished.done():
            poll()
            time.sleep(interval)
        self.result.wait()
        if poll is not None:
            poll()

    def cancel(self) -> None:
        self.result.get_job_client().cancel().result()


def checkpoint_dir(settings: Settings) -> Path:
    """Where the live job over this input topic keeps its checkpoints."""
    return settings.data_dir / "flink" / "checkpoints" / settings.topics.input


def latest_checkpoint(settings: Settings) -> Path | None:
    """The newest complete checkpoint a live job left behind (a ``chk-N`` with metadata)."""
    complete = checkpoint_dir(settings).glob("*/chk-*/_metadata")
    newest = max(complete, key=lambda metadata: metadata.stat().st_mtime, default=None)
    return None if newest is None else newest.parent


def start_pipeline(settings: Settings, bounded: bool, restore: bool = False) -> RunningJob:
    """Submit the pipeline job to the local mini-cluster.

    A live job checkpoints every 10 s (its windows and its Kafka offsets) and keeps its last
    checkpoint when cancelled; ``restore=True`` starts it again from there.
    """
    env = table_environment(settings)
    config = env.get_config()
    config.set("pipeline.name", f"labkit pipeline ({'bounded' if bounded else 'live'})")
    if not bounded:
        config.set("execution.checkpointing.interval", "10 s")
        config.set("execution.checkpointing.dir", checkpoint_dir(settings).as_uri())
        config.set(
            "execution.checkpointing.externalized-checkpoint-retention", "RETAIN_ON_CANCELLATION"
        )
    if restore:
        checkpoint = latest_checkpoint(settings)
        if checkpoint is None:
            raise ServiceError(
                f"No checkpoint to restore from in {checkpoint_dir(settings)}: start the live "
                "job without restore=True first."
            )
        config.set("execution.state-recovery.path", checkpoint.as_uri())
    declare(env, settings, bounded)
    statement_set = env.create_statement_set()
    for insert in inserts(settings).values():
        statement_set.add_insert_sql(insert)
    return RunningJob(statement_set.execute())


def run_bounded(settings: Settings, poll: Callable[[], None] | None = None) -> None:
    """Run the job over what ``input`` holds now, on the mini-cluster or the remote cluster
    (LABKIT_FLINK_MODE); ``poll()`` is called about once a second until it ends."""
    if settings.flink_mode is FlinkMode.LOCAL:
        start_pipeline(settings, bounded=True).wait(poll)
        return
    outcome: list[BaseException | None] = []

    def submit() -> None:
        try:
            submit_remote(settings, bounded=True)
            outcome.append(None)
        except BaseException as error:  # noqa: BLE001 - raised again below
            outcome.append(error)

    worker = threading.Thread(target=submit, name="flink-run", daemon=True)
    worker.start()
    while worker.is_alive():
        if poll is not None:
            poll()
        worker.join(1.0)
    if poll is not None:
        poll()
    if outcome and outcome[0] is not None:
        raise outcome[0]


def flink_cli() -> Path:
    import pyflink

    return Path(pyflink.__file__).parent / "bin" / "flink"


def submit_remote(settings: Settings, bounded: bool) -> subprocess.CompletedProcess:
    """Submit the pipeline to a Flink cluster with ``flink run -py`` (LABKIT_FLINK_MODE=remote).

    The job is built by this very module in a client process (``main`` below), from the same
    settings, passed on as LABKIT_* variables. A bounded job is waited for; a live one detached.
    """
    from labkit import config

    command = [
        str(flink_cli()), "run",
        "-m", settings.flink_jobmanager,
        *([] if bounded else ["--detached"]),
        "--jarfile", str(connector_jar(settings)),
        "-pyclientexec", sys.executable,
        "-pyexec", sys.executable,
        "-py", str(Path(__file__)),
        *(["--bounded"] if bounded else []),
    ]  # fmt: skip
    env = {
        **os.environ,
        **config.to_environment(settings),
        "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
    }
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ServiceError(
            f"`flink run` against {settings.flink_jobmanager} failed:\n"
            + "\n".join((result.stdout + result.stderr).strip().splitlines()[-25:])
        )
    return result


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``flink run -py labkit/flink.py``: build and execute the job there."""
    from labkit import config

    parser = argparse.ArgumentParser(description="The labkit pipeline job")
    parser.add_argument("--bounded", action="store_true")
    args = parser.parse_args(argv)
    job = start_pipeline(config.settings(), bounded=args.bounded)
    if args.bounded:
        job.wait()


if __name__ == "__main__":
    main()
