"""The data-creation layer: ten simulated building sensors, as in the original system.

Simulated time advances in ticks of 15 minutes. At every tick the simulator *sends* what the
building's sensors measured:

* the interval sensors (TH1, TH2, HVAC1, HVAC2, MiAC1, MiAC2, W1) one reading each, stamped
  at the tick;
* at a day's end, the two cumulative meters (Etot, Wtot), stamped at the day's last second;
* the movement events (MOV1) of the 15 minutes that just ended, stamped at their instant, so
  they arrive up to 15 minutes out of order;
* now and then a W1 reading stamped 2 or 10 days in the past: a late event. The sensor does not
  know it is late; Flink decides.

Every message goes to the ``input`` topic as the original's JSON, keyed by the sensor's name,
with the simulated send time as the Kafka record timestamp.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

TICK = timedelta(minutes=15)
TICKS_PER_DAY = 96
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"
# The periods over which the pipeline rolls up each sensor's readings (sum, count, mean time):
# a dashboard's year is then a few thousand rows, not every reading.
ROLLUP_PERIODS = {
    "1h": timedelta(hours=1),
    "6h": timedelta(hours=6),
    "12h": timedelta(hours=12),
    "1d": timedelta(days=1),
}


class SensorKind(StrEnum):
    """How a sensor sends."""

    INTERVAL = "interval"  # one reading every tick
    METER = "meter"  # a cumulative reading once a day
    EVENT = "event"  # one message per event, at its own instant (MOV1)


class Aggregate(StrEnum):
    """The daily aggregates the pipeline computes."""

    AVG = "AVG"
    SUM = "SUM"
    DIFF = "DIFF"  # a meter's reading today minus yesterday's
    REST = "REST"  # a meter's difference minus the daily sums of its parts


@dataclass(frozen=True)
class Sensor:
    """One sensor of the catalogue."""

    name: str
    kind: SensorKind
    aggregate: Aggregate  # the daily aggregate Flink computes
    unit: str
    description: str
    low: float = 0.0  # the simulated distribution (interval sensors) ...
    high: float = 0.0
    daily_growth: float = 0.0  # ... or the meter's mean daily growth and its spread
    growth_spread: float = 0.0
    # The values the device can physically report; anything outside is invalid input.
    valid_min: float = float("-inf")
    valid_max: float = float("inf")
    # For a meter: the sensors that measure parts of what it counts. Its daily "rest" is
    # its daily difference minus their daily sums (energy not accounted for; water leaked).
    parts: tuple[str, ...] = ()


def _interval(name: str, aggregate: Aggregate, unit: str, what: str, low: float, high: float,
              valid: tuple[float, float]) -> Sensor:  # fmt: skip
    return Sensor(name, SensorKind.INTERVAL, aggregate, unit, what, low, high,
                  valid_min=valid[0], valid_max=valid[1])  # fmt: skip


CATALOGUE: tuple[Sensor, ...] = (
    # Temperatures are simulated in 12-35 °C; the devices measure -40..85 °C.
    _interval("TH1", Aggregate.AVG, "°C", "temperature", 12, 35, valid=(-40, 85)),
    _interval("TH2", Aggregate.AVG, "°C", "temperature", 12, 35, valid=(-40, 85)),
    # Energy and water per 15 minutes: a device cannot exceed its rating.
    _interval("HVAC1", Aggregate.SUM, "Wh", "air conditioning", 0, 100, valid=(0, 100)),
    _interval("HVAC2", Aggregate.SUM, "Wh", "air conditioning", 0, 200, valid=(0, 200)),
    _interval("MiAC1", Aggregate.SUM, "Wh", "other appliances", 0, 150, valid=(0, 150)),
    _interval("MiAC2", Aggregate.SUM, "Wh", "other appliances", 0, 200, valid=(0, 200)),
    _interval("W1", Aggregate.SUM, "m³", "water consumption", 0, 1, valid=(0, 1)),
    Sensor("Etot", SensorKind.METER, Aggregate.DIFF, "Wh", "total energy meter (cumulative)",
           daily_growth=2600 * 24, growth_spread=1000, valid_min=0,
           parts=("HVAC1", "HVAC2", "MiAC1", "MiAC2")),
    Sensor("Wtot", SensorKind.METER, Aggregate.DIFF, "m³", "total water meter (cumulative)",
           daily_growth=100, growth_spread=10, valid_min=0, parts=("W1",)),
    Sensor("MOV1", SensorKind.EVENT, Aggregate.SUM, "events", "movement detector",
           valid_min=1, valid_max=1),
)  # fmt: skip

SENSORS: dict[str, Sensor] = {sensor.name: sensor for sensor in CATALOGUE}

LATE_SENSOR = "W1"  # the sensor whose readings sometimes arrive days late


def daily_metrics() -> dict[str, Aggregate]:
    """Every daily metric and its kind, named as in the original's Grafana dashboard.

    AVG and SUM metrics carry the sensor's name; each meter adds its daily difference
    (``Etot_DailyDiff``) and its rest (``Etot_AggDayRest``: energy the parts do not explain;
    ``Wtot_AggDayRest``: the water leak).
    """
    metrics = {}
    for sensor in CATALOGUE:
        if sensor.kind is SensorKind.METER:
            metrics[diff_metric(sensor.name)] = Aggregate.DIFF
            metrics[rest_metric(sensor.name)] = Aggregate.REST
        else:
            metrics[sensor.name] = sensor.aggregate
    return metrics


def diff_metric(meter: str) -> str:
    return f"{meter}_DailyDiff"


def rest_metric(meter: str) -> str:
    return f"{meter}_AggDayRest"


@dataclass(frozen=True)
class Reading:
    """One message as the sensor sends it."""

    sensor: str
    value: float
    timestamp: datetime  # when it was measured (m_timestamp)
    sent_at: datetime  # when it was sent: the Kafka record timestamp

    def message(self) -> bytes:
        """The original's JSON message, exactly as ``json.dumps`` writes it (but 4x faster:
        sensor names need no escaping, and ``repr`` of a finite float is a JSON number)."""
        # Simulated times are whole seconds: str() writes them as YYYY-MM-DD HH:MM:SS.
        name, value, stamp = self.sensor, self.value, self.timestamp
        return f'{{"m_name": "{name}", "m_value": {value!r}, "m_timestamp": "{stamp}"}}'.encode()

    @property
    def sent_at_ms(self) -> int:
        return int((self.sent_at - EPOCH).total_seconds() * 1000)


EPOCH = datetime(1970, 1, 1)


@dataclass(frozen=True)
class Scenario:
    """The knobs of a simulation (the notebook sliders turn these)."""

    days: float = 30
    start: datetime = datetime(2024, 1, 1)
    seed: int = 42
    # Sensors switched off; and, per interval sensor, one reading every `every` ticks.
    disabled: frozenset[str] = frozenset()
    every: dict[str, int] = field(default_factory=dict)
    movements_per_day: int = 5
    # One late W1 reading, stamped 2 (10) days in the past, every N ticks; 0 switches it off.
    late_2d_every: int = 20
    late_10d_every: int = 120

    def __post_init__(self) -> None:
        unknown = (set(self.disabled) | set(self.every)) - set(SENSORS)
        if unknown:
            raise ValueError(f"Unknown sensors {sorted(unknown)}; the sensors are {list(SENSORS)}")
        if self.days <= 0:
            raise ValueError("days must be positive")
        if not 0 <= self.movements_per_day <= TICKS_PER_DAY:
            raise ValueError(f"movements_per_day must be between 0 and {TICKS_PER_DAY}")
        for name, period in self.every.items():
            if period < 1:
                raise ValueError(f"every[{name!r}] must be at least 1 tick")
        if self.late_2d_every < 0 or self.late_10d_every < 0:
            raise ValueError("late-event periods must be 0 (off) or positive")

    @property
    def ticks(self) -> int:
        return round(self.days * TICKS_PER_DAY)

    @property
    def end(self) -> datetime:
        return self.start + self.ticks * TICK

    def enabled(self, name: str) -> bool:
        return name not in self.disabled

    def with_changes(self, **changes: Any) -> Scenario:
        return replace(self, **changes)


class Simulator:
    """The building's sensors, advanced one 15-minute tick at a time.

    It holds their state: the random generator, the cumulative meters, the movements planned
    for the day. ``scenario`` may be replaced between ticks (the notebook sliders do that in a
    live simulation); ``simulate()`` runs a fixed scenario from start to end.
    """

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self._rng = random.Random(scenario.seed)
        self._meters = {
            s.name: _initial_meter(self._rng, s) for s in CATALOGUE if s.kind is SensorKind.METER
        }
        self._movements: dict[int, list[datetime]] = {}  # tick -> MOV1 instants in its slot

    def tick(self, tick: int, last: bool = False) -> list[Reading]:
        """What the sensors send at ``tick``; the ``last`` tick only closes the final day."""
        scenario, rng = self.scenario, self._rng
        now = scenario.start + tick * TICK
        sent: list[Reading] = []

        # Cumulative meters at each day boundary; at the start, their reading of the day before.
        if tick % TICKS_PER_DAY == 0:
            for name in self._meters:
                if tick > 0:
                    sensor = SENSORS[name]
                    spread = sensor.growth_spread
                    self._meters[name] += sensor.daily_growth + rng.uniform(-spread, spread)
                if scenario.enabled(name):
                    sent.append(Reading(name, self._meters[name], now - timedelta(seconds=1), now))
            if not last and scenario.enabled("MOV1"):
                self._movements.update(_plan_movements(rng, scenario, tick))

        # Movements detected in the 15 minutes that just ended.
        for instant in self._movements.pop(tick - 1, []):
            sent.append(Reading("MOV1", 1.0, instant, now))
        if last:
            return sent

        for sensor in CATALOGUE:
            period = scenario.every.get(sensor.name, 1)
            if (
                sensor.kind is SensorKind.INTERVAL
                and scenario.enabled(sensor.name)
                and tick % period == 0
            ):
                sent.append(Reading(sensor.name, rng.uniform(sensor.low, sensor.high), now, now))

        if scenario.enabled(LATE_SENSOR) and tick > 0:
            w1 = SENSORS[LATE_SENSOR]
            for period, days_back in ((scenario.late_2d_every, 2), (scenario.late_10d_every, 10)):
                if period and tick % period == 0:
                    stamped = now - timedelta(days=days_back)
                    sent.append(Reading(LATE_SENSOR, rng.uniform(w1.low, w1.high), stamped, now))
        return sent


def simulate(scenario: Scenario) -> Iterator[Reading]:
    """Every message of the scenario, in the order the sensors send them.

    The same scenario (and seed) always yields the same messages.
    """
    simulator = Simulator(scenario)
    for tick in range(scenario.ticks + 1):
        yield from simulator.tick(tick, last=tick == scenario.ticks)


def _initial_meter(rng: random.Random, sensor: Sensor) -> float:
    # A meter installed long ago: its reading is somewhere between 10 and 100 days of growth.
    return rng.uniform(10, 100) * sensor.daily_growth


def _plan_movements(rng: random.Random, scenario: Scenario, day_tick: int) -> dict[int, list]:
    """The day's MOV1 events: distinct 15-minute slots, each at a random second inside."""
    slots = sorted(rng.sample(range(TICKS_PER_DAY), scenario.movements_per_day))
    day_start = scenario.start + day_tick * TICK
    return {
        day_tick + slot: [day_start + slot * TICK + timedelta(seconds=rng.randrange(900))]
        for slot in slots
    }
