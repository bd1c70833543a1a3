"""An independent oracle, in plain pandas: what the pipeline must produce from what was sent.

It recomputes, from the simulator's own messages and without Flink, the lateness of every
reading (by walking the watermark over the messages in the order they were sent), every daily
aggregate, each meter's daily difference and rest, and the late set. Tests compare HBase with it.
"""

from __future__ import annotations

import calendar
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from labkit import sensors
from labkit.flink.parsing import SENSOR_JSON

TIME_UNIT = "datetime64[ms]"
NO_TIME = pd.Timestamp("1970-01-01").as_unit("ms")
WATERMARK_DELAY = timedelta(minutes=15)  # as in labkit.flink

COLUMNS = ["sensor", "value", "timestamp", "sent_at", "valid", "trusted_time"]


@dataclass(frozen=True)
class Sent:
    """One message as it was sent to ``input``: any bytes, not only a sensor's."""

    body: bytes | None  # the Kafka record's value (None: a tombstone)
    sent_at: datetime  # its Kafka record timestamp
    reading: sensors.Reading | None = None  # the valid reading it carries; None for junk


def messages_frame(readings: Iterable[sensors.Reading]) -> pd.DataFrame:
    """The simulator's readings as sent, one row per message, in offset order."""
    return sent_frame(Sent(r.message(), r.sent_at, r) for r in readings)


def sent_frame(messages: Iterable[Sent]) -> pd.DataFrame:
    """Any stream of messages as sent, valid readings and junk, one row per message in offset
    order.

    ``valid``: the message carries a reading (junk has no sensor, value or timestamp);
    ``trusted_time``: the event time the Flink source gives it (``trusted_time()``), NaT when it
    trusts none, which the watermark reads as 1970. Junk with a trusted time moves the watermark
    as much as a reading does.
    """
    rows = [
        (
            m.reading.sensor if m.reading else None,
            m.reading.value if m.reading else float("nan"),
            m.reading.timestamp if m.reading else None,
            m.sent_at,
            m.reading is not None,
            trusted_time(m.body, m.sent_at),
        )
        for m in messages
    ]
    frame = pd.DataFrame.from_records(rows, columns=COLUMNS)
    # Milliseconds, as Flink and Kafka count: nanoseconds would end before the year 1677, and
    # the job accepts readings from the year 1 on.
    for column in ("timestamp", "sent_at", "trusted_time"):
        frame[column] = pd.Series(frame[column].to_numpy(), dtype=TIME_UNIT)
    return frame


# --------------------------------------------------------------------------------------
# The event time the Flink source trusts, reimplemented from the semantics of its SQL
# --------------------------------------------------------------------------------------

# Java's "$" (Flink's REGEXP is java.util.regex's find()) also matches before one final line
# terminator, of which Java knows more than Python's "$" does.
_JAVA_END = r"(?=(?:\r\n|[\n\r\u0085\u2028\u2029])?\Z)"
# A message in the sensors' own shape, the pattern whose time the job cuts out 20 characters
# before the end (the syntax of a pattern is the same in Java and Python, but for the very
# end: \z in Java, \Z in Python).
_SENSOR_SHAPE = re.compile(SENSOR_JSON.removesuffix(r"\z") + r"\Z")
_TIME = r"([0-9]{4})-([0-9]{2})-([0-9]{2}) ([0-9]{2}):([0-9]{2}):([0-9]{2})"
_WELL_FORMED_TIME = re.compile("^" + _TIME + _JAVA_END)
_TIME_FIELDS = re.compile(_TIME)
_JSON_SPACE = " \t\r\n"
# Jackson (Flink's JSON parser) refuses numbers longer than this (StreamReadConstraints).
_MAX_NUMBER_CHARS = 1000


