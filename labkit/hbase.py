"""The storage layer: HBase tables, the writers that fill them from Kafka, and range-scan readers.

A few tables (not one per sensor, as the original had), each with one column family ``d``:

=============  ================================================  ==============================
table          row key                                           columns
=============  ================================================  ==============================
``iot_raw``    ``TH1#2024-01-05 10:15:00``                       value
``iot_daily``  ``Etot_DailyDiff#2024-01-05``                     value, readings, kind
``iot_late``   ``W1#2024-01-03 10:15:00#0-000000001234``         value, sent_at, watermark, ...
``iot_invalid`` ``input#2024-01-05 10:15:00#0-000000001235``     reason, message, chars
``iot_rollup`` ``TH1#6h#2024-01-05 06:00:00``                    sum, count, offset_sum
=============  ================================================  ==============================

A row key starts with the metric and the time, so one metric's time range is one contiguous
range scan. Keys are deterministic: a message replayed from Kafka lands on the same row, which
makes the writers' at-least-once delivery an idempotent, exactly-once store. Late and invalid
rows end with the message's Kafka partition and offset, which keeps two messages with the same
metric and time apart.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import happybase
import pandas as pd
from confluent_kafka import KafkaException, TopicPartition
from thriftpy2.transport import TTransportException

from labkit import kafka
from labkit.config import Settings

log = logging.getLogger(__name__)

FAMILY = b"d"
# A row key's separator, and a byte that sorts after every character of a timestamp: a
# range scan from "TH1#2024-01-05" to "TH1#2024-01-06" reads exactly one day of TH1.
SEPARATOR = "#"
TABLE_KINDS = ("raw", "daily", "late", "invalid", "rollup")
# Failures of the Thrift connection that a retry can cure (HBase restarting, a timeout).
TRANSIENT = (TTransportException, socket.error, OSError, BrokenPipeError)


def connect(settings: Settings, timeout_ms: int = 30_000) -> happybase.Connection:
    """A happybase connection to the lab's HBase Thrift server."""
    return happybase.Connection(settings.hbase_host, settings.hbase_thrift_port, timeout=timeout_ms)


def table_name(settings: Settings, kind: str) -> str:
    if kind not in TABLE_KINDS:
        raise ValueError(f"Unknown table kind {kind!r}; the kinds are {TABLE_KINDS}")
    return f"{settings.hbase_table_prefix}_{kind}"


def ensure_tables(settings: Settings) -> list[str]:
    """Create the lab's tables if they are missing; return those created."""
    connection = connect(settings)
    try:
        existing = {name.decode() for name in connection.tables()}
        created = []
        for kind in TABLE_KINDS:
            name = table_name(settings, kind)
            if name not in existing:
                connection.create_table(name, {FAMILY.decode(): {"max_versions": 1}})
                created.append(name)
        return created
    finally:
        connection.close()


def drop_tables(settings: Settings) -> None:
    connection = connect(settings)
    try:
        existing = {name.decode() for name in connection.tables()}
        for kind in TABLE_KINDS:
            name = table_name(settings, kind)
            if name in existing:
                connection.delete_table(name, disable=True)
    finally:
        connection.close()


def recreate_tables(settings: Settings) -> None:
    """Empty the lab's tables (a fresh run of the pipeline)."""
    drop_tables(settings)
    ensure_tables(settings)


# --------------------------------------------------------------------------------------
# From Kafka records to HBase rows
# --------------------------------------------------------------------------------------


def _text(value: object) -> bytes:
    return repr(value).encode() if isinstance(value, float) else str(value).encode()


def _origin(payload: dict) -> str:
    return f"{payload['kafka_partition']}-{payload['kafka_offset']:012d}"


_JSON = json.JSONDecoder()


def raw_row(record: kafka.Record) -> tuple[bytes, dict[bytes, bytes]]:
    """``output_raw`` carries the sensor's own message, unchanged."""
    # Read as leniently as the job did: white space before the object and text after it pass.
    reading, _end = _JSON.raw_decode(record.value.decode().lstrip())
    key = f"{reading['m_name']}{SEPARATOR}{reading['m_timestamp']}"
    return key.encode(), {b"d:value": _text(float(reading["m_value"]))}


def daily_row(record: kafka.Record) -> tuple[bytes, dict[bytes, bytes]]:
    row = json.loads(record.value)
    key = f"{row['metric']}{SEPARATOR}{row['day']}"
    return key.encode(), {
        b"d:value": _text(float(row["value"])),
        b"d:readings": _text(row["readings"]),
        b"d:kind": _text(row["kind"]),
    }


