"""The event-time windows over the valid on-time readings (the ``readings`` view).

Only one window reads every reading: ``hourly``, each sensor's sum, count, summed time offsets
and largest value per hour. Everything else is computed from its rows, windows over their
``hour_time`` (cascading windows: an hour's row comes out when the watermark passes its end,
before that watermark goes on to the next window):

* the roll-ups per 1 h, 6 h, 12 h and 1 d (``labkit.api`` reads them);
* ``daily``, the same per day, and from it each sensor's daily AVG or SUM;
* per meter, in 2-day windows over the days that slide by a day (today's and yesterday's),
  its daily difference and its rest (the difference its parts leave over).
"""

from __future__ import annotations

from datetime import timedelta

from labkit import sensors
from labkit.flink.parsing import TIME_FORMAT
from labkit.flink.sql import quote, quoted_list, statement

# The roll-ups read from the hourly rows (1 h is those rows, 1 d the daily ones), as SQL
# intervals.
ROLLUPS_FROM_HOURS = {
    name: f"'{period // timedelta(hours=1)}' HOUR"
    for name, period in sensors.ROLLUP_PERIODS.items()
    if timedelta(hours=1) < period < timedelta(days=1)
}


def _meters() -> list[sensors.Sensor]:
    return [s for s in sensors.CATALOGUE if s.kind is sensors.SensorKind.METER]


def hourly_view() -> str:
    """``hourly``: per sensor and hour, the sum, count, summed offsets (seconds from the hour's
    start) and largest value of its readings; ``hour_time`` is the hour's last instant."""
    return statement(
        """
        SELECT m_name, window_start AS hour_start, window_time AS hour_time,
               SUM(m_value) AS total, COUNT(*) AS readings,
               SUM(CAST(TIMESTAMPDIFF(SECOND, window_start, ts) AS BIGINT)) AS offset_sum,
               MAX(m_value) AS largest
        FROM TABLE(TUMBLE(TABLE readings, DESCRIPTOR(ts), INTERVAL '1' HOUR))
        GROUP BY m_name, window_start, window_end, window_time
        """
    )


def _from_hours(interval: str, start: str, time: str) -> str:
    """The hourly rows of each sensor summed over windows of ``interval``."""
    return statement(
        f"""
        SELECT m_name, window_start AS {start}, window_time AS {time},
               SUM(total) AS total, SUM(readings) AS readings,
               -- Offsets from this window's start: each hour's, plus its start's.
               SUM(offset_sum + readings * TIMESTAMPDIFF(SECOND, window_start, hour_start))
                 AS offset_sum,
               MAX(largest) AS largest
        FROM TABLE(TUMBLE(TABLE hourly, DESCRIPTOR(hour_time), INTERVAL {interval}))
        GROUP BY m_name, window_start, window_end, window_time
        """
    )


def daily_view() -> str:
    """``daily``: per sensor and day, as ``hourly``; ``day_time`` is the day's last instant."""
    return _from_hours("'1' DAY", "day_start", "day_time")


def meters_two_days_view() -> str:
    """Per day: each meter's reading today and yesterday, and today's sums of its parts."""
    today = "day_time >= window_start + INTERVAL '1' DAY"
    yesterday = "day_time < window_start + INTERVAL '1' DAY"
    columns = []
    for meter in _meters():
        key, name = meter.name.lower(), quote(meter.name)
        parts = quoted_list(meter.parts)
        columns += [
            # A cumulative meter only grows: its last reading of a day is its largest.
            f"MAX(largest) FILTER (WHERE m_name = {name} AND {today}) AS {key}_today",
            f"MAX(largest) FILTER (WHERE m_name = {name} AND {yesterday}) AS {key}_yesterday",
            f"SUM(readings) FILTER (WHERE m_name = {name}) AS {key}_readings",
            f"SUM(total) FILTER (WHERE m_name IN ({parts}) AND {today}) AS {key}_parts",
            f"SUM(readings) FILTER (WHERE m_name IN ({parts}) AND {today}) AS {key}_parts_readings",
        ]
    body = ",\n  ".join(columns)
    return (
        "SELECT\n"
        "  CAST(window_start + INTERVAL '1' DAY AS DATE) AS `day`,\n"
        f"  {body}\n"
        "FROM TABLE(HOP(TABLE daily, DESCRIPTOR(day_time), INTERVAL '1' DAY, INTERVAL '2' DAY))\n"
        "GROUP BY window_start, window_end"
    )


def views() -> dict[str, str]:
    """The windows' views, by name, each reading the one before."""
    return {
        "hourly": hourly_view(),
        "daily": daily_view(),
        "meters_two_days": meters_two_days_view(),
    }


def daily_inserts() -> dict[str, str]:
    """``daily_avg``, ``daily_sum``: the sensors' daily aggregates, one statement each."""
    by_aggregate: dict[sensors.Aggregate, list[str]] = {}
    for sensor in sensors.CATALOGUE:
        if sensor.kind is not sensors.SensorKind.METER:
            by_aggregate.setdefault(sensor.aggregate, []).append(sensor.name)
    value = {sensors.Aggregate.AVG: "total / readings", sensors.Aggregate.SUM: "total"}
    return {
        f"daily_{aggregate.lower()}": statement(
            f"""
            INSERT INTO output_aggr
            SELECT m_name, CAST(day_start AS DATE), '{aggregate}', {value[aggregate]}, readings
            FROM daily
            WHERE m_name IN ({quoted_list(names)})
            """
        )
        for aggregate, names in by_aggregate.items()
    }


def meter_inserts() -> dict[str, str]:
    """Per meter: its daily difference, and its rest (the difference its parts leave over)."""
    statements = {}
    for meter in _meters():
        key = meter.name.lower()
        diff = f"{key}_today - {key}_yesterday"
        both = f"{key}_today IS NOT NULL AND {key}_yesterday IS NOT NULL"
        statements[f"{key}_diff"] = statement(
            f"""
            INSERT INTO output_aggr
            SELECT {quote(sensors.diff_metric(meter.name))}, `day`, 'DIFF',
                   {diff}, {key}_readings
            FROM meters_two_days
            WHERE {both}
            """
        )
        statements[f"{key}_rest"] = statement(
            f"""
            INSERT INTO output_aggr
            SELECT {quote(sensors.rest_metric(meter.name))}, `day`, 'REST',
                   {diff} - {key}_parts, {key}_readings + {key}_parts_readings
            FROM meters_two_days
            WHERE {both} AND {key}_parts IS NOT NULL
            """
        )
    return statements


def _rollup_insert(resolution: str, source: str, start: str) -> str:
    return (
        "INSERT INTO output_rollup\n"
        f"SELECT m_name, '{resolution}', DATE_FORMAT({start}, '{TIME_FORMAT}'),\n"
        "       total, readings, offset_sum\n"
        f"FROM {source}"
    )


def rollup_inserts() -> dict[str, str]:
    """``rollup_1h`` ... ``rollup_1d``: each sensor's sum, count and summed time offsets."""
    inserts = {"rollup_1h": _rollup_insert("1h", "hourly", "hour_start")}
    for resolution, interval in ROLLUPS_FROM_HOURS.items():
        window = _from_hours(interval, "period_start", "period_time").replace("\n", "\n  ")
        inserts[f"rollup_{resolution}"] = _rollup_insert(
            resolution, f"(\n  {window}\n)", "period_start"
        )
    inserts["rollup_1d"] = _rollup_insert("1d", "daily", "day_start")
    return inserts
