"""The exercises whose answer is a value the student works out (a number, a key, a day),
one function per exercise, named ``<notebook>.<exercise>``. The Build-it exercises, which run
the student's code, have a module per layer."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from labkit import api, hbase, kafka, sensors
from labkit.config import Settings
from labkit.exercises.feedback import Checker, Verdict, check_answer


def thrift_port(answer: object, settings: Settings) -> Verdict:
    return check_answer(
        "00.thrift_port",
        answer,
        settings.hbase_thrift_port,
        "look at the `thrift` row: HBase's Thrift server is what happybase talks to.",
    )


def th1_hourly(answer: object) -> Verdict:
    ticks_per_hour = timedelta(hours=1) // sensors.TICK
    return check_answer(
        "01.th1_hourly", answer, ticks_per_hour, "a tick is 15 minutes; how many make an hour?"
    )


def mov1_max_delay_minutes(answer: object) -> Verdict:
    return check_answer(
        "01.mov1_max_delay_minutes",
        answer,
        sensors.TICK // timedelta(minutes=1),
        "a movement is sent when its 15-minute slot ends. How early in the slot can it happen?",
    )


def input_messages(answer: object, settings: Settings) -> Verdict:
    return check_answer(
        "02.input_messages",
        answer,
        kafka.message_count(settings, settings.topics.input),
        "kafka.offsets(settings, topic) gives each partition's first and next offset.",
    )


def window_of_last_second(answer: object) -> Verdict:
    return check_answer(
        "03.window_of_last_second",
        answer,
        "2024-01-03",
        "a 1-day tumbling window covers [midnight, next midnight).",
    )


def row_key(answer: object) -> Verdict:
    return check_answer(
        "04.row_key",
        answer,
        "TH2#2024-01-02 06:30:00",
        "<metric>#<YYYY-MM-DD HH:MM:SS>, as in the table above.",
    )


def largest_leak_day(answer: object, settings: Settings) -> Verdict:
    leak = hbase.read_series(settings, sensors.rest_metric("Wtot"), kind=hbase.TableKind.DAILY)
    return check_answer(
        "06.largest_leak_day",
        answer,
        f"{leak['value'].idxmax():%Y-%m-%d}",
        "read Wtot_AggDayRest with hbase.read_series(..., kind='daily').",
    )


FIRST_DAY = (datetime(2024, 1, 1), datetime(2024, 1, 2) - timedelta(milliseconds=1))


def bucket_average(answer: object, url: str) -> Verdict:
    """Notebook 05: the first point of TH1 on a panel 8 points wide, worked out by hand."""
    hint = (
        "8 buckets over one day are 3 hours wide; average TH1's readings in the first one "
        "(00:00 to 02:59:59.999)."
    )
    with Checker("05.bucket_average", hint) as check:
        if answer is None:
            check.not_yet("no prediction yet: set `bucket_average` above")
        body = api.panel_request(["TH1_raw"], *FIRST_DAY, max_data_points=8)
        expected = api.call(url, "/query", body)[0]["datapoints"][0][0]
        check.require(isinstance(answer, int | float), "a number", f"{answer!r} is not a number")
        check.expect(
            math.isclose(float(answer), expected, rel_tol=1e-9),  # type: ignore[arg-type]
            f"{answer} is the first point the API serves",
            f"{answer} is not the first point",
        )
    return check.verdict


def leak_table(answer: object, url: str, settings: Settings) -> Verdict:
    """Notebook 05: the body of a /query asking for the water leak as a table."""
    hint = (
        "one target, Wtot_AggDayRest, with the payload {'format': 'table'} "
        "(api.panel_request builds the rest), over the whole simulated period."
    )
    with Checker("05.leak_table", hint) as check:
        if answer is None:
            check.not_yet("no request body yet: set `leak_body` above")
        status, served = api.request(url, "/query", answer)
        said = served.get("message") if isinstance(served, dict) else served
        check.require(status == 200, "the API accepts it", f"the API answered {status}: {said}")
        check.require(len(served) == 1, "one answer", f"{len(served)} answers, expected one")
        table = served[0]
        check.expect(table.get("type") == "table", "a table", "a time series, not a table")
        name = table.get("name")
        check.expect(name == "Wtot_AggDayRest", "of the leak", f"of {name}, not of the leak")
        days = len(hbase.read_series(settings, "Wtot_AggDayRest", kind=hbase.TableKind.DAILY))
        rows = len(table.get("rows", []))
        check.expect(rows == days, f"all {days} days", f"{rows} rows, expected {days} days")
    return check.verdict


def late_at_watermark(answer: object) -> Verdict:
    return check_answer(
        "03.late_at_watermark",
        answer,
        True,
        "read the lab's rule again (part 1, 'Two answers'): which side of the watermark does "
        "a reading exactly at it fall on? Not the window's rule: a daily window alone would "
        "still take this reading, its day is open.",
    )