def late_row(record: kafka.Record) -> tuple[bytes, dict[bytes, bytes]]:
    row = json.loads(record.value)
    key = SEPARATOR.join((row["m_name"], row["m_timestamp"], _origin(row)))
    return key.encode(), {
        b"d:value": _text(float(row["m_value"])),
        b"d:sent_at": _text(row["sent_at"]),
        b"d:watermark": _text(row["watermark_at"]),
        b"d:behind_watermark_s": _text(row["behind_watermark_s"]),
        b"d:delay_s": _text(row["delay_s"]),
    }


def invalid_row(record: kafka.Record) -> tuple[bytes, dict[bytes, bytes]]:
    row = json.loads(record.value)
    key = SEPARATOR.join(("input", row["sent_at"], _origin(row)))
    return key.encode(), {
        b"d:reason": _text(row["reason"]),
        b"d:message": (row["message"] or "").encode("utf-8", errors="replace"),
        b"d:chars": _text(row["message_chars"]),
    }


def rollup_row(record: kafka.Record) -> tuple[bytes, dict[bytes, bytes]]:
    """A sensor's sum, count and summed time offsets (seconds) over one period."""
    row = json.loads(record.value)
    key = SEPARATOR.join((row["m_name"], row["resolution"], row["period_start"]))
    return key.encode(), {
        b"d:sum": _text(float(row["total"])),
        b"d:count": _text(row["readings"]),
        b"d:offset_sum": _text(row["offset_sum"]),
    }


ROW_MAKERS: dict[str, Callable[[kafka.Record], tuple[bytes, dict[bytes, bytes]]]] = {
    "raw": raw_row,
    "daily": daily_row,
    "late": late_row,
    "invalid": invalid_row,
    "rollup": rollup_row,
}


def source_topic(settings: Settings, kind: str) -> str:
    topics = settings.topics
    return {
        "raw": topics.output_raw,
        "daily": topics.output_aggr,
        "late": topics.input_late,
        "invalid": topics.input_invalid,
        "rollup": topics.output_rollup,
    }[kind]


# --------------------------------------------------------------------------------------
# Writers: Kafka -> HBase, in batches, offsets committed after the batch is stored
# --------------------------------------------------------------------------------------


@dataclass
class WriterStats:
    kind: str
    rows: int = 0
    batches: int = 0
    retries: int = 0
    last_error: str | None = None


