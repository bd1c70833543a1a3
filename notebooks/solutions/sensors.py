"""Notebook 01."""

import json
import random
from datetime import datetime, time, timedelta

from labkit import sensors

# One TH1 reading every N ticks: a tick is 15 minutes, so four make an hour.
TH1_HOURLY = timedelta(hours=1) // sensors.TICK
# A movement is sent when its 15-minute slot ends: one at the slot's first second is 15 min old.
MOV1_MAX_DELAY_MINUTES = 15

ETOT = sensors.SENSORS["Etot"]


class EtotMeter:
    """Etot, the building's cumulative energy meter: one reading a day, at the day's end."""

    def __init__(self, reading: float, rng: random.Random) -> None:
        self.reading = reading  # Wh counted since the meter was installed
        self.rng = rng

    def tick(self, now: datetime) -> list[str]:
        if now.time() != time(0):  # a day ends at midnight; in between, the meter is silent
            return []
        spread = ETOT.growth_spread
        self.reading += ETOT.daily_growth + self.rng.uniform(-spread, spread)
        ended = now - timedelta(seconds=1)  # the last second of the day it reports
        message = {
            "m_name": ETOT.name,
            "m_value": self.reading,
            "m_timestamp": ended.strftime(sensors.TIMESTAMP_FORMAT),
        }
        return [json.dumps(message)]