def trusted_time(body: bytes | None, sent_at: datetime) -> datetime | None:
    """The event time the Flink source (``ts`` of ``labkit.flink.source_table``) gives a
    message, from its raw bytes and its Kafka timestamp; None where it trusts none (1970).

    A well-formed time (exactly ``YYYY-MM-DD HH:MM:SS``), cut out of a message in the
    sensors' shape or else read as the JSON field ``m_timestamp``, parsed as Flink's
    TO_TIMESTAMP parses it and capped at the send time. Exact for times from 1583 on (Java's
    fallback parser counts in the Julian calendar before); None for times before the year 1.
    """
    if body is None:
        return None
    # CAST(BYTES AS STRING): bytes that are not UTF-8 become replacement characters.
    text = body.decode("utf-8", errors="replace")
    stamp = text[-21:-2] if _SENSOR_SHAPE.search(text) else _json_field(text, "m_timestamp")
    if stamp is None or not _WELL_FORMED_TIME.search(stamp):
        return None
    # The Kafka timestamp has millisecond precision.
    sent = sent_at.replace(microsecond=sent_at.microsecond // 1000 * 1000)
    try:
        parsed = _to_timestamp(stamp)
    except OverflowError:  # past the year 9999: later than any send time
        return sent
    return None if parsed is None else min(parsed, sent)


def _refuse(constant: str) -> float:
    raise ValueError(f"{constant} is not JSON")


def _short_number(text: str) -> float:
    if len(text) > _MAX_NUMBER_CHARS:
        raise ValueError("number too long")
    return float(text)


_JACKSON = json.JSONDecoder(
    parse_constant=_refuse, parse_float=_short_number, parse_int=_short_number
)


def _json_field(text: str, field: str) -> str | None:
    """JSON_VALUE(text, '$.field') for a string field, as Flink computes it with Jackson:
    leading white space skipped, anything after the first JSON value ignored, NaN and
    Infinity refused, the last of duplicate keys kept; None for any other outcome."""
    try:
        value, _end = _JACKSON.raw_decode(text, len(text) - len(text.lstrip(_JSON_SPACE)))
    except (ValueError, RecursionError):
        return None
    found = value.get(field) if isinstance(value, dict) else None
    return found if isinstance(found, str) else None


def _to_timestamp(text: str) -> datetime | None:
    """Flink's TO_TIMESTAMP(text, 'yyyy-MM-dd HH:mm:ss') of a well-formed time.

    First java.time with its SMART resolver: a day past the month's end (up to 31) becomes the
    month's last day, 24:00:00 the next midnight. If that fails, java.sql.Timestamp.valueOf on
    the trimmed text: month 1..12 and day 1..31, the rest lenient (Feb 30 is Mar 1, 25:00 is
    1:00 the next day, second 60 the next minute).
    """
    exact = _TIME_FIELDS.fullmatch(text)
    if exact:
        year, month, day, hour, minute, second = map(int, exact.groups())
        end_of_day = (hour, minute, second) == (24, 0, 0)
        if (
            year >= 1
            and 1 <= month <= 12
            and 1 <= day <= 31
            and (end_of_day or (hour < 24 and minute < 60 and second < 60))
        ):
            last = calendar.monthrange(year, month)[1]
            return datetime(year, month, min(day, last)) + timedelta(
                hours=hour, minutes=minute, seconds=second
            )
    # Java's trim(): every character up to U+0020 off both ends.
    loose = _TIME_FIELDS.fullmatch(text.strip("".join(map(chr, range(33)))))
    if not loose:
        return None
    year, month, day, hour, minute, second = map(int, loose.groups())
    if year < 1 or not (1 <= month <= 12 and 1 <= day <= 31):
        return None
    return datetime(year, month, 1) + timedelta(
        days=day - 1, hours=hour, minutes=minute, seconds=second
    )


@dataclass(frozen=True)
class Expected:
    raw: pd.DataFrame  # sensor, timestamp, value: valid readings that arrived on time
    # sensor, timestamp, value, sent_at, watermark, offset, behind_watermark_s, delay_s
    late: pd.DataFrame
    daily: pd.DataFrame  # metric, day, kind, value, readings
    rollups: pd.DataFrame  # sensor, resolution, period_start, sum, count, offset_sum


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
    late = late.assign(
        behind_watermark_s=_whole_seconds(late["watermark"] - late["timestamp"]),
        delay_s=_whole_seconds(late["sent_at"] - late["timestamp"]),
    )
    raw = on_time[["sensor", "timestamp", "value"]].reset_index(drop=True)
    return Expected(
        raw=raw, late=late.reset_index(drop=True), daily=daily(on_time), rollups=rollups(raw)
    )


def _whole_seconds(spans: pd.Series) -> pd.Series:
    """Time spans in whole seconds, truncated towards zero, as 64-bit integers."""
    milliseconds = spans.astype("timedelta64[ms]").astype("int64")
    return np.sign(milliseconds) * (milliseconds.abs() // 1000)


def rollups(readings: pd.DataFrame) -> pd.DataFrame:
    """Per sensor and period: the sum and count of the readings, and their summed offsets
    (seconds) from the period's start."""
    frames = []
    for resolution, period in sensors.ROLLUP_PERIODS.items():
        start = readings["timestamp"].dt.floor(period)
        offsets = (readings["timestamp"] - start).dt.total_seconds().astype("int64")
        grouped = readings.assign(period_start=start, offset=offsets).groupby(
            ["sensor", "period_start"]
        )
        frame = grouped.agg(sum=("value", "sum"), count=("value", "size"),
                            offset_sum=("offset", "sum")).reset_index()  # fmt: skip
        frames.append(frame.assign(resolution=resolution))
    return pd.concat(frames, ignore_index=True)


def daily(readings: pd.DataFrame) -> pd.DataFrame:
    """Every daily metric from on-time readings (sensor, timestamp, value)."""
    readings = readings.assign(day=readings["timestamp"].dt.floor("D"))
    rows: list[pd.DataFrame] = []
    for sensor in sensors.CATALOGUE:
        mine = readings[readings["sensor"] == sensor.name]
        if sensor.kind is not sensors.SensorKind.METER:
            grouped = mine.groupby("day")["value"]
            function = "mean" if sensor.aggregate is sensors.Aggregate.AVG else "sum"
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
            {"metric": sensors.diff_metric(meter.name), "kind": sensors.Aggregate.DIFF,
             "value": diff, "readings": meter_readings}
        ),
        pd.DataFrame(
            {
                "metric": sensors.rest_metric(meter.name),
                "kind": sensors.Aggregate.REST,
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