@dataclass
class Writer:
    """Moves one topic into one table: consume a batch, put it, then commit its offsets.

    A crash between the put and the commit replays the batch on restart; the deterministic
    row keys make the replay overwrite the same rows (at-least-once delivery, exactly-once
    storage).
    """

    settings: Settings
    kind: str
    batch_size: int = 5000
    stats: WriterStats = field(init=False)

    def __post_init__(self) -> None:
        self.stats = WriterStats(self.kind)
        self.topic = source_topic(self.settings, self.kind)
        self.group = f"labkit-hbase-{self.settings.hbase_table_prefix}-{self.kind}"
        self.make_row = ROW_MAKERS[self.kind]
        self._connection: happybase.Connection | None = None

    def _table(self) -> happybase.Table:
        if self._connection is None:
            self._connection = connect(self.settings)
        return self._connection.table(table_name(self.settings, self.kind))

    def _disconnect(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            except Exception:  # closing a broken connection may fail too
                log.debug("closing a broken HBase connection failed", exc_info=True)
        self._connection = None

    def _store(self, rows: list[tuple[bytes, dict[bytes, bytes]]], stop: threading.Event) -> bool:
        """Put the rows, retrying with backoff while HBase is unreachable; False if stopped."""
        delay = 0.25
        while True:
            try:
                with self._table().batch(batch_size=self.batch_size) as batch:
                    for key, columns in rows:
                        batch.put(key, columns)
                return True
            except TRANSIENT as error:
                self.stats.retries += 1
                self.stats.last_error = f"{type(error).__name__}: {error}"
                log.warning("HBase write failed (%s); retrying in %.2f s", error, delay)
                self._disconnect()
                if stop.wait(delay):
                    return False
                delay = min(delay * 2, 8.0)

    def run(self, stop: threading.Event, drain: threading.Event | None = None) -> WriterStats:
        """Copy records until ``stop`` is set or, once ``drain`` is set, the topic is exhausted."""
        consumer = kafka.consumer(self.settings, self.group)
        try:
            partitions = consumer.list_topics(self.topic, timeout=10).topics[self.topic].partitions
            # Explicit assignment, from the group's committed offsets (or the beginning).
            start = kafka.starting_positions(consumer, self.topic, partitions, stop)
            if start is None:
                return self.stats
            consumer.assign(start)
            while not stop.is_set():
                messages = kafka.checked(consumer.consume(self.batch_size, timeout=0.5))
                if messages:
                    rows = [self.make_row(kafka.to_record(m)) for m in messages]
                    if not self._store(rows, stop) or not kafka.commit(consumer, stop):
                        break
                    self.stats.rows += len(rows)
                    self.stats.batches += 1
                elif (
                    drain is not None
                    and drain.is_set()
                    and _caught_up(consumer, self.topic, partitions)
                ):
                    break
        finally:
            consumer.close()
            self._disconnect()
        return self.stats


def _caught_up(consumer, topic: str, partitions) -> bool:
    """True when the consumer has read every message the topic holds right now (False while
    Kafka cannot tell)."""
    assigned = [TopicPartition(topic, p) for p in partitions]
    try:
        positions = consumer.position(assigned)
        committed = {tp.partition: tp.offset for tp in consumer.committed(assigned, timeout=10)}
        ends = [consumer.get_watermark_offsets(tp, timeout=10, cached=False) for tp in positions]
    except KafkaException as error:
        if kafka.is_passing(error.args[0]):
            return False
        raise
    for tp, (low, high) in zip(positions, ends, strict=True):
        # Before its first fetch a consumer has no position: fall back to the group's commit.
        at = tp.offset if tp.offset >= 0 else committed.get(tp.partition, -1)
        if max(at, low) < high:
            return False
    return True


@dataclass
class Writers:
    """The writers, one per table, each in its own thread.

    ``start()`` them; ``finish()`` lets them copy what the topics hold and then return;
    ``shutdown()`` stops them at once (what was not committed is copied again next time).
    """

    settings: Settings
    kinds: tuple[str, ...] = TABLE_KINDS
    writers: list[Writer] = field(init=False)
    stop: threading.Event = field(default_factory=threading.Event)
    draining: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _errors: list[BaseException] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.writers = [Writer(self.settings, kind) for kind in self.kinds]

    def start(self) -> Writers:
        ensure_tables(self.settings)
        for writer in self.writers:
            thread = threading.Thread(
                target=self._run, args=(writer,), name=f"hbase-writer-{writer.kind}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        return self

    def _run(self, writer: Writer) -> None:
        try:
            writer.run(self.stop, self.draining)
        except BaseException as error:  # noqa: BLE001 - handed to the caller by _join()
            self._errors.append(error)
            self.stop.set()

    def _join(self, on_progress: Callable[[int], None] | None = None) -> dict[str, WriterStats]:
        while any(thread.is_alive() for thread in self._threads):
            if on_progress:
                on_progress(self.rows)
            for thread in self._threads:
                thread.join(0.25)
        if on_progress:
            on_progress(self.rows)
        if self._errors:
            raise self._errors[0]
        return self.stats()

    def finish(self, on_progress: Callable[[int], None] | None = None) -> dict[str, WriterStats]:
        """Copy everything the topics hold now, then stop; ``on_progress(rows)`` meanwhile."""
        self.draining.set()
        return self._join(on_progress)

    def shutdown(self) -> dict[str, WriterStats]:
        self.stop.set()
        return self._join()

    def stats(self) -> dict[str, WriterStats]:
        return {writer.kind: writer.stats for writer in self.writers}

    @property
    def rows(self) -> int:
        return sum(writer.stats.rows for writer in self.writers)


def drain(settings: Settings, kinds: tuple[str, ...] = TABLE_KINDS) -> dict[str, WriterStats]:
    """Copy everything the output topics hold into HBase, then return."""
    return Writers(settings, kinds).start().finish()


# --------------------------------------------------------------------------------------
# Readers: range scans into pandas
# --------------------------------------------------------------------------------------


def _bound(moment: datetime | date | str | None) -> str:
    if moment is None:
        return ""
    if isinstance(moment, datetime):
        return moment.strftime("%Y-%m-%d %H:%M:%S")
    return str(moment)


def scan(
    settings: Settings,
    kind: str,
    metric: str,
    start: datetime | date | str | None = None,
    end: datetime | date | str | None = None,
    limit: int | None = None,
) -> list[tuple[bytes, dict[bytes, bytes]]]:
    """Rows of one metric with ``start <= time < end``, by one range scan.

    The metric must not contain the separator: it is the prefix of every key of the scan.
    """
    if SEPARATOR in metric or not metric:
        raise ValueError(f"Not a metric name: {metric!r}")
    prefix = f"{metric}{SEPARATOR}"
    row_start = (prefix + _bound(start)).encode()
    # "$" is the character after "#": prefix-with-"$" ends the metric's key range.
    row_stop = (prefix + _bound(end)).encode() if end is not None else f"{metric}$".encode()
    connection = connect(settings)
    try:
        table = connection.table(table_name(settings, kind))
        return list(table.scan(row_start=row_start, row_stop=row_stop, limit=limit))
    finally:
        connection.close()


def read_series(
    settings: Settings,
    metric: str,
    start: datetime | date | str | None = None,
    end: datetime | date | str | None = None,
    kind: str = "raw",
) -> pd.DataFrame:
    """A metric's values between ``start`` (included) and ``end`` (excluded), as a DataFrame.

    ``kind="raw"`` reads a sensor's readings (index: their time); ``kind="daily"`` reads a
    daily metric (index: the day; with the number of readings behind each value).
    """
    rows = scan(settings, kind, metric, start, end)
    records = []
    for key, columns in rows:
        moment = key.decode().split(SEPARATOR)[1]
        record = {"time": pd.Timestamp(moment), "value": float(columns[b"d:value"])}
        if b"d:readings" in columns:
            record["readings"] = int(columns[b"d:readings"])
        records.append(record)
    frame = pd.DataFrame.from_records(
        records, columns=["time", "value"] + (["readings"] if kind == "daily" else [])
    )
    return frame.set_index("time")


def count_rows(settings: Settings, kind: str) -> int:
    """How many rows a table holds (a full scan of keys only: for tests and summaries)."""
    connection = connect(settings)
    try:
        table = connection.table(table_name(settings, kind))
        return sum(1 for _ in table.scan(filter=b"KeyOnlyFilter()", batch_size=5000))
    finally:
        connection.close()


# --------------------------------------------------------------------------------------
# The original's layout, for comparison: one table per sensor, scanned whole
# --------------------------------------------------------------------------------------


def compare_layouts(settings: Settings, readings, day: date, repeats: int = 3) -> pd.DataFrame:
    """Time the lab's layout against the original's on the same readings (real HBase).

    The original kept one table per sensor and read a sensor by scanning its whole table;
    the lab keeps one raw table keyed ``<metric>#<time>`` and reads a time range by a range
    scan. Both layouts are written to scratch tables, queried ``repeats`` times (best time
    kept) and dropped. Returns one row per question and layout: rows read and seconds.
    """
    readings = list(readings)  # e.g. the valid on-time readings the raw table holds
    names = sorted({r.sensor for r in readings})
    prefix = f"{settings.hbase_table_prefix}_cmp"
    connection = connect(settings)
    one_table = f"{prefix}_raw"
    per_sensor = {name: f"{prefix}_orig_{name.lower()}" for name in names}
    try:
        for table in (one_table, *per_sensor.values()):
            if table.encode() in connection.tables():
                connection.delete_table(table, disable=True)
            connection.create_table(table, {FAMILY.decode(): {"max_versions": 1}})
        with connection.table(one_table).batch(batch_size=5000) as batch:
            for r in readings:
                batch.put(
                    f"{r.sensor}#{r.timestamp:%Y-%m-%d %H:%M:%S}".encode(),
                    {b"d:value": _text(r.value)},
                )
        for name, table in per_sensor.items():
            with connection.table(table).batch(batch_size=5000) as batch:
                for r in (r for r in readings if r.sensor == name):
                    batch.put(
                        f"{r.timestamp:%Y-%m-%d %H:%M:%S}".encode(), {b"d:value": _text(r.value)}
                    )
        start, end = f"{day:%Y-%m-%d}", f"{day + timedelta(days=1):%Y-%m-%d}"

        def lab_one(name: str) -> int:
            scan = connection.table(one_table).scan(
                row_start=f"{name}#{start}".encode(), row_stop=f"{name}#{end}".encode()
            )
            return sum(1 for _ in scan)

        def original_one(name: str) -> int:
            # As the original API did: read the whole table, keep the wanted rows afterwards.
            rows = list(connection.table(per_sensor[name]).scan())
            return len(rows)

        questions = {
            f"one sensor ({names[0]}), one day": lambda read: read(names[0]),
            "all sensors, one day": lambda read: sum(read(name) for name in names),
        }
        layouts = {
            "lab: one table, range scan": lab_one,
            "original: one table per sensor, full scan": original_one,
        }
        results = []
        for question, ask in questions.items():
            for layout, read in layouts.items():
                best, rows = float("inf"), 0
                for _ in range(repeats):
                    began = time.perf_counter()
                    rows = ask(read)
                    best = min(best, time.perf_counter() - began)
                results.append(
                    {"question": question, "layout": layout, "rows read": rows, "seconds": best}
                )
        return pd.DataFrame(results)
    finally:
        for table in (one_table, *per_sensor.values()):
            if table.encode() in connection.tables():
                connection.delete_table(table, disable=True)
        connection.close()
