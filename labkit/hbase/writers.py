"""The writers: Kafka -> HBase, in batches, offsets committed after the batch is stored.

One writer per table, each in its own thread with its own consumer group and Thrift
connection. A crash between the put and the commit replays the batch on restart; the
deterministic row keys of ``labkit.hbase.layout`` make the replay overwrite the same rows
(at-least-once delivery, exactly-once storage).
"""

from __future__ import annotations

import gc
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import happybase
import orjson
from confluent_kafka import Message

from labkit import kafka
from labkit.config import Settings
from labkit.errors import LabkitError
from labkit.hbase import layout
from labkit.hbase.layout import Row, TableKind

log = logging.getLogger(__name__)

_JSON = json.JSONDecoder()
# Every number as a float, as the job reads m_value (a DOUBLE): "-0" is then -0.0, not 0.
_JSON_FLOATS = json.JSONDecoder(parse_int=float)
# The writers allocate a few short-lived container objects per row (about 20,000 per batch):
# at CPython's default threshold (700) the cyclic garbage collector ran every 150 rows and took
# 45 % of the writers' CPU (docs/benchmarks.md). Collections after 10,000 allocations, for the
# rest of the process, cost a few more kilobytes of garbage waiting to be collected.
_GC_THRESHOLD = 10_000


class WriterError(LabkitError, RuntimeError):
    """A writer cannot copy its topic: the topic is missing, or holds a message of a shape the
    Flink job never writes."""


def _object(value: bytes | None) -> dict:
    """A message's JSON object. orjson parses the common case several times faster than
    ``json``; what it refuses and the job accepts (white space before the object, text after
    it, NaN) goes through ``json``, read as leniently as the job reads it."""
    if value is None:  # Flink never writes tombstones: someone else did
        raise ValueError("a tombstone (a message without a value)")
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return _JSON.raw_decode(value.decode().lstrip())[0]


# --------------------------------------------------------------------------------------
# From Kafka messages (their values) to HBase rows
# --------------------------------------------------------------------------------------


def raw_row(value: bytes | None) -> Row:
    """``output_raw`` carries the sensor's own message, unchanged."""
    reading = _object(value)
    number = reading["m_value"]
    # The job reads m_value as a DOUBLE. Written as an integer, a zero may be "-0", whose sign
    # the integer 0 has lost: such a message is read again, every number as a float (rare: the
    # sensors write decimals).
    if number == 0 and isinstance(number, int) and value:
        number = _JSON_FLOATS.raw_decode(value.decode().lstrip())[0]["m_value"]
    return layout.raw_row(reading["m_name"], reading["m_timestamp"], float(number))


def daily_row(value: bytes | None) -> Row:
    row = _object(value)
    return layout.daily_row(
        row["metric"], row["day"], row["kind"], float(row["value"]), row["readings"]
    )


def late_row(value: bytes | None) -> Row:
    row = _object(value)
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


def invalid_row(value: bytes | None) -> Row:
    row = _object(value)
    return layout.invalid_row(
        row["sent_at"],
        layout.origin(row["kafka_partition"], row["kafka_offset"]),
        row["reason"],
        row["message"],
        row["message_chars"],
    )


def rollup_row(value: bytes | None) -> Row:
    """A sensor's sum, count and summed time offsets (seconds) over one period."""
    row = _object(value)
    return layout.rollup_row(
        row["m_name"],
        row["resolution"],
        row["period_start"],
        float(row["total"]),
        row["readings"],
        row["offset_sum"],
    )


