"""The simulator alone (no services): bounds, cadences, late events, determinism."""

import itertools
import json
from collections import Counter
from datetime import datetime, timedelta

import pytest

from labkit import sensors
from labkit.sensors import TICK, TICKS_PER_DAY, Scenario, simulate

DAYS = 10


@pytest.fixture(scope="module")
def readings():
    return list(simulate(Scenario(days=DAYS, seed=3)))


def _of(readings, name):
    return [r for r in readings if r.sensor == name]


def test_interval_sensors_stay_in_their_ranges(readings):
    for sensor in sensors.CATALOGUE:
        if sensor.kind == "interval":
            values = [r.value for r in _of(readings, sensor.name)]
            assert min(values) >= sensor.low and max(values) <= sensor.high, sensor.name
            # Uniform over the range: the extremes come close to the bounds.
            span = sensor.high - sensor.low
            assert (
                min(values) < sensor.low + 0.05 * span and max(values) > sensor.high - 0.05 * span
            )


def test_interval_sensors_read_every_15_minutes_on_time(readings):
    start = Scenario().start
    for name in ("TH1", "TH2", "HVAC1", "HVAC2", "MiAC1", "MiAC2"):
        stamps = [r.timestamp for r in _of(readings, name)]
        assert stamps == [start + k * TICK for k in range(DAYS * TICKS_PER_DAY)]
        assert all(r.sent_at == r.timestamp for r in _of(readings, name))


def test_meters_grow_once_a_day_within_their_spread(readings):
    start = Scenario().start
    for name, (mean, spread) in {"Etot": (2600 * 24, 1000), "Wtot": (100, 10)}.items():
        meter = _of(readings, name)
        # The reading of the day before the start, then one at the end of each day.
        assert [r.timestamp for r in meter] == [
            start + timedelta(days=d) - timedelta(seconds=1) for d in range(DAYS + 1)
        ]
        growth = [b.value - a.value for a, b in itertools.pairwise(meter)]
        assert all(mean - spread <= g <= mean + spread for g in growth), name


def test_movements_happen_five_times_a_day_inside_their_slot(readings):
    movements = _of(readings, "MOV1")
    per_day = Counter(r.timestamp.date() for r in movements)
    assert sorted(per_day.values()) == [5] * DAYS
    for reading in movements:
        assert reading.value == 1.0
        # Sent when its 15-minute slot ends, so it arrives out of order by less than a tick.
        assert timedelta(0) < reading.sent_at - reading.timestamp <= TICK
        assert (reading.sent_at - Scenario().start) % TICK == timedelta(0)


def test_late_w1_readings_follow_their_schedule(readings):
    start = Scenario().start
    late = [r for r in readings if r.sent_at - r.timestamp >= timedelta(days=2)]
    assert all(r.sensor == "W1" and 0 <= r.value <= 1 for r in late)
    two_days = sorted(
        (r.sent_at - start) // TICK for r in late if r.sent_at - r.timestamp == timedelta(days=2)
    )
    ten_days = sorted(
        (r.sent_at - start) // TICK for r in late if r.sent_at - r.timestamp == timedelta(days=10)
    )
    ticks = DAYS * TICKS_PER_DAY
    assert two_days == list(range(20, ticks, 20))
    assert ten_days == list(range(120, ticks, 120))


def test_the_same_seed_gives_the_same_messages_and_another_seed_does_not():
    first = [r.message() for r in simulate(Scenario(days=2, seed=11))]
    again = [r.message() for r in simulate(Scenario(days=2, seed=11))]
    other = [r.message() for r in simulate(Scenario(days=2, seed=12))]
    assert first == again
    assert first != other and len(first) == len(other)


def test_messages_are_the_originals_json_sent_in_time_order(readings):

    message = json.loads(readings[5].message())
    assert set(message) == {"m_name", "m_value", "m_timestamp"}
    datetime.strptime(message["m_timestamp"], "%Y-%m-%d %H:%M:%S")
    sent = [r.sent_at for r in readings]
    assert sent == sorted(sent)


def test_knobs_switch_sensors_off_slow_them_down_and_stop_late_events():
    scenario = Scenario(
        days=2,
        disabled=frozenset({"TH2", "MOV1"}),
        every={"TH1": 4},
        late_2d_every=0,
        late_10d_every=0,
    )
    counts = Counter(r.sensor for r in simulate(scenario))
    assert "TH2" not in counts and "MOV1" not in counts
    assert counts["TH1"] == 2 * TICKS_PER_DAY // 4
    assert counts["W1"] == 2 * TICKS_PER_DAY  # no late readings


@pytest.mark.parametrize(
    "changes",
    [{"disabled": frozenset({"XX"})}, {"days": 0}, {"every": {"TH1": 0}}, {"late_2d_every": -1}],
)
def test_bad_knobs_are_refused(changes):
    with pytest.raises(ValueError):
        Scenario(**changes)


def test_messages_are_exactly_what_json_dumps_writes(readings):
    for reading in readings[:500]:
        assert (
            reading.message()
            == json.dumps(
                {
                    "m_name": reading.sensor,
                    "m_value": reading.value,
                    "m_timestamp": reading.timestamp.strftime(sensors.TIMESTAMP_FORMAT),
                }
            ).encode()
        )
