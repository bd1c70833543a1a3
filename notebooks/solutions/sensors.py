"""Notebook 01."""

from datetime import timedelta

from labkit import sensors

# One TH1 reading every N ticks: a tick is 15 minutes, so four make an hour.
TH1_HOURLY = timedelta(hours=1) // sensors.TICK
# A movement is sent when its 15-minute slot ends: one at the slot's first second is 15 min old.
MOV1_MAX_DELAY_MINUTES = 15
