"""The preview drawn from the dashboard's queries, against the real pipeline and API: tables of
the test's own filled by Kafka, Flink and the writers (with a few invalid messages), the API
served from a thread, the provisioned dashboard's requests sent to it; then each panel
compared with HBase and with the oracle."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest

from labkit import api, cli, flink, hbase, kafka, oracle, sandbox, sensors
from labkit.config import Settings
from labkit.dashboard import compare, preview, queries, sizing
from labkit.dashboard.compare import Cause

START = datetime(2024, 1, 1)
DAYS = 6
FROM, TO = "2024-01-01T00:00:00Z", "2024-01-07T00:00:00Z"
JUNK_AT = [START + timedelta(days=day, hours=5) for day in (1, 3, 4)]


def _ms(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1)) // timedelta(milliseconds=1)


def _stream() -> list[oracle.Sent]:
    """The scenario's messages with a few readings the devices cannot give (invalid)."""
    readings = sensors.simulate(sensors.Scenario(days=DAYS, start=START))
    stream = [oracle.Sent(reading.message(), reading.sent_at, reading) for reading in readings]
    for at in JUNK_AT:
        body = f'{{"m_name": "TH1", "m_value": 500.0, "m_timestamp": "{at}"}}'.encode()
        stream.insert(
            next(i for i, s in enumerate(stream) if s.sent_at >= at), oracle.Sent(body, at)
        )
    return stream


@dataclass
class Lab:
    settings: Settings
    url: str
    expected: oracle.Expected


@pytest.fixture(scope="module")
def lab(stack):
    """Topics and tables of this module's own, filled once; the API on them."""
    with sandbox.sandbox(stack, "t") as settings:
        stream = _stream()
        producer = kafka.BatchProducer(settings)
        for sent in stream:
            key = sent.reading.sensor.encode() if sent.reading else b"junk"
            producer.send(settings.topics.input, sent.body, key, _ms(sent.sent_at))
        producer.flush()
        writers = hbase.Writers(settings).start()
        try:
            flink.run_bounded(settings)
            writers.finish()
        finally:
            writers.shutdown()
        running = api.start_in_thread(settings, port=0)
        try:
            yield Lab(settings, running.url, oracle.expected(oracle.sent_frame(stream)))
        finally:
            running.stop()


@pytest.fixture(scope="module")
def shown(lab) -> preview.Preview:
    return preview.collect(lab.url, start=FROM, end=TO)


def test_the_preview_renders_every_panel_with_data(shown, tmp_path):
    provisioned = [p for p in queries.load()["panels"] if p["type"] != "row"]
    assert [data.title for data in shown.panels] == [p["title"] for p in provisioned]
    empty = [data.title for data in shown.panels if not data.has_data]
    assert not empty
    figure = shown.figure()
    # One axes per panel, each with something drawn on it.
    assert len(figure.axes) == len(shown.panels)
    for axes, data in zip(figure.axes, shown.panels, strict=True):
        assert axes.lines or axes.patches or axes.texts, data.title
    path = shown.save_png(tmp_path / "preview.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_series_answer_every_reading_when_the_panel_is_wide_enough(shown, lab):
    temperatures = shown.panel("Temperatures: readings every 15 minutes").series()
    on_time = lab.expected.raw
    for sensor in ("TH1", "TH2"):
        readings = on_time[on_time["sensor"] == sensor]
        assert (
            len(temperatures[f"{sensor}_raw"]) == len(readings) <= shown.panels[0].max_data_points
        )


def test_annotations_mark_every_late_reading_in_the_range(shown, lab):
    late = lab.expected.late
    in_range = late[
        (late["sensor"] == "W1") & late["timestamp"].between(START, datetime(2024, 1, 7))
    ]
    assert len(in_range) > 0
    assert sorted(event.time for event in shown.events) == sorted(in_range["timestamp"])
    assert {event.color for event in shown.events} == {"orange"}


def test_invalid_messages_are_counted_and_listed(shown):
    counted = shown.panel("Invalid messages").series()["invalid"]
    assert counted.sum() == len(JUNK_AT)
    (listed,) = shown.panel("Invalid messages: why").tables()
    assert sorted(listed["time"]) == JUNK_AT
    assert set(listed["reason"]) == {listed["reason"][0]} and "TH1" in listed["reason"][0]


def test_labkit_dashboard_writes_the_png(lab, tmp_path):
    path = tmp_path / "board.png"
    argv = ["dashboard", "--png", str(path), "--url", lab.url, "--from", FROM, "--to", TO]
    assert cli.main(argv) == 0
    assert path.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("source", ["hbase", "oracle"])
def test_every_panel_equals_the_notebooks_own_computation_when_nothing_is_downsampled(
    shown, lab, source
):
    expected = lab.expected if source == "oracle" else None
    found = compare.compare(shown, lab.settings, expected)
    assert [item.title for item in found] == [data.title for data in shown.panels]
    for item in found:
        assert item.cause is Cause.NONE and item.largest == 0, (item.title, item.cause)
        assert all(len(s.computed) > 0 for s in item.series), item.title
    table = compare.comparison_table(found)
    assert list(table["cause"]) == ["none"] * len(found)


@pytest.mark.parametrize(("grid_px", "cause"), [(600, Cause.DOWNSAMPLING), (280, Cause.ROLLUPS)])
def test_narrow_panels_differ_by_downsampling_then_by_roll_ups(lab, grid_px, cause):
    screen = sizing.Screen(window_px=grid_px + 32, grid_px=grid_px)
    narrow = preview.collect(lab.url, start=FROM, end=TO, screen=screen)
    found = {item.title: item for item in compare.compare(narrow, lab.settings, lab.expected)}
    readings = found["Temperatures: readings every 15 minutes"]
    assert readings.cause is cause
    for compared in readings.series:
        assert len(compared.drawn) <= readings.data.max_data_points < len(compared.computed)
        # A point is a mean of readings in 12..35 °C: no reading strays further than that.
        sensor = sensors.SENSORS[compared.metric.removesuffix("_raw")]
        assert 0 < compared.largest < sensor.high - sensor.low
    # One value a day is never downsampled at these widths.
    assert found["Temperatures: daily average"].cause is Cause.NONE
    figure = readings.figure()
    assert len(figure.axes) == 2
