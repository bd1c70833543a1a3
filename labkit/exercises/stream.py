"""Notebook 03's Build it: the daily windows written in Flink SQL by the student, run on the
mini-cluster, and checked row by row against ``labkit.oracle``.

Each check sends a few simulated days (late W1 readings included) to an ``input`` of its own
(``labkit.sandbox``), declares the ``readings`` table over it (``runtime.readings_table``), runs
the student's query to the end of that input and compares every row with what the oracle
computes from the same messages, in plain pandas.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from contextlib import contextmanager

import pandas as pd

from labkit import flink, kafka, oracle, sandbox, sensors
from labkit.config import Settings
from labkit.exercises.feedback import Checker, Verdict
from labkit.flink import runtime

SCENARIO = sensors.Scenario(days=3, seed=31)
SHOWN = 3  # rows of each kind of difference the feedback names


def _expected() -> pd.DataFrame:
    return oracle.expected(oracle.messages_frame(sensors.simulate(SCENARIO))).daily


@contextmanager
def _readings(settings: Settings) -> Iterator[object]:
    """A TableEnvironment with ``readings`` over an input of the check's own, filled with
    ``SCENARIO``; the topics are removed afterwards."""
    mine = sandbox.sandbox_settings(settings, "check")
    kafka.ensure_topics(mine, [mine.topics.input], partitions=1)
    try:
        kafka.produce_readings(mine, sensors.simulate(SCENARIO))
        env = flink.table_environment(mine)
        env.execute_sql(runtime.readings_table(mine))
        yield env
    finally:
        kafka.delete_topics(mine, [mine.topics.input])


def _untouched(sql: object) -> bool:
    """The skeleton: no query yet, or ``...`` still where the student writes."""
    if not isinstance(sql, str):
        return sql is None or sql is Ellipsis
    code = re.sub(r"--[^\n]*", "", sql)
    return not code.strip() or "..." in code


def _run(check: Checker, sql: object, settings: Settings, columns: list[str]) -> pd.DataFrame:
    if _untouched(sql):
        check.not_yet("the query still has `...` in it: complete it")
    with _readings(settings) as env:
        try:
            got = runtime.collect(env, str(sql))
        except Exception as error:  # noqa: BLE001 - what Flink says about the query
            check.fail(f"Flink could not run the query: {_flink_says(error)}")
    missing = [c for c in columns if c not in got.columns]
    check.require(
        not missing,
        f"the query returns the columns {', '.join(columns)}",
        f"the query returns the columns {', '.join(got.columns)}; the check needs "
        f"{', '.join(columns)} (name them with AS)",
    )
    got = got.assign(day=pd.to_datetime(got["day"], errors="coerce").dt.date)
    return got


def _flink_says(error: Exception) -> str:
    """The first line of Flink's message, without Java's class names."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    said = next((line for line in lines if "Exception:" in line), lines[0] if lines else "")
    return re.sub(r"^[:\s]*([\w.$]+(Exception|Error): )+", "", said)[:400]


def _rows(count: int) -> str:
    return f"{count} row" if count == 1 else f"{count} rows"


def _number(value: object) -> str:
    return "nothing (NULL)" if value is None or value != value else f"{value:,.6g}"


def _compare(
    check: Checker, expected: pd.DataFrame, got: pd.DataFrame, keys: list[str], what: str
) -> None:
    """Row by row: rows missing, rows too many, values and counts that differ."""
    twice = got[got.duplicated(keys, keep=False)]
    check.require(
        twice.empty,
        f"one row per {' and '.join(keys)}",
        f"{len(twice)} rows share their {' and '.join(keys)} with another, e.g. "
        + ", ".join(" ".join(map(str, row)) for row in twice[keys].head(SHOWN).values)
        + f": the check wants one row per {' and '.join(keys)}",
    )
    table = expected.merge(got, on=keys, how="outer", suffixes=("", "_got"), indicator=True)
    table = table.sort_values(keys, key=lambda column: column.astype(str))

    def name(row: pd.Series) -> str:
        return " ".join(str(row[key]) for key in keys)

    missing = table[table["_merge"] == "left_only"]
    extra = table[table["_merge"] == "right_only"]
    check.expect(
        missing.empty,
        f"a row for each of the {len(expected)} {what}",
        f"{_rows(len(missing))} missing (of {len(expected)} {what}), e.g. "
        + ", ".join(name(row) for _, row in missing.head(SHOWN).iterrows()),
    )
    examples = extra.head(SHOWN).iterrows()
    check.expect(
        extra.empty,
        "no row the oracle does not expect",
        f"{_rows(len(extra))} the oracle does not expect, e.g. "
        + ", ".join(f"{name(row)} ({_number(row['value_got'])})" for _, row in examples),
    )
    both = table[table["_merge"] == "both"]
    differ = both[[not _close(e, g) for e, g in zip(both["value"], both["value_got"], strict=True)]]
    check.expect(
        differ.empty,
        f"every value of the {len(both)} rows present is the oracle's",
        f"{len(differ)} of {len(both)} values differ: "
        + "; ".join(
            f"{name(row)}: expected {_number(row['value'])} "
            f"(from {_number(row['readings'])} readings), got {_number(row['value_got'])}"
            + (f" (from {_number(row['readings_got'])})" if "readings_got" in row else "")
            for _, row in differ.head(SHOWN).iterrows()
        ),
    )


def _close(expected: float, got: object) -> bool:
    try:
        value = float(got)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return math.isclose(expected, value, rel_tol=1e-9, abs_tol=1e-9)


def daily_windows(sql: object, settings: Settings) -> Verdict:
    """The daily AVG (temperatures) and SUM (energy users, water, movements) of each sensor."""
    hint = (
        "one row per sensor and day: a window TVF of one day over `readings` on `ts`, grouped "
        "by the sensor and the window; which sensors are averaged and which added up is in "
        "the catalogue's `daily aggregate` column. Meters are the next exercise."
    )
    with Checker("03.daily_windows", hint) as check:
        got = _run(check, sql, settings, ["metric", "day", "value"])
        daily = _expected()
        expected = daily[daily["kind"].isin([sensors.Aggregate.AVG, sensors.Aggregate.SUM])]
        _compare(check, expected, got, ["metric", "day"], "sensor-days")
    return check.verdict


def meter_difference(sql: object, settings: Settings) -> Verdict:
    """Etot's daily difference: its reading of the day minus its reading of the day before."""
    metric = sensors.diff_metric("Etot")
    hint = (
        "Etot sends one cumulative reading a day, so a day alone cannot give its difference: "
        "a window has to hold two days' readings, or each day has to meet the day before. "
        "A day without a day before has no difference."
    )
    with Checker("03.meter_difference", hint) as check:
        got = _run(check, sql, settings, ["day", "value"])
        daily = _expected()
        expected = daily[daily["metric"] == metric].drop(columns="metric")
        _compare(check, expected, got, ["day"], f"days of {metric}")
    return check.verdict
