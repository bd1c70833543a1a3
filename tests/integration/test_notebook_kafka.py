"""labkit.notebook.kafka against the real broker: where keys land, a group's assignment as
members come and go, and the live lag demo steered by its sliders."""

from __future__ import annotations

import time
import zlib

import pytest

from labkit import kafka, sensors
from labkit.notebook import kafka as nk


@pytest.fixture
def topic(stack, unique):
    name = nk.fresh_topic(stack, f"test_nb02_{unique}", partitions=3)
    yield name
    kafka.delete_topics(stack, [name])


def test_keys_land_where_their_hash_says(stack, topic):
    sent = kafka.produce_readings(stack, sensors.simulate(sensors.Scenario(days=1)), topic)
    records = kafka.read(stack, topic, limit=sent, idle=10)
    keys = nk.keys_table(records, partitions=3)
    assert len(keys) == len(sensors.CATALOGUE)
    assert all(len(partitions) == 1 for partitions in keys["partitions"])
    assert [p[0] for p in keys["partitions"]] == list(keys["crc32(key) % 3"])
    parts = nk.partitions_table(records)
    assert parts["messages"].sum() == sent
    for partition, row in parts.iterrows():
        assert all(zlib.crc32(key.encode()) % 3 == partition for key in row["keys"])


def test_assignment_demo_shows_each_partition_read_by_one_member_at_each_step(stack, topic):
    table = nk.assignment_demo(stack, topic, on_step=lambda step: None)
    assert list(table.columns) == [
        "reader-a and reader-b join",
        "reader-c joins",
        "reader-d joins",
        "reader-a leaves",
    ]
    for step in table.columns:
        owned = [p for cell in table[step] if cell[0].isdigit() for p in cell.split(", ")]
        assert sorted(owned) == ["0", "1", "2"], step
    assert table.loc["reader-a", "reader-a leaves"] == "(not a member)"
    assert table.loc["reader-c", "reader-a and reader-b join"] == "(not a member)"
    # Four members, three partitions: one of them has nothing to read.
    assert list(table["reader-d joins"]).count("(idle)") == 1
    assert "(idle)" not in list(table["reader-a leaves"])


def _until(condition, seconds: float = 60.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def test_moving_the_reader_slider_changes_the_lag(stack, topic):
    demo = nk.LagDemo(stack, topic, speed=14_400, reader_rate=0, sample_every=0.2).start()
    view = nk.lag_view(demo, every=0.5)
    try:
        # The reader reads nothing: the lag grows with every message that reaches the broker
        # (the sensors' producer may still hold the newest few).
        assert _until(lambda: demo.lag >= 100)
        assert demo.read == 0
        stalled = demo.samples[-1]
        assert 0 < sum(stalled.lag.values()) <= stalled.sent
        view.reader_rate.value = 1000  # the slider, moved as a student would
        assert demo.reader_rate == 1000
        view.speed.value = 900  # and the sensors slowed down: now the reader catches up
        assert demo.live.speed == 900
        assert _until(lambda: demo.read > 0 and demo.lag < sum(stalled.lag.values()) // 2)
    finally:
        demo.stop()
    assert view.reader_rate.disabled and view.speed.disabled
    assert "stopped" in view.readout.value
    limits = [sample.reader_rate for sample in demo.samples]
    assert limits[0] == 0 and limits[-1] == 1000
    # The broker's view at the end: what the reader read and committed, the lag is the rest.
    last = demo.samples[-1]
    assert sum(last.lag.values()) == kafka.group_lag(stack, demo.group, topic)
    assert last.read + sum(last.lag.values()) == last.sent == demo.live.sent


def test_a_plan_moves_the_slider_by_itself(stack, topic):
    demo = nk.LagDemo(stack, topic, speed=3600, reader_rate=10).start(seconds=4)
    view = nk.lag_view(demo, every=1.0, plan={1.0: 250})
    demo.wait()
    assert view.reader_rate.value == 250 == demo.samples[-1].reader_rate
    assert view.reader_rate.disabled
    assert _until(lambda: len(view.chart.value) > 0, seconds=10)
