"""The oracle on hand-made messages (no services): watermark, lateness, daily metrics."""

from datetime import date, datetime, timedelta

import pandas as pd
import pytest

from labkit import oracle, sensors

T0 = datetime(2024, 1, 1)
SECOND = timedelta(seconds=1)


def _frame(rows):
    """rows: (sensor, value, timestamp, sent_at[, valid])."""
    records = []
    for row in rows:
        sensor, value, stamp, sent, *rest = row
        valid = rest[0] if rest else True
        records.append((sensor, value, stamp, sent, valid, min(stamp, sent)))
    frame = pd.DataFrame.from_records(records, columns=oracle.COLUMNS)
    for column in ("timestamp", "sent_at", "trusted_time"):
        frame[column] = pd.to_datetime(frame[column])
    return frame


def test_lateness_follows_the_watermark_of_the_messages_before():
    h = timedelta(hours=1)
    frame = oracle.with_watermark(
        _frame(
            [
                ("TH1", 20.0, T0 + 2 * h, T0 + 2 * h),  # first: no watermark yet, never late
                ("TH1", 21.0, T0 + h, T0 + 2 * h),  # 1 h behind a 15 min watermark: late
                ("MOV1", 1.0, T0 + 2 * h - timedelta(minutes=14), T0 + 2 * h),  # within 15 min
                ("TH1", 22.0, T0 + 2 * h - timedelta(minutes=15), T0 + 2 * h),  # at it: late
            ]
        )
    )
    assert frame["watermark"].isna().tolist() == [True, False, False, False]
    assert frame["late"].tolist() == [False, True, False, True]
    assert frame["offset"].tolist() == [0, 1, 2, 3]


def test_invalid_messages_are_never_late_but_their_trusted_time_moves_the_watermark():
    h = timedelta(hours=1)
    frame = oracle.with_watermark(
        _frame(
            [
                ("XX", 0.0, T0 + 5 * h, T0 + 5 * h, False),
                ("TH1", 20.0, T0 + h, T0 + 5 * h),
            ]
        )
    )
    assert frame["late"].tolist() == [False, True]


def test_daily_metrics_include_diffs_and_rests_only_with_yesterday():
    day1, day2 = T0, T0 + timedelta(days=1)
    readings = pd.DataFrame(
        [
            ("Etot", 1000.0, day1 - timedelta(seconds=1)),  # the day before: no diff for it
            ("Etot", 1100.0, day2 - timedelta(seconds=1)),
            ("HVAC1", 30.0, day1),
            ("HVAC2", 20.0, day1 + timedelta(hours=1)),
            ("TH1", 10.0, day1),
            ("TH1", 20.0, day1 + timedelta(hours=1)),
            ("W1", 0.5, day1),
        ],
        columns=["sensor", "value", "timestamp"],
    )
    readings["timestamp"] = pd.to_datetime(readings["timestamp"])
    daily = oracle.daily(readings).set_index(["metric", "day"])
    d1 = date(2024, 1, 1)
    assert daily.loc[("TH1", d1), ["kind", "value", "readings"]].tolist() == ["AVG", 15.0, 2]
    assert daily.loc[("Etot_DailyDiff", d1), "value"] == 100.0
    assert daily.loc[("Etot_DailyDiff", d1), "readings"] == 2
    rest = daily.loc[("Etot_AggDayRest", d1)]
    assert (rest["value"], rest["readings"]) == (50.0, 4)
    # Wtot has no readings: neither its diff nor the leak exists; W1's sum does.
    assert ("Wtot_DailyDiff", d1) not in daily.index
    assert daily.loc[("W1", d1), "value"] == pytest.approx(0.5)
    assert ("Etot_DailyDiff", date(2023, 12, 31)) not in daily.index


def test_late_readings_count_their_seconds_in_64_bits_from_the_year_1():
    late_1900 = sensors.Reading("TH1", 20.0, datetime(1900, 1, 1), T0)
    late_year_1 = sensors.Reading("TH2", 20.0, datetime(1, 1, 1), T0 + timedelta(seconds=1))
    first = sensors.Reading("W1", 0.5, T0, T0)
    expected = oracle.expected(oracle.messages_frame([first, late_1900, late_year_1]))
    late = expected.late.set_index("sensor")
    watermark = T0 - timedelta(minutes=15)
    assert late.loc["TH1", "behind_watermark_s"] == (watermark - datetime(1900, 1, 1)) // SECOND
    assert late.loc["TH1", "delay_s"] == (T0 - datetime(1900, 1, 1)) // SECOND > 2**31
    assert late.loc["TH2", "delay_s"] == (T0 - datetime(1, 1, 1)) // SECOND + 1
    assert late.loc["TH2", "timestamp"] == pd.Timestamp("0001-01-01")
