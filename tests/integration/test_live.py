"""Live runs against the real services: the paced simulation and the whole pipeline."""

import time

from labkit import kafka, pipeline, sensors

DAY = 86_400.0


def test_live_simulation_keeps_pace_and_obeys_its_knobs(isolated):
    live = pipeline.LiveSimulation(isolated, sensors.Scenario(), speed=DAY)  # a day a second
    live.start()
    time.sleep(2.0)
    th1_before = live.per_sensor["TH1"]
    live.update(disabled=frozenset({"TH1"}))
    live.speed = DAY / 2
    time.sleep(1.5)
    live.stop()
    assert not live.running
    # About two days in the first two seconds, then half a day a second.
    assert 2.5 * sensors.TICKS_PER_DAY < live.tick < 3.5 * sensors.TICKS_PER_DAY
    # TH1 stopped at the next tick after the knob turned.
    assert live.per_sensor["TH1"] <= th1_before + 1
    assert live.per_sensor["TH2"] > th1_before + sensors.TICKS_PER_DAY // 2
    assert (
        kafka.message_count(isolated, isolated.topics.input)
        == live.sent
        == sum(live.per_sensor.values())
    )


def test_a_live_simulation_ends_by_itself_after_its_seconds(isolated):
    live = pipeline.LiveSimulation(isolated, speed=900).start(seconds=1.0)
    started = time.monotonic()
    live.wait()
    assert time.monotonic() - started < 5
    assert live.tick in (1, 2)  # one tick a second


def test_the_live_pipeline_matches_the_oracle_on_closed_days(isolated):
    scenario = sensors.Scenario(seed=21)
    live = pipeline.LivePipeline(isolated, scenario, speed=DAY * 0.75).start()
    deadline = time.monotonic() + 120
    # Run until four simulated days have gone through (the job needs ~20 s to start).
    while live.counts()["raw"] < 4 * 680 and time.monotonic() < deadline:
        time.sleep(1)
    counts = live.stop()
    assert counts["raw"] + counts["late"] == counts["sent"] and counts["invalid"] == 0
    check = pipeline.oracle_check(isolated, live.simulation.history)
    assert len(check) >= 3 * len(sensors.daily_metrics())  # at least three closed days
    assert check["match"].all(), check[~check["match"]]
