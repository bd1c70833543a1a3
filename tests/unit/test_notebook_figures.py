"""labkit.notebook without the services: figures, tables, sliders and exercise checks."""

import random
import time

import pandas as pd
from IPython.display import DisplayHandle

from labkit import config, notebook, oracle, pipeline, sensors
from labkit.exercises import sensors as checks
from notebooks.solutions.sensors import EtotMeter

READINGS = list(sensors.simulate(sensors.Scenario(days=3, seed=1)))


def test_architecture_draws_every_layer():
    figure = notebook.lab.architecture()
    texts = [text.get_text() for text in figure.axes[0].texts]
    for title, _ in notebook.lab.LAYERS:
        assert title in texts
    assert len(figure.axes[0].patches) == 2 * len(notebook.lab.LAYERS) - 1  # boxes and arrows


def test_catalogue_lists_the_ten_sensors():
    table = notebook.sensors.catalogue()
    assert list(table.index) == [s.name for s in sensors.CATALOGUE]
    assert table.loc["Etot", "daily aggregate"] == "DIFF"


def test_sensor_overview_has_a_histogram_per_interval_sensor_and_a_timeline():
    figure = notebook.sensors.sensor_overview(READINGS)
    interval = [s for s in sensors.CATALOGUE if s.kind == "interval"]
    assert len(figure.axes) == len(interval) + 1
    # Each histogram counts the sensor's on-time readings: 96 a day for three days.
    for axes, sensor in zip(figure.axes[:-1], interval, strict=True):
        assert sum(patch.get_height() for patch in axes.patches) == 3 * sensors.TICKS_PER_DAY
        assert axes.get_xlabel() == f"value ({sensor.unit})" and axes.get_ylabel() == "readings"
    assert figure.axes[-1].get_xlabel() and figure.axes[-1].get_ylabel() == "sensor"


def test_readings_frame_measures_how_late_each_reading_was_sent():
    frame = notebook.sensors.readings_frame(READINGS)
    assert len(frame) == len(READINGS)
    late = frame[frame["delay"] >= pd.Timedelta(days=2)]
    assert set(late["sensor"]) == {"W1"}


def sliders(panel) -> dict:
    return {child.description: child for child in panel.children if hasattr(child, "disabled")}


def test_knob_panel_sliders_change_the_running_scenario():
    live = pipeline.LiveSimulation(config.load({}), sensors.Scenario())  # not started: knobs only
    knobs = sliders(notebook.sensors.knob_panel(live))
    knobs["TH1: 1 per N ticks"].value = 4
    knobs["TH2: 1 per N ticks"].value = 0
    knobs["2-day-late W1 every N"].value = 7
    knobs["speed (sim s / s)"].value = 21_600.0
    assert live.scenario.every["TH1"] == 4
    assert "TH2" in live.scenario.disabled
    assert live.scenario.late_2d_every == 7
    assert live.speed == 21_600.0


def test_the_speed_slider_is_exact_at_the_speeds_the_notebooks_use():
    for speed, label in ((86_400.0, "1 day/s"), (3600.0, "1 h/s"), (43_200.0, "12 h/s")):
        live = pipeline.LiveSimulation(config.load({}), sensors.Scenario(), speed=speed)
        slider = sliders(notebook.sensors.knob_panel(live))["speed (sim s / s)"]
        assert slider.value == speed and slider.label == label
    # A speed between the stops becomes a stop of its own, written as it is.
    assert (notebook.sensors.speed_options(1800.0)[1]) == ("30 min/s", 1800.0)
    assert ("1234 s/s", 1234.0) in notebook.sensors.speed_options(1234.0)


def test_the_sliders_are_disabled_when_the_simulation_ends():
    live = pipeline.LiveSimulation(config.load({}), sensors.Scenario())
    panel = notebook.sensors.knob_panel(live)
    assert not any(slider.disabled for slider in sliders(panel).values())
    live.stop()
    assert all(slider.disabled for slider in sliders(panel).values())
    assert "ended" in panel.children[-1].value
    # A panel made after the end is disabled at once.
    assert all(s.disabled for s in sliders(notebook.sensors.knob_panel(live)).values())


def test_meter_figure_plots_the_meters_readings_and_growth_with_labelled_axes():
    sent = checks.run_sensor(EtotMeter(checks.FIRST_READING, random.Random(3)), days=20)
    figure = notebook.sensors.meter_figure(sent)
    reading, growth = figure.axes
    assert len(reading.lines[0].get_xdata()) == 20
    assert sum(bar.get_height() for bar in growth.patches) == 19  # growth between readings
    assert all(axes.get_xlabel() and axes.get_ylabel() for axes in figure.axes)


def test_watch_redraws_in_place_until_its_time_is_up():
    shown = []

    class Handle(DisplayHandle):
        def update(self, content, **kwargs):
            shown.append(content)

    started = time.monotonic()
    frames = notebook.watch(
        lambda: len(shown), seconds=0.5, every=0.1, display=lambda c, display_id: Handle()
    )
    assert 0.5 <= time.monotonic() - started < 2
    assert frames == len(shown) + 1 >= 4


def test_the_daily_figure_plots_what_it_is_given():
    daily = oracle.expected(oracle.messages_frame(READINGS)).daily
    figure = notebook.stream.daily_figure(daily)
    plotted = sum(len(axes.lines) for axes in figure.axes)
    assert plotted == sum(len(metrics) for _, metrics in notebook.stream.DAILY_PANELS)
