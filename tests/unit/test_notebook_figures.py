"""labkit.notebook without the services: figures, tables, sliders and exercise checks."""

import time

import pandas as pd
from IPython.display import DisplayHandle

from labkit import config, notebook, oracle, pipeline, sensors

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
    for axes in figure.axes[:-1]:
        assert sum(patch.get_height() for patch in axes.patches) == 3 * sensors.TICKS_PER_DAY


def test_readings_frame_measures_how_late_each_reading_was_sent():
    frame = notebook.sensors.readings_frame(READINGS)
    assert len(frame) == len(READINGS)
    late = frame[frame["delay"] >= pd.Timedelta(days=2)]
    assert set(late["sensor"]) == {"W1"}


def test_knob_panel_sliders_change_the_running_scenario():
    live = pipeline.LiveSimulation(config.load({}), sensors.Scenario())  # not started: knobs only
    panel = notebook.sensors.knob_panel(live)
    sliders = {child.description: child for child in panel.children if hasattr(child, "value")}
    sliders["TH1: 1 per N ticks"].value = 4
    sliders["TH2: 1 per N ticks"].value = 0
    sliders["2-day-late W1 every N"].value = 7
    sliders["speed (sim s / s)"].value = 100
    assert live.scenario.every["TH1"] == 4
    assert "TH2" in live.scenario.disabled
    assert live.scenario.late_2d_every == 7
    assert live.speed == 100


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
