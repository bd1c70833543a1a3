"""The copy floor the benchmark measures the job against: a real copy through the same
connector, and the figures `labkit bench` reports beside the job's (no timings asserted)."""

from labkit import bench, kafka, sensors
from labkit.flink import floor


def test_the_floor_copies_every_message_with_its_key(isolated):
    readings = list(sensors.simulate(sensors.Scenario(days=0.5, seed=3)))
    kafka.produce_readings(isolated, readings)
    copied = f"{isolated.topics.output_raw}_floor"
    kafka.ensure_topics(isolated, [copied], partitions=1)
    try:
        floor.start_copy(isolated, copied).wait()
        records = kafka.read(isolated, copied, limit=len(readings))
    finally:
        kafka.delete_topics(isolated, [copied])
    assert [(r.key, r.value) for r in records] == [
        (reading.sensor.encode(), reading.message()) for reading in readings
    ]


def test_the_job_is_reported_beside_its_floor(isolated):
    events = kafka.produce_readings(isolated, sensors.simulate(sensors.Scenario(days=1, seed=4)))
    figures = bench.measure_job_and_floor(isolated, events)
    for name in ("flink bounded run s", "flink copy floor run s", "flink JVM cpu s (run)",
                 "flink copy floor JVM cpu s"):  # fmt: skip
        assert figures[name] > 0, name
    ratio = figures["flink bounded run s"] / figures["flink copy floor run s"]
    assert figures["flink run / copy floor (x)"] == ratio
