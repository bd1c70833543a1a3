"""Notebook 01's Build it: the Etot meter check passes the reference solution, says "not yet"
to the skeleton, and rejects meters that are wrong in the ways students get them wrong."""

import json
import random
from datetime import datetime, timedelta

from labkit import sensors
from labkit.exercises import Status
from labkit.exercises import sensors as checks
from notebooks.solutions.sensors import EtotMeter

ETOT = sensors.SENSORS["Etot"]


def message(value: float, stamp: datetime) -> str:
    return json.dumps({"m_name": "Etot", "m_value": value, "m_timestamp": f"{stamp}"})


class Skeleton:
    """The notebook's skeleton, untouched."""

    def __init__(self, reading: float, rng: random.Random) -> None:
        self.reading = reading
        self.rng = rng

    def tick(self, now): ...


class GrowsEveryTick(EtotMeter):
    """Adds a day's growth, and sends, at every 15-minute tick."""

    def tick(self, now):
        self.reading += ETOT.daily_growth + self.rng.uniform(-1000, 1000)
        return [message(self.reading, now - timedelta(seconds=1))]


class GrowsPerTickSendsDaily(EtotMeter):
    """Sends once a day, but adds a day's growth at every tick: 96 days' worth a day."""

    def tick(self, now):
        self.reading += ETOT.daily_growth + self.rng.uniform(-1000, 1000)
        return (
            [message(self.reading, now - timedelta(seconds=1))]
            if now.hour == now.minute == 0
            else []
        )


class StampedAtMidnight(EtotMeter):
    """Right in all but the stamp: midnight, the next day's first second."""

    def tick(self, now):
        return [message(json.loads(m)["m_value"], now) for m in super().tick(now)]


class WithoutJitter(EtotMeter):
    """Every day grows by exactly the catalogue's mean."""

    def __init__(self, reading: float, rng: random.Random) -> None:
        super().__init__(reading, random.Random())
        self.rng.uniform = lambda low, high: 0.0  # type: ignore[method-assign]


class OneSidedJitter(EtotMeter):
    """The jitter drawn in [0, 1000] only: each day is in the band, the mean is not."""

    def __init__(self, reading: float, rng: random.Random) -> None:
        super().__init__(reading, rng)
        self.rng = random.Random(1)
        draw = self.rng.uniform
        self.rng.uniform = lambda low, high: draw(0, high)  # type: ignore[method-assign]


class SendsBeforeGrowing(EtotMeter):
    """Sends the reading first and grows it afterwards: the first day reports no growth."""

    def tick(self, now):
        if now.hour or now.minute:
            return []
        sent = [message(self.reading, now - timedelta(seconds=1))]
        self.reading += ETOT.daily_growth + self.rng.uniform(-1000, 1000)
        return sent


class ValueAsText(EtotMeter):
    """The reading written as text: "62400.0", not 62400.0."""

    def tick(self, now):
        fields = [json.loads(m) for m in super().tick(now)]
        return [json.dumps({**f, "m_value": str(f["m_value"])}) for f in fields]


class Dicts(EtotMeter):
    """Returns the fields, not the JSON text."""

    def tick(self, now):
        return [json.loads(m) for m in super().tick(now)]


class Raises(EtotMeter):
    def tick(self, now):
        return [message(self.reading / 0, now)]


def test_the_reference_solution_passes():
    verdict = checks.etot_meter(EtotMeter)
    assert verdict.status is Status.PASSED, verdict.text()
    assert not verdict.wrong


def test_the_untouched_skeleton_is_not_yet():
    verdict = checks.etot_meter(Skeleton)
    assert verdict.status is Status.NOT_YET
    assert "returns None at every tick" in verdict.text()


def test_growth_and_messages_at_every_tick_are_wrong_about_the_cadence():
    verdict = checks.etot_meter(GrowsEveryTick)
    assert verdict.status is Status.WRONG
    assert "5,760 messages in 60 days" in verdict.text()


def test_a_days_growth_at_every_tick_is_outside_the_band():
    verdict = checks.etot_meter(GrowsPerTickSendsDaily)
    assert verdict.status is Status.WRONG
    assert "60 of 60 days grew outside 61,400 to 63,400 Wh" in verdict.text()


def test_readings_stamped_at_midnight_are_wrong():
    verdict = checks.etot_meter(StampedAtMidnight)
    assert verdict.status is Status.WRONG
    assert "is stamped 2024-01-02 00:00:00" in verdict.text()
    assert "2024-01-01 23:59:59" in verdict.text()


def test_a_meter_without_jitter_is_wrong_about_the_spread():
    verdict = checks.etot_meter(WithoutJitter)
    assert verdict.status is Status.WRONG
    assert "standard deviation of 0 Wh" in verdict.text()


def test_a_one_sided_jitter_is_wrong_about_the_mean():
    verdict = checks.etot_meter(OneSidedJitter)
    assert verdict.status is Status.WRONG
    assert any("mean daily growth" in line for line in verdict.wrong)


def test_sending_before_growing_reports_a_day_without_growth():
    verdict = checks.etot_meter(SendsBeforeGrowing)
    assert verdict.status is Status.WRONG
    assert "day 1 by 0 Wh" in verdict.text()


def test_messages_must_be_the_originals_json():
    assert "is not a number" in checks.etot_meter(ValueAsText).text()
    assert "not a dict" in checks.etot_meter(Dicts).text()
    for wrong in (ValueAsText, Dicts):
        assert checks.etot_meter(wrong).status is Status.WRONG


def test_an_exception_in_the_students_code_is_a_verdict_not_a_traceback():
    verdict = checks.etot_meter(Raises)
    assert verdict.status is Status.WRONG
    assert "`Raises.tick` raised ZeroDivisionError" in verdict.text()


def test_run_sensor_ticks_every_15_minutes_after_the_start():
    class Clock:
        def tick(self, now):
            return [f"{now}"]

    sent = checks.run_sensor(Clock(), datetime(2024, 1, 1), days=1)
    assert len(sent) == sensors.TICKS_PER_DAY
    assert sent[0].at == datetime(2024, 1, 1, 0, 15) and sent[-1].at == datetime(2024, 1, 2)
    assert all(one.message == f"{one.at}" for one in sent)
