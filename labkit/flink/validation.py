"""Validation: the reasons a message can be invalid, and the SQL that finds the first one.

``Reason`` lists every reason in the order the job checks them; ``CHECKS`` gives each its
SQL condition, and ``checked_view`` turns them into one ``CASE``. A message gets the
first reason whose condition holds, so each condition may assume that the earlier ones did
not. The texts are what ``iot_invalid`` stores; the tests read them from here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from labkit import sensors
from labkit.flink.parsing import TIME_FORMAT
from labkit.flink.sql import double, indented, quote, quoted_list, statement

MAX_MESSAGE_CHARS = 1024
_LARGEST_DOUBLE = "1.7976931348623157E308"


class Reason(StrEnum):
    """Why a message is invalid, in the order of the checks."""

    EMPTY = "empty message"
    TOO_LONG = f"message longer than {MAX_MESSAGE_CHARS} characters"
    NOT_UTF8 = "not valid UTF-8"
    NAN_OR_INFINITY = "NaN or Infinity, which JSON does not allow"
    NOT_JSON_OBJECT = "not a JSON object"
    MISSING_NAME = "missing m_name"
    MISSING_VALUE = "missing m_value"
    MISSING_TIMESTAMP = "missing m_timestamp"
    NAME_NOT_STRING = "m_name is not a string"
    UNKNOWN_SENSOR = "unknown sensor"
    VALUE_NOT_NUMBER = "m_value is not a number"
    VALUE_NOT_FINITE = "m_value is not a finite number"
    TIMESTAMP_NOT_STRING = "m_timestamp is not a string"
    TIMESTAMP_AFTER_SENDING = "m_timestamp is later than the message was sent"
    TIMESTAMP_MALFORMED = "m_timestamp is not a valid YYYY-MM-DD HH:MM:SS time"
    # One text per sensor with a range: see ``range_reason``.
    OUT_OF_RANGE = "m_value outside the range"


def range_reason(sensor: sensors.Sensor) -> str:
    """The reason given to a value outside ``sensor``'s physical range."""
    shown = f"{sensor.valid_min:g}..{sensor.valid_max:g}".replace("inf", "∞")
    return f"{Reason.OUT_OF_RANGE} of {sensor.name} ({shown})"


def has_range(sensor: sensors.Sensor) -> bool:
    return math.isfinite(sensor.valid_min) or math.isfinite(sensor.valid_max)


def reasons() -> list[str]:
    """Every text the job can store as a reason, in the order of the checks."""
    fixed = [reason.value for reason in Reason if reason is not Reason.OUT_OF_RANGE]
    return fixed + [range_reason(s) for s in sensors.CATALOGUE if has_range(s)]


@dataclass(frozen=True)
class Check:
    """One rule: a message fails it when ``condition`` holds (and no earlier rule failed)."""

    reason: str
    condition: str  # SQL; continuation lines start with AND or OR
    note: str = ""  # a comment shown above it in the SQL (lines of it)

    def sql(self) -> str:
        comment = "".join(f"-- {line}\n" for line in self.note.splitlines())
        return f"{comment}WHEN {self.condition}\n  THEN {quote(self.reason)}"


# NaN, Infinity, -Infinity, +Infinity where JSON expects a value (after a colon, a comma or
# a bracket, before a comma or a closing bracket), as Python and JavaScript write them.
_NON_NUMBER = r"(?<=[:,\[])\s*[-+]?(NaN|Infinity)(?=\s*[,}\]])"
_FIELD_MISSING = "NOT (name_found AND value_found AND time_found)"
_TIME_DIFFERS = f"DATE_FORMAT(ts, '{TIME_FORMAT}') <> m_timestamp"

# Every rule but the ranges; the order of the list is the order of the checks (and of
# ``Reason``).
CHECKS: list[Check] = [
    Check(Reason.EMPTY, "body IS NULL OR CHAR_LENGTH(TRIM(message)) = 0"),
    Check(Reason.TOO_LONG, f"CHAR_LENGTH(message) > {MAX_MESSAGE_CHARS}"),
    Check(
        Reason.NOT_UTF8,
        "NOT sensor_shape AND ENCODE(message, 'UTF-8') <> body",
        note="Text of the sensors' shape is ASCII.",
    ),
    Check(
        Reason.NAN_OR_INFINITY,
        f"{_FIELD_MISSING}\n AND message IS NOT JSON OBJECT"
        f"\n AND REGEXP_REPLACE(message, '{_NON_NUMBER}', '0') IS JSON OBJECT",
        note="The costly JSON checks run only when a field is missing.\n"
        "NaN or Infinity is the reason when the parser accepts the message once they are numbers.",
    ),
    Check(Reason.NOT_JSON_OBJECT, f"{_FIELD_MISSING}\n AND message IS NOT JSON OBJECT"),
    Check(Reason.MISSING_NAME, "NOT name_found"),
    Check(Reason.MISSING_VALUE, "NOT value_found"),
    Check(Reason.MISSING_TIMESTAMP, "NOT time_found"),
    Check(Reason.NAME_NOT_STRING, "m_name IS NULL"),
    Check(
        Reason.UNKNOWN_SENSOR, f"m_name NOT IN ({quoted_list(s.name for s in sensors.CATALOGUE)})"
    ),
    Check(Reason.VALUE_NOT_NUMBER, "m_value IS NULL"),
    Check(Reason.VALUE_NOT_FINITE, f"NOT m_value BETWEEN -{_LARGEST_DOUBLE} AND {_LARGEST_DOUBLE}"),
    Check(Reason.TIMESTAMP_NOT_STRING, "m_timestamp IS NULL"),
    Check(
        Reason.TIMESTAMP_AFTER_SENDING,
        f"{_TIME_DIFFERS}\n AND TO_TIMESTAMP(m_timestamp, '{TIME_FORMAT}') > sent_at",
        note="A valid time is exactly the source's event time, written back as text.",
    ),
    Check(Reason.TIMESTAMP_MALFORMED, _TIME_DIFFERS),
]


def range_checks() -> list[Check]:
    """A rule for each sensor with a physical range, from the catalogue."""
    checks: list[Check] = []
    for sensor in sensors.CATALOGUE:
        if not has_range(sensor):
            continue
        bounds = []
        if math.isfinite(sensor.valid_min):
            bounds.append(f"m_value < {double(sensor.valid_min)}")
        if math.isfinite(sensor.valid_max):
            bounds.append(f"m_value > {double(sensor.valid_max)}")
        condition = f"m_name = {quote(sensor.name)} AND ({' OR '.join(bounds)})"
        # Compared with a DECIMAL literal (0.0), Flink would order -0.0 below 0.
        note = "" if checks else "The bounds are DOUBLE literals (E0), which hold -0.0 = 0.0."
        checks.append(Check(range_reason(sensor), condition, note))
    return checks


def checked_view() -> str:
    """``input_checked``: each message with ``problem``, the first reason it fails (NULL when
    it is a valid reading)."""
    whens = [check.sql() for check in [*CHECKS, *range_checks()]]
    return statement(
        f"""
        SELECT *, CASE
          {indented(whens, "          ")}
          ELSE NULL
        END AS problem
        FROM input_fields
        """
    )
