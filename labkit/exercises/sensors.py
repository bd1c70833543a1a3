"""Notebook 01's Build it: a sensor of the student's own, the cumulative energy meter Etot.

A sensor is an object whose ``tick(now)`` the simulator calls every 15 simulated minutes; it
returns the messages it sends at that instant (JSON text), usually none. ``run_sensor`` drives
one as the lab's simulator drives its own; ``etot_meter`` drives the student's meter for two
simulated months and compares what it sent with the catalogue: its cadence (one reading a day,
sent at midnight, stamped at the day's last second), its distribution (each day's growth within
the catalogue's spread, their mean and spread close to the catalogue's), a reading that never
goes down, and the original's JSON message.
"""

from __future__ import annotations

import itertools
import json
import math
import random
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from labkit import sensors
from labkit.exercises.feedback import Checker, Verdict

ETOT = sensors.SENSORS["Etot"]
FIELDS = ("m_name", "m_value", "m_timestamp")
START = sensors.Scenario().start  # a midnight
DAYS = 60  # enough days for the mean and the spread of the daily growth to say something
SEED = 2024
# What the meter read when the check starts: 40 days of growth since it was installed.
FIRST_READING = 40 * ETOT.daily_growth
SECOND = timedelta(seconds=1)


class Sensor(Protocol):
    def tick(self, now: datetime) -> Any: ...


@dataclass(frozen=True)
class Sent:
    """One message a sensor sent, and the simulated instant it sent it."""

    at: datetime
    message: Any


def ticks(start: datetime = START, days: float = DAYS) -> list[datetime]:
    """The simulator's ticks after ``start``, every 15 minutes for ``days`` days."""
    return [
        start + tick * sensors.TICK for tick in range(1, round(days * sensors.TICKS_PER_DAY) + 1)
    ]


def run_sensor(sensor: Sensor, start: datetime = START, days: float = DAYS) -> list[Sent]:
    """Drive ``sensor`` as the simulator drives the lab's sensors: ``tick(now)`` at every tick
    after ``start`` for ``days`` days; what it returns is what it sends (None: nothing)."""
    return [Sent(now, message) for now in ticks(start, days) for message in sensor.tick(now) or []]


def decode(message: Any) -> dict[str, Any]:
    """A message's fields; ValueError saying what is off when it is not the original's JSON."""
    if not isinstance(message, str | bytes):
        kind = type(message).__name__
        raise ValueError(f"a message is JSON text (json.dumps writes it), not a {kind}")
    try:
        fields = json.loads(message)
    except ValueError:
        raise ValueError(f"{message!r} is not JSON") from None
    if not isinstance(fields, dict) or sorted(fields) != sorted(FIELDS):
        raise ValueError(f"{message!r} does not have exactly the fields {', '.join(FIELDS)}")
    value = fields["m_value"]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"its m_value {value!r} is not a number")
    try:
        fields["m_timestamp"] = datetime.strptime(fields["m_timestamp"], sensors.TIMESTAMP_FORMAT)
    except (TypeError, ValueError):
        stamp = fields["m_timestamp"]
        raise ValueError(f"its m_timestamp {stamp!r} is not YYYY-MM-DD HH:MM:SS") from None
    return fields


HINT = (
    "a meter counts: its reading lives in the object and only grows. It speaks once a day, at "
    "the tick that ends the day (what does `now` look like then?), about the day that has just "
    "ended. `rng.uniform(a, b)` draws the day's jitter."
)


def etot_meter(meter_class: Callable[[float, random.Random], Sensor]) -> Verdict:
    """Check the student's Etot meter: ``meter_class(reading, rng)``, with a ``tick(now)``."""
    with Checker("01.etot_meter", HINT) as check:
        meter = check.run(meter_class, FIRST_READING, random.Random(SEED))
        returned = check.run(_every_tick(meter))
        if all(result is None for _, result in returned):
            check.not_yet("`tick` returns None at every tick: write its body, returning a list")
        kinds = {type(r).__name__ for _, r in returned if r is not None and not isinstance(r, list)}
        if kinds:
            check.fail(f"`tick` returned a {', '.join(sorted(kinds))}: expected a list of messages")
        sent = [Sent(now, message) for now, result in returned for message in result or []]
        fields = _check_messages(check, sent)
        _check_cadence(check, sent, [f["m_timestamp"] for f in fields])
        values = [FIRST_READING] + [f["m_value"] for f in fields]
        _check_growth(check, [today - yesterday for yesterday, today in itertools.pairwise(values)])
    return check.verdict


