"""Kafka: the real broker, through confluent-kafka."""

from confluent_kafka import Consumer, Producer

from labkit import kafka

MESSAGES = 10_000


def test_produce_and_consume_exactly_ten_thousand_messages(stack, unique):
    topic = f"test_roundtrip_{unique}"
    assert kafka.ensure_topics(stack, [topic], partitions=3) == [topic]
    try:
        producer = Producer({"bootstrap.servers": stack.kafka_bootstrap, "linger.ms": 5})
        delivered = []

        def on_delivery(error, message):
            assert error is None, error
            delivered.append(message.offset())

        for number in range(MESSAGES):
            producer.produce(
                topic, key=f"k{number % 7}", value=str(number).encode(), on_delivery=on_delivery
            )
            producer.poll(0)
        assert producer.flush(30) == 0
        assert len(delivered) == MESSAGES

        consumer = Consumer(
            {
                "bootstrap.servers": stack.kafka_bootstrap,
                "group.id": f"test_{unique}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
            }
        )
        consumer.subscribe([topic])
        received = []
        idle_polls = 0
        while len(received) < MESSAGES and idle_polls < 20:
            batch = consumer.consume(num_messages=1000, timeout=1.0)
            idle_polls = 0 if batch else idle_polls + 1
            for message in batch:
                assert message.error() is None, message.error()
                received.append(int(message.value()))
        # Read a little longer: nothing beyond the 10,000 may arrive.
        received.extend(int(m.value()) for m in consumer.consume(num_messages=10, timeout=2.0))
        consumer.close()
        assert len(received) == MESSAGES
        assert sorted(received) == list(range(MESSAGES))
    finally:
        kafka.delete_topics(stack, [topic])


def test_the_lab_topics_exist_input_with_one_partition(stack):
    topics = kafka.admin(stack).list_topics(timeout=10).topics
    for name in stack.topics.all():
        assert name in topics
        # `input` keeps one total order (see docs/architecture.md); the outputs are spread.
        expected = 1 if name == stack.topics.input else stack.kafka_partitions
        assert len(topics[name].partitions) == expected, name


def test_ensure_topics_is_idempotent(stack):
    assert kafka.ensure_topics(stack) == []
