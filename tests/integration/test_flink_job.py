"""Flink: a PyFlink SQL job on the local mini-cluster, Kafka in and Kafka out."""

import json

from confluent_kafka import Consumer, Producer

from labkit import flink, kafka


def test_sql_job_reads_json_from_kafka_and_writes_a_result(stack, unique):
    source, sink = f"test_flink_in_{unique}", f"test_flink_out_{unique}"
    kafka.ensure_topics(stack, [source, sink], partitions=1)
    readings = [
        {
            "m_name": "TH1" if n % 2 else "HVAC1",
            "m_value": float(n),
            "m_timestamp": f"2024-01-01 00:{n:02d}:00",
        }
        for n in range(40)
    ]
    try:
        producer = Producer({"bootstrap.servers": stack.kafka_bootstrap})
        for reading in readings:
            producer.produce(source, value=json.dumps(reading).encode())
        assert producer.flush(30) == 0

        env = flink.table_environment(stack)
        env.execute_sql(
            f"""
            CREATE TABLE readings (m_name STRING, m_value DOUBLE, m_timestamp STRING) WITH (
              'connector' = 'kafka', 'topic' = '{source}',
              'properties.bootstrap.servers' = '{stack.kafka_bootstrap}',
              'scan.startup.mode' = 'earliest-offset', 'scan.bounded.mode' = 'latest-offset',
              'format' = 'json')
            """
        )
        env.execute_sql(
            f"""
            CREATE TABLE doubled (m_name STRING, m_value DOUBLE, ts TIMESTAMP(3)) WITH (
              'connector' = 'kafka', 'topic' = '{sink}',
              'properties.bootstrap.servers' = '{stack.kafka_bootstrap}', 'format' = 'json')
            """
        )
        env.execute_sql(
            "INSERT INTO doubled SELECT m_name, 2 * m_value, TO_TIMESTAMP(m_timestamp) "
            "FROM readings WHERE m_name = 'TH1'"
        ).wait()

        consumer = Consumer(
            {
                "bootstrap.servers": stack.kafka_bootstrap,
                "group.id": f"test_{unique}",
                "auto.offset.reset": "earliest",
            }
        )
        consumer.subscribe([sink])
        results = []
        for _ in range(30):
            results += [json.loads(m.value()) for m in consumer.consume(100, timeout=1.0)]
            if len(results) >= 20:
                break
        consumer.close()
        expected = [
            {"m_name": "TH1", "m_value": 2 * r["m_value"], "ts": r["m_timestamp"]}
            for r in readings
            if r["m_name"] == "TH1"
        ]
        assert results == expected
    finally:
        kafka.delete_topics(stack, [source, sink])