def _every_tick(meter: Sensor) -> Callable[[], list[tuple[datetime, Any]]]:
    """What ``meter.tick`` returns at each tick; named after it for the check's messages."""

    def every_tick() -> list[tuple[datetime, Any]]:
        return [(now, meter.tick(now)) for now in ticks()]

    every_tick.__qualname__ = f"{type(meter).__qualname__}.tick"
    return every_tick


def _check_messages(check: Checker, sent: list[Sent]) -> list[dict[str, Any]]:
    if not sent:
        check.fail(f"your meter sent nothing in {DAYS} simulated days")
    decoded = []
    for one in sent:
        try:
            fields = decode(one.message)
        except ValueError as error:
            check.fail(f"the message sent at {one.at}: {error}")
        if fields["m_name"] != ETOT.name:
            check.fail(f"a message names the sensor {fields['m_name']!r}; the meter is {ETOT.name}")
        decoded.append(fields)
    check.expect(True, "every message is the original's JSON: m_name, m_value, m_timestamp", "")
    return decoded


def _check_cadence(check: Checker, sent: list[Sent], stamps: list[datetime]) -> None:
    midnights = [START + timedelta(days=day) for day in range(1, DAYS + 1)]
    check.require(
        [one.at for one in sent] == midnights,
        f"one message a day, sent at midnight ({DAYS} in {DAYS} days)",
        f"{len(sent):,} messages in {DAYS} days, the first sent at {sent[0].at:%Y-%m-%d %H:%M}: "
        f"expected one a day, sent at midnight ({DAYS})",
    )
    off = [
        (one.at, stamp) for one, stamp in zip(sent, stamps, strict=True) if stamp != one.at - SECOND
    ]
    check.expect(
        not off,
        "each stamped at the last second of the day it reports (23:59:59)",
        f"{len(off)} of {len(sent)} messages are stamped off, e.g. the one sent at {off[0][0]} "
        f"is stamped {off[0][1]}: expected the last second of the day that ended, "
        f"{off[0][0] - SECOND}"
        if off
        else "",
    )


def _check_growth(check: Checker, growth: list[float]) -> None:
    mean, spread = ETOT.daily_growth, ETOT.growth_spread
    low, high = mean - spread, mean + spread
    check.expect(
        all(g >= 0 for g in growth),
        "the reading never goes down",
        f"the reading went down on {sum(g < 0 for g in growth)} days: a meter only counts up",
    )
    outside = [(day, g) for day, g in enumerate(growth, 1) if not low <= g <= high]
    check.expect(
        not outside,
        f"every day grows by {low:,.0f} to {high:,.0f} Wh",
        f"{len(outside)} of {len(growth)} days grew outside {low:,.0f} to {high:,.0f} Wh, e.g. "
        f"day {outside[0][0]} by {outside[0][1]:,.0f} Wh"
        if outside
        else "",
    )
    # A jitter uniform in [-spread, spread] has a standard deviation of spread / sqrt(3): the
    # mean of DAYS days is then within 4 standard errors of the catalogue's, the deviation
    # within 30 % of it (both by far, for a right meter).
    deviation = spread / math.sqrt(3)
    average, measured = statistics.fmean(growth), statistics.pstdev(growth)
    check.expect(
        abs(average - mean) <= 4 * deviation / math.sqrt(len(growth)),
        f"the mean daily growth is {average:,.0f} Wh (the catalogue's: {mean:,.0f})",
        f"the mean daily growth is {average:,.0f} Wh; the catalogue's is {mean:,.0f}",
    )
    check.expect(
        0.7 * deviation <= measured <= 1.3 * deviation,
        f"the days differ as the catalogue's do (standard deviation {measured:,.0f} Wh)",
        f"the days' growth has a standard deviation of {measured:,.0f} Wh; a jitter uniform "
        f"in ±{spread:,.0f} Wh gives {deviation:,.0f}",
    )
