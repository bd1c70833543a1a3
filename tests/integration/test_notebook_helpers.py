"""labkit.notebook against the running lab: live views, Kafka tables, checks that read it."""

import time

import pandas as pd

from labkit import hbase, kafka, notebook, pipeline, sensors
from labkit.exercises import answers

READINGS = list(sensors.simulate(sensors.Scenario(days=3, seed=1)))
NAMES = [s.name for s in sensors.CATALOGUE]


def test_the_live_view_shows_what_the_simulation_sent(isolated):
    live = pipeline.LiveSimulation(isolated, speed=86_400).start(seconds=2.0)
    view = notebook.sensors.LiveView(live, sensor="W1")
    view.sample()
    live.wait()
    figure = view.figure()
    over_time, per_sensor, readings, late = figure.axes
    assert f"{live.sent:,} messages sent" in figure.texts[0].get_text()  # the suptitle
    assert len(over_time.lines[0].get_xdata()) == 1  # one rate: between the two samples
    assert [bar.get_width() > 0 for bar in per_sensor.patches] == [True] * len(NAMES)
    w1 = [r for r in live.recent if r.sensor == "W1"]
    late_w1 = [r for r in w1 if r.sent_at - r.timestamp >= sensors.TICK]
    assert len(late.collections[0].get_offsets()) == len(late_w1) > 0
    # Late readings are not on the on-time axis: it spans two days, not the ten of the latest.
    assert readings.get_xlim()[1] - readings.get_xlim()[0] < 3
    assert all(axes.get_xlabel() and axes.get_ylabel() for axes in figure.axes)


def test_moving_a_slider_changes_what_the_live_view_counts(isolated):
    live = pipeline.LiveSimulation(isolated, speed=3600).start()
    view = notebook.sensors.LiveView(live, window=2.0)
    sliders = {s.description: s for s in view.panel(every=0.5).children[0].children
               if hasattr(s, "disabled")}  # fmt: skip

    def rates_over_the_next_window() -> dict:
        view.sample()
        time.sleep(view.window + 0.2)
        end = view.sample()
        return view.rates().loc[end.seconds]

    try:
        time.sleep(0.5)
        before = rates_over_the_next_window()
        sliders["TH1: 1 per N ticks"].value = 0
        time.sleep(0.5)  # the tick in flight when the slider moved may still send TH1
        th1_off = rates_over_the_next_window()
        sliders["speed (sim s / s)"].value = 21_600.0  # six times as fast
        time.sleep(0.5)
        faster = rates_over_the_next_window()
    finally:
        live.stop()
    assert before["TH1"] > 0 and th1_off["TH1"] == 0 and th1_off["TH2"] > 0
    assert faster["all"] > th1_off["all"] and faster["TH2"] > th1_off["TH2"]
    assert [what for _, what in view.moves] == [
        "TH1: 1 per N ticks = 0", "speed (sim s / s) = 6 h/s",
    ]  # fmt: skip
    assert all(slider.disabled for slider in sliders.values())


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
    # A pid is an integer, or "-" for a service that does not run (never a float).
    assert all(pd.api.types.is_integer(pid) or pid == "-" for pid in table["pid"])
    assert pd.api.types.is_integer(table.loc["kafka", "pid"])
    assert (
        "broker 9092" in table.loc["kafka", "ports"]
        or str(stack.kafka_port) in table.loc["kafka", "ports"]
    )
    assert set(table.index) >= {"kafka", "hbase", "thrift", "jupyter"}
