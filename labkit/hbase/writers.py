"""The writers: Kafka -> HBase, in batches, offsets committed after the batch is stored.

One writer per table, each in its own thread, each its own consumer group. A crash between
the put and the commit replays the batch on restart; the deterministic row keys of
``labkit.hbase.layout`` make the replay overwrite the same rows (at-least-once delivery,
exactly-once storage).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import happybase
from confluent_kafka import KafkaException, TopicPartition

from labkit import kafka
from labkit.config import Settings
from labkit.hbase import layout
from labkit.hbase.layout import Row, TableKind

log = logging.getLogger(__name__)

# Every number as a float, as the job reads m_value (a DOUBLE): "-0" is then -0.0, not 0.
_JSON = json.JSONDecoder(parse_int=float)


def _value(record: kafka.Record) -> bytes:
    if record.value is None:  # Flink never writes tombstones: someone else did
        raise ValueError(f"A tombstone in {record.topic} at offset {record.offset}")
    return record.value


# --------------------------------------------------------------------------------------
# From Kafka records to HBase rows
# --------------------------------------------------------------------------------------


def raw_row(record: kafka.Record) -> Row:
    """``output_raw`` carries the sensor's own message, unchanged."""
    # Read as leniently as the job did: white space before the object and text after it pass.
    reading, _end = _JSON.raw_decode(_value(record).decode().lstrip())
    return layout.raw_row(reading["m_name"], reading["m_timestamp"], float(reading["m_value"]))


def daily_row(record: kafka.Record) -> Row:
    row = json.loads(_value(record))
    return layout.daily_row(
        row["metric"], row["day"], row["kind"], float(row["value"]), row["readings"]
    )


def late_row(record: kafka.Record) -> Row:
    row = json.loads(_value(record))
    return layout.late_row(
        row["m_name"],
        row["m_timestamp"],
        layout.origin(row["kafka_partition"], row["kafka_offset"]),
        float(row["m_value"]),
        row["sent_at"],
        row["watermark_at"],
        row["behind_watermark_s"],
        row["delay_s"],
    )


def invalid_row(record: kafka.Record) -> Row:
    row = json.loads(_value(record))
    return layout.invalid_row(
        row["sent_at"],
        layout.origin(row["kafka_partition"], row["kafka_offset"]),
        row["reason"],
        row["message"],
        row["message_chars"],
    )


def rollup_row(record: kafka.Record) -> Row:
    """A sensor's sum, count and summed time offsets (seconds) over one period."""
    row = json.loads(_value(record))
    return layout.rollup_row(
        row["m_name"],
        row["resolution"],
        row["period_start"],
        float(row["total"]),
        row["readings"],
        row["offset_sum"],
    )


ROW_MAKERS: dict[TableKind, Callable[[kafka.Record], Row]] = {
    TableKind.RAW: raw_row,
    TableKind.DAILY: daily_row,
    TableKind.LATE: late_row,
    TableKind.INVALID: invalid_row,
    TableKind.ROLLUP: rollup_row,
}


def source_topic(settings: Settings, kind: TableKind) -> str:
    """The topic a table is filled from."""
    topics = settings.topics
    return {
        TableKind.RAW: topics.output_raw,
        TableKind.DAILY: topics.output_aggr,
        TableKind.LATE: topics.input_late,
        TableKind.INVALID: topics.input_invalid,
        TableKind.ROLLUP: topics.output_rollup,
    }[kind]


# --------------------------------------------------------------------------------------
# Writers
# --------------------------------------------------------------------------------------


@dataclass
class WriterStats:
    kind: TableKind
    rows: int = 0
    batches: int = 0
    retries: int = 0
    last_error: str | None = None


@dataclass
class Writer:
    """Moves one topic into one table: consume a batch, put it, then commit its offsets."""

    settings: Settings
    kind: TableKind
    batch_size: int = 5000
    stats: WriterStats = field(init=False)

    def __post_init__(self) -> None:
        self.kind = TableKind(self.kind)
        self.stats = WriterStats(self.kind)
        self.topic = source_topic(self.settings, self.kind)
        self.group = f"labkit-hbase-{self.settings.hbase_table_prefix}-{self.kind}"
        self.make_row = ROW_MAKERS[self.kind]
        self._connection: happybase.Connection | None = None

    def _table(self) -> happybase.Table:
        if self._connection is None:
            self._connection = layout.connect(self.settings)
        return self._connection.table(layout.table_name(self.settings, self.kind))

    def _disconnect(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            except Exception:  # closing a broken connection may fail too
                log.debug("closing a broken HBase connection failed", exc_info=True)
        self._connection = None

    def _store(self, rows: list[Row], stop: threading.Event) -> bool:
        """Put the rows, retrying with backoff while HBase is unreachable; False if stopped."""
        delay = 0.25
        while True:
            try:
                with self._table().batch(batch_size=self.batch_size) as batch:
                    for row_key, columns in rows:
                        batch.put(row_key, columns)
                return True
            except layout.TRANSIENT as error:
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
    kinds: tuple[TableKind, ...] = tuple(TableKind)
    writers: list[Writer] = field(init=False)
    stop: threading.Event = field(default_factory=threading.Event)
    draining: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _errors: list[BaseException] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.writers = [Writer(self.settings, kind) for kind in self.kinds]

    def start(self) -> Writers:
        layout.ensure_tables(self.settings)
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


def drain(
    settings: Settings, kinds: tuple[TableKind, ...] = tuple(TableKind)
) -> dict[str, WriterStats]:
    """Copy everything the output topics hold into HBase, then return."""
    return Writers(settings, kinds).start().finish()
