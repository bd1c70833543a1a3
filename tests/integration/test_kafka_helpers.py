"""labkit.kafka against the real broker: batched producer, readers, offsets and lag."""

import pytest
from confluent_kafka import TopicPartition

from labkit import kafka, sensors


@pytest.fixture
def topic(stack, unique):
    name = f"test_helpers_{unique}"
    kafka.ensure_topics(stack, [name], partitions=2)
    yield name
    kafka.delete_topics(stack, [name])


def test_produce_readings_keys_and_stamps_each_message(stack, topic):
    readings = list(sensors.simulate(sensors.Scenario(days=1)))
    seen = []
    sent = kafka.produce_readings(
        stack, readings, topic, on_progress=lambda n, r: seen.append(n), every=100
    )
    assert sent == len(readings) == kafka.message_count(stack, topic)
    assert seen[-1] == sent and seen[:-1] == list(range(100, sent, 100))
    records = kafka.read(stack, topic, idle=1)
    assert len(records) == sent
    by_offset = {(r.partition, r.offset): r for r in records}
    assert len(by_offset) == sent
    first = next(r for r in records if r.value == readings[0].message())
    assert first.key == readings[0].sensor.encode()
    assert first.timestamp_ms == readings[0].sent_at_ms
    # One sensor, one key, one partition: each sensor's messages keep their order.
    for sensor in ("TH1", "W1"):
        mine = [r for r in records if r.key == sensor.encode()]
        assert len({r.partition for r in mine}) == 1
        assert [r.offset for r in mine] == sorted(r.offset for r in mine)


def test_read_stops_at_a_limit_and_peek_returns_the_newest(stack, topic):
    producer = kafka.BatchProducer(stack)
    for number in range(50):
        producer.send(topic, str(number).encode(), key=b"same")  # one key: one partition
    producer.flush()
    assert producer.delivered == 50 and producer.failed == 0
    assert len(kafka.read(stack, topic, limit=10)) == 10
    newest = kafka.peek(stack, topic, last=3)
    assert [r.value for r in newest] == [b"47", b"48", b"49"]


def test_offsets_and_the_lag_of_a_consumer_group(stack, topic):
    producer = kafka.BatchProducer(stack)
    for number in range(30):
        producer.send(topic, b"x", key=str(number).encode())
    producer.flush()
    group = f"{topic}-group"
    assert kafka.group_lag(stack, group, topic) == 30  # nothing committed yet
    reader = kafka.consumer(stack, group)
    partitions = kafka.offsets(stack, topic)
    reader.assign([TopicPartition(topic, p.partition, p.low) for p in partitions])
    consumed = 0
    while consumed < 12:
        consumed += len(kafka.checked(reader.consume(12 - consumed, timeout=1)))
    reader.commit(asynchronous=False)
    reader.close()
    stats = kafka.offsets(stack, topic, group)
    assert sum(p.messages for p in stats) == 30
    assert sum(p.lag for p in stats) == 30 - 12 == kafka.group_lag(stack, group, topic)
    assert all(p.committed is None or p.low <= p.committed <= p.high for p in stats)


def test_delivery_failures_are_surfaced(stack):
    producer = kafka.BatchProducer(stack, **{"message.timeout.ms": 2000})
    producer.send("no_such_topic_for_labkit", b"lost")
    with pytest.raises(kafka.DeliveryError):
        producer.flush(10)
    assert producer.failed == 1


def test_a_group_reader_commits_what_it_reads(stack, topic):
    producer = kafka.BatchProducer(stack)
    for number in range(25):
        producer.send(topic, b"x", key=str(number).encode())
    producer.flush()
    reader = kafka.GroupReader(stack, topic, f"{topic}-reader")
    got = []
    for _ in range(50):
        got += reader.read(10, timeout=0.5)
        if len(got) >= 10:
            break
    assert 10 <= len(got) <= 25
    assert kafka.group_lag(stack, f"{topic}-reader", topic) == 25 - len(got)
    reader.close()
