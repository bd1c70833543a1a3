"""An independent oracle, in plain pandas: what the pipeline must produce from what was sent.

It recomputes, from the simulator's own messages and without Flink, the lateness of every
reading (by walking the watermark over the messages in the order they were sent), every daily
aggregate, each meter's daily difference and rest, and the late set. Tests compare HBase with it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd

from labkit import sensors

NO_TIME = pd.Timestamp("1970-01-01")
WATERMARK_DELAY = pd.Timedelta(minutes=15)  # as in labkit.flink

COLUMNS = ["sensor", "value", "timestamp", "sent_at", "valid", "trusted_time"]


def messages_frame(readings: Iterable[sensors.Reading]) -> pd.DataFrame:
    """The simulator's readings as sent, one row per message, in offset order.

    ``valid``: the message passes validation; ``trusted_time``: the event time the source
    trusts for the watermark (NaT for messages whose time is malformed or in the future).
    """
    rows = [
        (
            r.sensor,
            r.value,
            r.timestamp,
            r.sent_at,
            True,
            r.timestamp if r.timestamp <= r.sent_at else None,
        )
        for r in readings
    ]
    frame = pd.DataFrame.from_records(rows, columns=COLUMNS)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"])
    frame["sent_at"] = pd.to_datetime(frame["sent_at"])
    frame["trusted_time"] = pd.to_datetime(frame["trusted_time"])
    return frame


def _trusted(timestamp, sent_at):
    """The event time the Flink source gives a well-formed message: capped at its send time."""
    return min(timestamp, sent_at)


@dataclass(frozen=True)
class Expected:
    raw: pd.DataFrame  # sensor, timestamp, value: valid readings that arrived on time
    late: pd.DataFrame  # sensor, timestamp, value, sent_at, watermark, offset
    daily: pd.DataFrame  # metric, day, kind, value, readings


def with_watermark(messages: pd.DataFrame) -> pd.DataFrame:
    """Add, for each message, the watermark when it arrived and whether it is late.

    The watermark after a message is the largest trusted event time so far minus the delay
    (untrusted times count as 1970, as in the Flink source); a valid reading is late when its
    event time is at or before the watermark that preceded it.
    """
    frame = messages.reset_index(drop=True).copy()
    frame["offset"] = frame.index
    event_time = frame["trusted_time"].fillna(NO_TIME)
    frame["watermark"] = (event_time.cummax() - WATERMARK_DELAY).shift(1)
    frame["late"] = (
        frame["valid"] & frame["watermark"].notna() & (frame["timestamp"] <= frame["watermark"])
    )
    return frame


def expected(messages: pd.DataFrame) -> Expected:
    frame = with_watermark(messages)
    on_time = frame[frame["valid"] & ~frame["late"]]
    late = frame[frame["late"]][["sensor", "timestamp", "value", "sent_at", "watermark", "offset"]]
    raw = on_time[["sensor", "timestamp", "value"]].reset_index(drop=True)
    return Expected(raw=raw, late=late.reset_index(drop=True), daily=daily(on_time))


def daily(readings: pd.DataFrame) -> pd.DataFrame:
    """Every daily metric from on-time readings (sensor, timestamp, value)."""
    readings = readings.assign(day=readings["timestamp"].dt.floor("D"))
    rows: list[pd.DataFrame] = []
    for sensor in sensors.CATALOGUE:
        mine = readings[readings["sensor"] == sensor.name]
        if sensor.kind != "meter":
            grouped = mine.groupby("day")["value"]
            function = "mean" if sensor.aggregate == "AVG" else "sum"
            rows.append(
                pd.DataFrame(
                    {
                        "metric": sensor.name,
                        "kind": sensor.aggregate,
                        "value": grouped.agg(function),
                        "readings": grouped.size(),
                    }
                )
            )
            continue
        rows += _meter_metrics(sensor, mine, readings)
    result = pd.concat(rows).reset_index(names="day")
    result["day"] = result["day"].dt.date
    return result[["metric", "day", "kind", "value", "readings"]].sort_values(
        ["metric", "day"], ignore_index=True
    )


def _meter_metrics(
    meter: sensors.Sensor, mine: pd.DataFrame, readings: pd.DataFrame
) -> list[pd.DataFrame]:
    """A meter's daily difference (today's reading minus yesterday's) and its rest."""
    per_day = mine.groupby("day")["value"].agg(["max", "size"])
    yesterday = per_day.shift(1, freq="D")
    both = per_day.join(yesterday, rsuffix="_yesterday", how="inner")
    diff = both["max"] - both["max_yesterday"]
    meter_readings = both["size"] + both["size_yesterday"]

    parts = readings[readings["sensor"].isin(meter.parts)].groupby("day")["value"]
    parts_sum, parts_count = parts.sum(), parts.size()
    with_parts = diff.index.intersection(parts_sum.index)
    return [
        pd.DataFrame(
            {"metric": sensors.diff_metric(meter.name), "kind": "DIFF", "value": diff,
             "readings": meter_readings}
        ),
        pd.DataFrame(
            {
                "metric": sensors.rest_metric(meter.name),
                "kind": "REST",
                "value": diff[with_parts] - parts_sum[with_parts],
                "readings": meter_readings[with_parts] + parts_count[with_parts],
            }
        ),
    ]  # fmt: skip


def first_open_day(messages: pd.DataFrame) -> pd.Timestamp:
    """The first day whose windows the final watermark has not closed.

    A daily window ends at the next midnight and fires once the watermark reaches it (less a
    millisecond); in a live run that stopped, the days before the returned one are complete.
    """
    event_time = messages["trusted_time"].fillna(NO_TIME)
    final_watermark = event_time.max() - WATERMARK_DELAY
    return (final_watermark + pd.Timedelta(milliseconds=1)).floor("D")