ROW_MAKERS: dict[TableKind, Callable[[bytes | None], Row]] = {
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
    batch_size: int = 5000  # messages per batch, stored with one Thrift call
    stats: WriterStats = field(init=False)

    def __post_init__(self) -> None:
        self.kind = TableKind(self.kind)
        self.stats = WriterStats(self.kind)
        self.topic = source_topic(self.settings, self.kind)
        self.group = f"labkit-hbase-{self.settings.hbase_table_prefix}-{self.kind}"
        self.table = layout.table_name(self.settings, self.kind)
        self.make_row = ROW_MAKERS[self.kind]
        self._connection: happybase.Connection | None = None

    def run(self, stop: threading.Event, drain: threading.Event | None = None) -> WriterStats:
        """Copy records until ``stop`` is set or, once ``drain`` is set, until every partition
        holds nothing more than it held then."""
        consumer = kafka.consumer(self.settings, self.group)
        try:
            partitions = self.partitions(stop)
            # Explicit assignment, from the group's committed offsets (or the beginning).
            start = kafka.starting_positions(consumer, self.topic, partitions, stop)
            if start is None:
                return self.stats
            consumer.assign(start)
            # The next offset to copy in each partition (negative: from the beginning).
            positions = {tp.partition: tp.offset for tp in start}
            ends: dict[int, tuple[int, int]] | None = None
            while not stop.is_set():
                messages = kafka.checked(consumer.consume(self.batch_size, timeout=0.5))
                if messages:
                    rows = self.rows(messages)
                    if not self._store(rows, stop) or not kafka.commit(consumer, stop):
                        break
                    self.stats.rows += len(rows)
                    self.stats.batches += 1
                    for message in messages:
                        positions[message.partition()] = message.offset() + 1
                if drain is not None and drain.is_set():
                    # What the partitions hold when the drain begins, fetched once.
                    ends = ends or self._ends(stop)
                    if ends is None or all(
                        max(positions[p], low) >= high for p, (low, high) in ends.items()
                    ):
                        break
        finally:
            consumer.close()
            self._disconnect()
        return self.stats

    def partitions(self, stop: threading.Event | None = None) -> list[int]:
        """The topic's partitions, asked again while Kafka settles."""
        admin = kafka.admin(self.settings)
        found = kafka.settled(
            lambda: admin.list_topics(self.topic, timeout=10).topics[self.topic],
            "listing a topic's partitions",
            stop,
        )
        if found is None:
            return []
        if found.error is not None:
            raise WriterError(
                f"Kafka has no topic {self.topic} ({found.error.str()}): `labkit up` creates the "
                "lab's topics."
            )
        return sorted(found.partitions)

    def rows(self, messages: list[Message]) -> list[Row]:
        try:
            return [self.make_row(message.value()) for message in messages]
        except (ValueError, TypeError, KeyError):
            for message in messages:  # which one: worth a second pass, only when one fails
                try:
                    self.make_row(message.value())
                except (ValueError, TypeError, KeyError) as error:
                    raise WriterError(
                        f"{self.topic} holds a message the {self.kind} writer cannot store "
                        f"(partition {message.partition()}, offset {message.offset()}): "
                        f"{error!r}. Only the lab's Flink job writes to this topic: something "
                        "else did. `labkit run` starts again from empty topics."
                    ) from error
            raise

    def _ends(self, stop: threading.Event) -> dict[int, tuple[int, int]] | None:
        """Each partition's (low, high) offsets, retried while Kafka settles. Asked through a
        client of its own: after a broker restart, the writer's consumer could go on answering
        "unknown partition" for minutes."""
        found = kafka.settled(
            lambda: kafka.offsets(self.settings, self.topic), "fetching the ends of the topic", stop
        )
        return None if found is None else {p.partition: (p.low, p.high) for p in found}

    def _store(self, rows: list[Row], stop: threading.Event) -> bool:
        """Put the rows, retrying with backoff while HBase is unreachable; False if stopped."""
        delay = 0.25
        while True:
            try:
                if self._connection is None:
                    self._connection = layout.connect(self.settings)
                layout.put_rows(self._connection, self.table, rows)
                return True
            except layout.TRANSIENT as error:
                self.stats.retries += 1
                self.stats.last_error = f"{type(error).__name__}: {error}"
                log.warning("HBase write failed (%s); retrying in %.2f s", error, delay)
                self._disconnect()
                if stop.wait(delay):
                    return False
                delay = min(delay * 2, 8.0)

    def _disconnect(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            except Exception:  # closing a broken connection may fail too
                log.debug("closing a broken HBase connection failed", exc_info=True)
        self._connection = None


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
        young, *older = gc.get_threshold()
        if 0 < young < _GC_THRESHOLD:  # 0: collection switched off, left so
            gc.set_threshold(_GC_THRESHOLD, *older)
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
