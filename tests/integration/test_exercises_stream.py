"""Notebook 03's Build it checks against the real Flink: the reference solutions pass, the
untouched skeletons say "not yet", and wrong queries are told what is off."""

import pytest

from labkit.exercises import Status, stream
from notebooks.solutions import flink_sql

SKELETON = """
SELECT ...            -- metric, `day`, `value`, readings
FROM ...              -- 1-day windows over `readings`, on ts
...
"""

# Every sensor added up, temperatures too.
SUM_FOR_TEMPERATURES = flink_sql.DAILY_SQL.replace(
    "CASE WHEN m_name IN ('TH1', 'TH2') THEN AVG(m_value) ELSE SUM(m_value) END", "SUM(m_value)"
)
# Windows of two days that slide by one: each reading is counted on two days.
HOP_OF_THE_WRONG_SIZE = flink_sql.DAILY_SQL.replace(
    "TUMBLE(TABLE readings, DESCRIPTOR(ts), INTERVAL '1' DAY)",
    "HOP(TABLE readings, DESCRIPTOR(ts), INTERVAL '1' DAY, INTERVAL '2' DAY)",
)
# Days grouped without an event-time window: the late W1 readings are counted too.
NO_WINDOW = """
SELECT m_name AS metric, CAST(ts AS DATE) AS `day`,
       CASE WHEN m_name IN ('TH1', 'TH2') THEN AVG(m_value) ELSE SUM(m_value) END AS `value`,
       COUNT(*) AS readings
FROM readings
WHERE m_name IN ('TH1', 'TH2', 'HVAC1', 'HVAC2', 'MiAC1', 'MiAC2', 'W1', 'MOV1')
GROUP BY m_name, CAST(ts AS DATE)
"""
# A meter's difference within one day: it sends one reading a day, so there is nothing to
# subtract but itself.
WITHOUT_YESTERDAY = """
SELECT CAST(window_start AS DATE) AS `day`, MAX(m_value) - MIN(m_value) AS `value`
FROM TABLE(TUMBLE(TABLE readings, DESCRIPTOR(ts), INTERVAL '1' DAY))
WHERE m_name = 'Etot'
GROUP BY window_start, window_end
"""
# The difference taken also where there is no day before: a row without a value.
FIRST_DAY_WITHOUT_YESTERDAY = flink_sql.METER_SQL.replace(
    "WHERE today IS NOT NULL AND yesterday IS NOT NULL", "WHERE today IS NOT NULL"
)


def test_the_reference_solutions_pass(stack):
    for verdict in (
        stream.daily_windows(flink_sql.DAILY_SQL, stack),
        stream.meter_difference(flink_sql.METER_SQL, stack),
    ):
        assert verdict.status is Status.PASSED, verdict.text()


@pytest.mark.parametrize("query", [SKELETON, None, "  -- nothing yet\n"])
def test_the_skeletons_are_not_yet_checked(stack, query):
    assert stream.daily_windows(query, stack).status is Status.NOT_YET
    assert stream.meter_difference(query, stack).status is Status.NOT_YET


def test_temperatures_added_up_are_wrong_and_the_feedback_names_a_temperature(stack):
    verdict = stream.daily_windows(SUM_FOR_TEMPERATURES, stack)
    assert verdict.status is Status.WRONG
    wrong = "\n".join(verdict.wrong)
    assert "TH1" in wrong and "expected" in wrong


def test_two_day_windows_count_each_reading_twice(stack):
    verdict = stream.daily_windows(HOP_OF_THE_WRONG_SIZE, stack)
    assert verdict.status is Status.WRONG
    assert any("not expect" in line for line in verdict.wrong)  # a day before the first


def test_days_without_an_event_time_window_count_the_late_readings(stack):
    verdict = stream.daily_windows(NO_WINDOW, stack)
    assert verdict.status is Status.WRONG
    assert any("W1" in line and "differ" in line for line in verdict.wrong), verdict.text()


def test_a_meter_difference_without_yesterday_is_wrong(stack):
    verdict = stream.meter_difference(WITHOUT_YESTERDAY, stack)
    assert verdict.status is Status.WRONG
    assert any("differ" in line for line in verdict.wrong), verdict.text()


def test_a_first_day_without_a_day_before_is_a_row_too_many(stack):
    verdict = stream.meter_difference(FIRST_DAY_WITHOUT_YESTERDAY, stack)
    assert verdict.status is Status.WRONG
    assert any("not expect" in line for line in verdict.wrong), verdict.text()


def test_a_query_flink_refuses_is_wrong_with_flinks_words(stack):
    verdict = stream.daily_windows("SELECT m_nam AS metric FROM readings", stack)
    assert verdict.status is Status.WRONG
    assert any("m_nam" in line for line in verdict.wrong), verdict.text()


def test_missing_columns_are_named(stack):
    query = flink_sql.DAILY_SQL.replace("AS metric", "AS sensor")
    verdict = stream.daily_windows(query, stack)
    assert verdict.status is Status.WRONG
    assert any("metric" in line and "AS" in line for line in verdict.wrong), verdict.text()
