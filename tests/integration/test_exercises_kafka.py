"""Notebook 02's Build-it checks against the real broker: the reference solutions pass, the
untouched skeletons are "not yet", and deliberately wrong producers, consumers and lags are
rejected."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from labkit.exercises import Status
from labkit.exercises import kafka as checks
from notebooks.solutions import kafka as solution

# ----------------------------------------------------------------------------- producer


def send_skeleton(settings, topic, readings):
    """The notebook's skeleton: the student has not written it yet."""
    ...


def send_without_key(settings, topic, readings):
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    confirmed = {}

    def on_delivery(error, message):
        confirmed[message.partition()] = confirmed.get(message.partition(), 0) + 1

    for reading in readings:
        producer.produce(
            topic, reading.message(), timestamp=reading.sent_at_ms, on_delivery=on_delivery
        )
    producer.flush()
    return confirmed


def send_without_flush(settings, topic, readings):
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    confirmed = {}

    def on_delivery(error, message):
        confirmed[message.partition()] = confirmed.get(message.partition(), 0) + 1

    for reading in readings:
        producer.produce(
            topic,
            reading.message(),
            reading.sensor,
            timestamp=reading.sent_at_ms,
            on_delivery=on_delivery,
        )
    return confirmed


def send_stamped_when_measured(settings, topic, readings):
    """Uses the measurement time as the record's timestamp, not the time it was sent."""
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    confirmed = {}

    def on_delivery(error, message):
        confirmed[message.partition()] = confirmed.get(message.partition(), 0) + 1

    for reading in readings:
        measured_ms = int(reading.timestamp.timestamp() * 1000)
        producer.produce(
            topic, reading.message(), reading.sensor, timestamp=measured_ms, on_delivery=on_delivery
        )
    producer.flush()
    return confirmed


def send_counting_without_reports(settings, topic, readings):
    """Sends right, but returns a total it counted itself instead of the delivery reports."""
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    readings = list(readings)
    for reading in readings:
        producer.produce(topic, reading.message(), reading.sensor, timestamp=reading.sent_at_ms)
    producer.flush()
    return {0: len(readings)}


def test_the_reference_producer_passes(stack):
    verdict = checks.producer(solution.send_readings, stack)
    assert verdict.status is Status.PASSED, verdict.text()


def test_the_untouched_producer_is_not_yet(stack):
    assert checks.producer(send_skeleton, stack).status is Status.NOT_YET


@pytest.mark.parametrize(
    ("wrong", "complaint"),
    [
        (send_without_key, "not keyed by their sensor's name"),
        (send_without_flush, "of the 685 messages"),
        (send_stamped_when_measured, "carry another timestamp"),
        (send_counting_without_reports, "your function returned {0: 685}"),
    ],
)
def test_a_wrong_producer_is_told_what_is_off(stack, wrong, complaint):
    verdict = checks.producer(wrong, stack)
    assert verdict.status is Status.WRONG
    assert any(complaint in line for line in verdict.wrong), verdict.text()


def test_the_checks_send_a_day_that_has_late_readings():
    sent = checks.readings()
    assert len(sent) == 685
    assert any(r.sent_at - r.timestamp >= checks.sensors.TICK for r in sent)


# ----------------------------------------------------------------------------- consumer


def read_skeleton(settings, topic, group, limit, timeout=30.0): ...


def read_without_commit(settings, topic, group, limit, timeout=30.0):
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    messages = []
    deadline = time.monotonic() + timeout
    while len(messages) < limit and time.monotonic() < deadline:
        messages += consumer.consume(limit - len(messages), timeout=1.0)
    consumer.close()
    return messages


def read_from_the_end(settings, topic, group, limit, timeout=3.0):
    """A new group starting at the latest offset: it never sees what is already there."""
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": group})
    consumer.subscribe([topic])
    messages = []
    deadline = time.monotonic() + timeout
    while len(messages) < limit and time.monotonic() < deadline:
        messages += consumer.consume(limit - len(messages), timeout=1.0)
    consumer.close()
    return messages


def test_the_reference_consumer_passes(stack):
    verdict = checks.consumer(solution.read_readings, stack)
    assert verdict.status is Status.PASSED, verdict.text()


def test_the_untouched_consumer_is_not_yet(stack):
    assert checks.consumer(read_skeleton, stack).status is Status.NOT_YET


@pytest.mark.parametrize(
    ("wrong", "complaint"),
    [
        (read_without_commit, "committed offsets none"),
        (read_from_the_end, "the first call returned 0 messages"),
    ],
)
def test_a_wrong_consumer_is_told_what_is_off(stack, wrong, complaint):
    verdict = checks.consumer(wrong, stack)
    assert verdict.status is Status.WRONG
    assert any(complaint in line for line in verdict.wrong), verdict.text()


# ----------------------------------------------------------------------------- lag


def lag_skeleton(settings, topic, group): ...


def _committed_and_watermarks(settings, topic, group):
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": group})
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    wanted = [TopicPartition(topic, p) for p in partitions]
    found = [
        (tp, *consumer.get_watermark_offsets(tp, timeout=10))
        for tp in consumer.committed(wanted, timeout=10)
    ]
    consumer.close()
    return found


def lag_from_the_first_offset(settings, topic, group):
    """Counts what the partition holds, not what the group has left to read."""
    return {
        tp.partition: high - low
        for tp, low, high in _committed_and_watermarks(settings, topic, group)
    }


def lag_from_the_raw_committed_offset(settings, topic, group):
    """Forgets that a partition without a commit reports a negative offset."""
    return {
        tp.partition: high - tp.offset
        for tp, _, high in _committed_and_watermarks(settings, topic, group)
    }


def lag_in_total(settings, topic, group):
    """The group's whole lag, not per partition."""
    return sum(solution.lag_per_partition(settings, topic, group).values())


def test_the_reference_lag_passes(stack):
    verdict = checks.lag(solution.lag_per_partition, stack)
    assert verdict.status is Status.PASSED, verdict.text()


def test_the_untouched_lag_is_not_yet(stack):
    assert checks.lag(lag_skeleton, stack).status is Status.NOT_YET


@pytest.mark.parametrize(
    ("wrong", "complaint"),
    [
        (lag_from_the_first_offset, "for a group that has read half of partition 0"),
        (lag_from_the_raw_committed_offset, "for a group that has committed nothing"),
        (lag_in_total, "your function returned 685"),
    ],
)
def test_a_wrong_lag_is_told_what_is_off(stack, wrong, complaint):
    verdict = checks.lag(wrong, stack)
    assert verdict.status is Status.WRONG
    assert any(complaint in line for line in verdict.wrong), verdict.text()


def test_a_function_that_never_returns_gets_an_answer_not_a_hang():
    def stuck(*args):
        time.sleep(5)

    with pytest.raises(TimeoutError):
        checks.bounded(stuck, seconds=0.2)()
