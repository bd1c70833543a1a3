"""labkit.notebook against the running lab: live views, Kafka tables, checks that read it."""

from labkit import hbase, kafka, notebook, pipeline, sensors
from labkit.exercises import answers

READINGS = list(sensors.simulate(sensors.Scenario(days=3, seed=1)))


def test_live_figure_shows_a_running_simulation(isolated):
    live = pipeline.LiveSimulation(isolated, speed=86_400).start(seconds=1.0)
    live.wait()
    figure = notebook.sensors.live_figure(live)
    counts, series = figure.axes
    assert sum(bar.get_width() for bar in counts.patches) == live.sent
    assert len(series.lines[0].get_xdata()) == live.per_sensor["TH1"]


def test_offsets_and_records_tables(isolated):
    topic = isolated.topics.input
    kafka.produce_readings(isolated, READINGS[:50], topic)
    table = notebook.kafka.offsets_table(isolated, topic, group="nobody")
    assert table["messages"].sum() == 50 and table["lag"].sum() == 50
    records = notebook.kafka.records_table(kafka.peek(isolated, topic, last=5))
    assert list(records["offset"]) == [45, 46, 47, 48, 49]
    assert records["key"].iloc[-1] == READINGS[49].sensor


def test_records_frame_and_topic_counts(isolated):
    producer = kafka.BatchProducer(isolated)
    producer.send(isolated.topics.output_aggr, b'{"metric": "TH1", "value": 1.5}')
    producer.send(isolated.topics.output_aggr, b'{"metric": "TH2", "value": 2.5}')
    producer.flush()
    frame = notebook.kafka.records_frame(kafka.read(isolated, isolated.topics.output_aggr, idle=1))
    assert sorted(frame["metric"]) == ["TH1", "TH2"]
    counts = notebook.kafka.topic_counts(isolated)
    assert counts.loc["messages", isolated.topics.output_aggr] == 2
    assert counts.loc["messages", isolated.topics.input] == 0


def test_check_reads_the_answers_that_depend_on_the_lab(isolated):
    kafka.produce_readings(isolated, READINGS[:7], isolated.topics.input)
    assert answers.input_messages(7, isolated).passed
    assert not answers.input_messages(6, isolated).passed
    connection = hbase.connect(isolated)
    with connection.table(hbase.table_name(isolated, "daily")).batch() as batch:
        for day, leak in (("2024-01-01", 40.0), ("2024-01-02", 61.5), ("2024-01-03", 12.0)):
            batch.put(
                f"Wtot_AggDayRest#{day}".encode(),
                {b"d:value": str(leak).encode(), b"d:readings": b"98"},
            )
    connection.close()
    assert answers.largest_leak_day("2024-01-02", isolated).passed
    assert not answers.largest_leak_day("2024-01-01", isolated).passed


def test_health_lists_every_service_with_its_state(stack):
    table = notebook.lab.health(stack)
    assert table.loc["kafka", "state"] == "ready"
    assert (
        "broker 9092" in table.loc["kafka", "ports"]
        or str(stack.kafka_port) in table.loc["kafka", "ports"]
    )
    assert set(table.index) >= {"kafka", "hbase", "thrift", "jupyter"}
