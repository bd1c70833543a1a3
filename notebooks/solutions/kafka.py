"""Notebook 02: a keyed producer with delivery reports, a consumer in a group, its lag."""

import time
from collections import Counter
from collections.abc import Iterable

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from labkit import kafka
from labkit.config import Settings
from labkit.sensors import Reading


def input_messages(settings: Settings) -> int:
    """Each partition holds next offset - first offset messages."""
    return sum(p.high - p.low for p in kafka.offsets(settings, settings.topics.input))


def send_readings(settings: Settings, topic: str, readings: Iterable[Reading]) -> dict[int, int]:
    """Send each reading to ``topic``: its JSON (``reading.message()``) as the value, keyed by
    its sensor's name, stamped with the simulated time it was sent (``reading.sent_at_ms``).
    Return how many messages the broker confirmed in each partition, counted from the
    delivery reports; raise if any message failed."""
    confirmed: Counter[int] = Counter()
    failures: list[KafkaError] = []

    def on_delivery(error: KafkaError | None, message: Message) -> None:
        if error is not None:
            failures.append(error)
        elif (partition := message.partition()) is not None:  # always, once delivered
            confirmed[partition] += 1

    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    for reading in readings:
        producer.produce(
            topic,
            value=reading.message(),
            key=reading.sensor.encode(),
            timestamp=reading.sent_at_ms,
            on_delivery=on_delivery,
        )
        producer.poll(0)  # serve the delivery reports that have come back so far
    producer.flush()  # wait for the rest
    if failures:
        raise KafkaException(failures[0])
    return dict(confirmed)


def read_readings(
    settings: Settings, topic: str, group: str, limit: int, timeout: float = 30.0
) -> list[Message]:
    """Read up to ``limit`` messages of ``topic`` as a member of consumer group ``group``:
    where the group left off, or from the beginning when it has committed nothing. Commit
    what was read, leave the group and return the messages; give up after ``timeout`` s."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    messages: list[Message] = []
    deadline = time.monotonic() + timeout
    try:
        while len(messages) < limit and time.monotonic() < deadline:
            for message in consumer.consume(limit - len(messages), timeout=1.0):
                if message.error() is not None:
                    raise KafkaException(message.error())
                messages.append(message)
        if messages:
            consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    return messages


def lag_per_partition(settings: Settings, topic: str, group: str) -> dict[int, int]:
    """For each partition of ``topic``: how many messages consumer group ``group`` has not
    committed yet, from the broker's offsets (all of them where it has committed nothing)."""
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": group})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        wanted = [TopicPartition(topic, partition) for partition in partitions]
        lag = {}
        for committed in consumer.committed(wanted, timeout=10):
            low, high = consumer.get_watermark_offsets(committed, timeout=10)
            # A negative offset means "nothing committed": the group would start at the first.
            start = committed.offset if committed.offset >= 0 else low
            lag[committed.partition] = high - start
        return lag
    finally:
        consumer.close()
