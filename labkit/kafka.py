"""The broker layer: Kafka topics, a batched producer, consumers and statistics.

Everything goes through confluent-kafka (librdkafka), the way its own examples do it: the
producer queues messages and is polled for delivery reports now and then, never once per
message; consumers read in batches.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic

from labkit import logs
from labkit.config import Settings
from labkit.errors import LabkitError
from labkit.sensors import Reading

log = logging.getLogger(__name__)
T = TypeVar("T")

# The lab's topics keep every message: sensors stamp records with simulated time (often years
# ago), which time-based retention would delete at once.
TOPIC_CONFIG = {
    "retention.ms": "-1",
    # Simulated clocks may run ahead of the wall clock; the broker must not refuse those records.
    "message.timestamp.after.max.ms": str(2**63 - 1),
}


class DeliveryError(LabkitError, RuntimeError):
    """Some messages could not be delivered to Kafka."""


def client_config(settings: Settings, **config: Any) -> dict[str, Any]:
    """The configuration of every Kafka client of the lab: the broker, and librdkafka's log
    lines sent to the lab's log file (a client that waits for a broker or a coordinator says so
    on stderr otherwise, and a student reads it as an error)."""
    return {
        "bootstrap.servers": settings.kafka_bootstrap,
        "logger": logs.kafka_clients(settings),
        **config,
    }


def admin(settings: Settings) -> AdminClient:
    return AdminClient(client_config(settings))


def topic_partitions(settings: Settings, topic: str) -> int:
    """How many partitions the lab gives a topic: ``input`` has one (see docs/architecture.md)."""
    return 1 if topic == settings.topics.input else settings.kafka_partitions


def ensure_topics(
    settings: Settings, topics: list[str] | None = None, partitions: int | None = None
) -> list[str]:
    """Create the topics that do not exist yet (default: the lab's five); return those created."""
    wanted = settings.topics.all() if topics is None else topics
    client = admin(settings)
    existing = set(client.list_topics(timeout=10).topics)
    missing = [name for name in wanted if name not in existing]
    if not missing:
        return []
    new_topics = [
        NewTopic(
            name,
            num_partitions=partitions or topic_partitions(settings, name),
            replication_factor=1,
            config=TOPIC_CONFIG,
        )
        for name in missing
    ]
    created = []
    for name, future in client.create_topics(new_topics, operation_timeout=30).items():
        try:
            future.result()
            created.append(name)
        except KafkaException as error:
            # Another client may have created it between our listing and our request.
            if error.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
    _wait_for_leaders(client, missing)
    return created


def _wait_for_leaders(client: AdminClient, topics: list[str], timeout: float = 30.0) -> None:
    """Wait until every partition of the topics has a leader: until then the broker answers
    requests for their offsets with an error (a new topic is not usable the moment it exists)."""
    deadline = time.monotonic() + timeout
    for topic in topics:
        while True:
            metadata = client.list_topics(topic, timeout=10).topics.get(topic)
            partitions = metadata.partitions.values() if metadata is not None else []
            led = metadata is not None and metadata.error is None and partitions
            if led and all(p.leader >= 0 and p.error is None for p in partitions):
                break
            if time.monotonic() > deadline:
                raise DeliveryError(
                    f"Kafka gave topic {topic} no leader in {timeout:.0f} s: `labkit status` "
                    "shows whether the broker is healthy"
                )
            time.sleep(0.1)


def delete_topics(settings: Settings, topics: list[str]) -> None:
    """Delete topics (missing ones are ignored) and wait until the broker has forgotten them."""
    client = admin(settings)
    existing = set(client.list_topics(timeout=10).topics)
    doomed = [name for name in topics if name in existing]
    if not doomed:
        return
    for future in client.delete_topics(doomed, operation_timeout=30).values():
        try:
            future.result()
        except KafkaException as error:
            if error.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                raise
    deadline = time.monotonic() + 30
    while set(doomed) & set(client.list_topics(timeout=10).topics):
        if time.monotonic() > deadline:
            raise DeliveryError(f"Kafka did not finish deleting {doomed}")
        time.sleep(0.2)


def recreate_topics(
    settings: Settings, topics: list[str] | None = None, partitions: int | None = None
) -> None:
    """Empty topics by deleting and creating them again (a fresh run of the pipeline)."""
    wanted = settings.topics.all() if topics is None else topics
    delete_topics(settings, wanted)
    # Creation right after deletion can race with the broker's cleanup: retry briefly.
    deadline = time.monotonic() + 30
    while True:
        try:
            ensure_topics(settings, wanted, partitions)
            return
        except KafkaException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


# --------------------------------------------------------------------------------------
# Producing
# --------------------------------------------------------------------------------------


class BatchProducer:
    """A producer that batches: it polls for delivery reports every ``poll_every`` messages.

    ``delivered`` and ``failed`` count the delivery reports; ``flush()`` waits for all of
    them and raises ``DeliveryError`` if any message failed.
    """

    def __init__(self, settings: Settings, poll_every: int = 1000, **config: object) -> None:
        self.producer = Producer(
            client_config(
                settings,
                **{
                    "linger.ms": 20,
                    "batch.size": 1_000_000,
                    "compression.type": "lz4",
                    "enable.idempotence": True,  # retries never duplicate or reorder a message
                    **config,
                },
            )
        )
        self.poll_every = poll_every
        self.sent = 0
        self.delivered = 0
        self.failed = 0
        self.errors: list[str] = []

    def _on_delivery(self, error: KafkaError | None, message: object) -> None:
        if error is None:
            self.delivered += 1
        else:
            self.failed += 1
            if len(self.errors) < 10:
                self.errors.append(str(error))

    def send(
        self, topic: str, value: bytes | None, key: bytes | None = None, timestamp_ms: int = 0
    ) -> None:
        """Queue one message; ``timestamp_ms`` 0 lets Kafka stamp it with the current time."""
        while True:
            try:
                self.producer.produce(
                    topic,
                    value=value,
                    key=key,
                    timestamp=timestamp_ms,
                    on_delivery=self._on_delivery,
                )
                break
            except BufferError:
                # The local queue is full: let librdkafka send and report, then retry.
                self.producer.poll(0.1)
        self.sent += 1
        if self.sent % self.poll_every == 0:
            self.producer.poll(0)

    def flush(self, timeout: float = 60.0) -> None:
        remaining = self.producer.flush(timeout)
        if remaining:
            raise DeliveryError(f"{remaining} messages still undelivered after {timeout:.0f} s")
        if self.failed:
            raise DeliveryError(
                f"{self.failed} of {self.sent} messages failed; first errors: {self.errors}"
            )


def produce_readings(
    settings: Settings,
    readings: Iterable[Reading],
    topic: str | None = None,
    on_progress: Callable[[int, Reading], None] | None = None,
    every: int = 5000,
) -> int:
    """Send sensor readings (``labkit.sensors.Reading``) to ``input``; return how many.

    Each message is keyed by its sensor and stamped with its simulated send time.
    ``on_progress(sent, last_reading)`` is called every ``every`` messages and at the end.
    """
    producer = BatchProducer(settings)
    target = topic or settings.topics.input
    reading = None
    for reading in readings:
        producer.send(
            target, reading.message(), reading.sensor.encode(), timestamp_ms=reading.sent_at_ms
        )
        if on_progress and producer.sent % every == 0:
            on_progress(producer.sent, reading)
    producer.flush()
    if on_progress and reading is not None:
        on_progress(producer.sent, reading)
    return producer.sent


# --------------------------------------------------------------------------------------
# Consuming
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None


def to_record(message) -> Record:
    return Record(
        message.topic(),
        message.partition(),
        message.offset(),
        message.timestamp()[1],
        message.key(),
        message.value(),
    )


def consumer(settings: Settings, group: str | None = None, **config: object) -> Consumer:
    """A consumer that starts at the earliest offset and commits only when told to."""
    return Consumer(
        client_config(
            settings,
            **{
                "group.id": group or f"labkit-reader-{uuid.uuid4().hex[:8]}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                **config,
            },
        )
    )


# Errors a consumer reports while the cluster moves (a broker restarting, a group coordinator
# loading): librdkafka retries them by itself, so they are news, not failures.
PASSING_ERRORS = frozenset(
    {
        KafkaError._PARTITION_EOF,
        KafkaError._TRANSPORT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError._TIMED_OUT,
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError.NETWORK_EXCEPTION,
        KafkaError.NOT_COORDINATOR,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError._WAIT_COORD,  # a commit before the client has found the new coordinator
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.NOT_LEADER_FOR_PARTITION,
    }
)


def is_passing(error: KafkaError) -> bool:
    """True for an error that goes away by itself once the cluster has settled."""
    return not error.fatal() and (error.code() in PASSING_ERRORS or error.retriable())


def checked(messages: list) -> list:
    """The messages of a consume() call, raising on errors that do not pass by themselves."""
    for message in messages:
        error = message.error()
        if error is not None and not is_passing(error):
            raise KafkaException(error)
    return [m for m in messages if m.error() is None]


def settled(
    action: Callable[[], T], what: str, stop: threading.Event | None = None, timeout: float = 120.0
) -> T | None:
    """``action()``, retried with backoff while it fails on errors that pass by themselves (a
    broker restarting, the group's coordinator moving or loading); None when ``stop`` is set
    first."""
    stop = stop or threading.Event()
    deadline = time.monotonic() + timeout
    delay = 0.1
    while True:
        try:
            return action()
        except KafkaException as error:
            reason = error.args[0]  # a KafkaError, or a message of labkit's own
            passing = isinstance(reason, KafkaError) and is_passing(reason)
            if not passing or time.monotonic() > deadline:
                raise
            # It recovers by itself: news for the log file, not a warning on the console.
            log.info("Kafka: %s failed (%s); retrying in %.1f s", what, reason, delay)
        if stop.wait(delay):
            return None
        delay = min(delay * 2, 2.0)


def commit(consumer: Consumer, stop: threading.Event | None = None) -> bool:
    """Commit the consumer's position, waiting for Kafka to settle; False when ``stop`` is set
    first (what was read since the last commit is then read again next time)."""
    return settled(lambda: consumer.commit(asynchronous=False), "commit", stop) is not None


def starting_positions(
    consumer: Consumer, topic: str, partitions: Iterable[int], stop: threading.Event | None = None
) -> list[TopicPartition] | None:
    """Where a group's consumer starts in each partition: its committed offset, or the
    beginning. Fetched here, retried while Kafka settles: a fetch that librdkafka makes by itself
    on assign() is not retried when the group's coordinator is still loading."""
    wanted = [TopicPartition(topic, p) for p in partitions]
    found = settled(lambda: consumer.committed(wanted, timeout=10), "fetching offsets", stop)
    if found is None:
        return None
    return [TopicPartition(topic, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_BEGINNING)
            for tp in found]  # fmt: skip


def read(
    settings: Settings,
    topic: str,
    limit: int | None = None,
    idle: float = 2.0,
    group: str | None = None,
    timeout: float = 120.0,
) -> list[Record]:
    """Read ``topic`` from its beginning: stop after ``limit`` records, or once nothing new
    arrived for ``idle`` seconds, or after ``timeout`` seconds."""
    reader = consumer(settings, group)
    reader.subscribe([topic])
    records: list[Record] = []
    started = last_seen = time.monotonic()
    try:
        while limit is None or len(records) < limit:
            wanted = 10_000 if limit is None else min(10_000, limit - len(records))
            batch = checked(reader.consume(num_messages=wanted, timeout=0.5))
            now = time.monotonic()
            if batch:
                records.extend(to_record(m) for m in batch)
                last_seen = now
            elif now - last_seen > idle or now - started > timeout:
                break
    finally:
        reader.close()
    return records


def peek(settings: Settings, topic: str, last: int = 5) -> list[Record]:
    """The newest ``last`` records of each partition of ``topic``, without joining a group."""
    reader = consumer(settings)
    try:
        metadata = reader.list_topics(topic, timeout=10).topics[topic]
        assignment = []
        for partition in metadata.partitions:
            low, high = reader.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            assignment.append(TopicPartition(topic, partition, max(low, high - last)))
        reader.assign(assignment)
        expected = sum(
            min(last, high - low)
            for tp in assignment
            for low, high in [reader.get_watermark_offsets(tp, timeout=10)]
        )
        records: list[Record] = []
        deadline = time.monotonic() + 10
        while len(records) < expected and time.monotonic() < deadline:
            records.extend(to_record(m) for m in checked(reader.consume(expected, timeout=0.5)))
    finally:
        reader.close()
    return sorted(records, key=lambda r: (r.partition, r.offset))


class GroupReader:
    """A member of a consumer group that reads when asked and commits what it has read."""

    def __init__(self, settings: Settings, topic: str, group: str) -> None:
        self.consumer = consumer(settings, group)
        self.consumer.subscribe([topic])

    def read(self, limit: int, timeout: float = 0.2) -> list[Record]:
        messages = checked(self.consumer.consume(limit, timeout=timeout))
        if messages:
            commit(self.consumer)
        return [to_record(m) for m in messages]

    def close(self) -> None:
        self.consumer.close()


# --------------------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PartitionOffsets:
    topic: str
    partition: int
    low: int  # the oldest offset still stored
    high: int  # the offset the next message will get
    committed: int | None = None  # the group's committed offset, if a group was asked
    lag: int | None = None  # high - committed: what the group has not processed yet

    @property
    def messages(self) -> int:
        return self.high - self.low


def offsets(settings: Settings, topic: str, group: str | None = None) -> list[PartitionOffsets]:
    """Per partition: the stored offset range and, for a consumer group, its commit and lag."""
    reader = consumer(settings, group or f"labkit-stats-{uuid.uuid4().hex[:8]}")
    try:
        metadata = reader.list_topics(topic, timeout=10).topics.get(topic)
        if metadata is None or metadata.error is not None:
            raise KafkaException(f"Unknown topic {topic!r}")
        partitions = [TopicPartition(topic, p) for p in sorted(metadata.partitions)]
        committed = {}
        if group is not None:
            committed = {tp.partition: tp.offset for tp in reader.committed(partitions, timeout=10)}
        result = []
        for tp in partitions:
            low, high = reader.get_watermark_offsets(tp, timeout=10)
            if group is None:
                result.append(PartitionOffsets(topic, tp.partition, low, high))
                continue
            done = committed.get(tp.partition)
            done = done if done is not None and done >= 0 else None  # negative: nothing committed
            lag = high - (low if done is None else done)
            result.append(PartitionOffsets(topic, tp.partition, low, high, done, lag))
        return result
    finally:
        reader.close()


def message_count(settings: Settings, topic: str) -> int:
    """How many messages the topic holds."""
    return sum(p.messages for p in offsets(settings, topic))


def group_lag(settings: Settings, group: str, topic: str) -> int:
    """How many messages of ``topic`` the consumer group has not committed yet."""
    return sum(p.lag or 0 for p in offsets(settings, topic, group))
