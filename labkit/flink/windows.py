"""The event-time windows over the valid on-time readings (the ``readings`` view).

* each sensor's daily AVG or SUM, in 1-day tumbling windows;
* per meter, in 2-day windows that slide by a day (today's and yesterday's readings), its
  daily difference and its rest (the difference its parts leave over);
* each sensor's roll-ups: sum, count and summed time offsets per 1 h, 6 h, 12 h and 1 d.
"""

from __future__ import annotations

from datetime import timedelta

from labkit import sensors
from labkit.flink.parsing import TIME_FORMAT
from labkit.flink.sql import quote, quoted_list, statement

# Roll-ups of each sensor's readings (labkit.api reads them), as SQL intervals.
ROLLUPS = {
    name: f"'{period // timedelta(hours=1)}' HOUR"
    for name, period in sensors.ROLLUP_PERIODS.items()
}


def _meters() -> list[sensors.Sensor]:
    return [s for s in sensors.CATALOGUE if s.kind is sensors.SensorKind.METER]


def meters_two_days_view() -> str:
    """Per day: each meter's reading today and yesterday, and today's sums of its parts."""
    today = "ts >= window_start + INTERVAL '1' DAY"
    yesterday = "ts < window_start + INTERVAL '1' DAY"
    columns = []
    for meter in _meters():
        key, name = meter.name.lower(), quote(meter.name)
        parts = quoted_list(meter.parts)
        columns += [
            # A cumulative meter only grows: its last reading of a day is its largest.
            f"MAX(m_value) FILTER (WHERE m_name = {name} AND {today}) AS {key}_today",
            f"MAX(m_value) FILTER (WHERE m_name = {name} AND {yesterday}) AS {key}_yesterday",
            f"COUNT(*) FILTER (WHERE m_name = {name}) AS {key}_readings",
            f"SUM(m_value) FILTER (WHERE m_name IN ({parts}) AND {today}) AS {key}_parts",
            f"COUNT(*) FILTER (WHERE m_name IN ({parts}) AND {today}) AS {key}_parts_readings",
        ]
    body = ",\n  ".join(columns)
    return (
        "SELECT\n"
        "  CAST(window_start + INTERVAL '1' DAY AS DATE) AS `day`,\n"
        f"  {body}\n"
        "FROM TABLE(HOP(TABLE readings, DESCRIPTOR(ts), INTERVAL '1' DAY, INTERVAL '2' DAY))\n"
        "GROUP BY window_start, window_end"
    )


def daily_inserts() -> dict[str, str]:
    """``daily_avg``, ``daily_sum``: the sensors' daily aggregates, one statement each."""
    by_aggregate: dict[sensors.Aggregate, list[str]] = {}
    for sensor in sensors.CATALOGUE:
        if sensor.kind is not sensors.SensorKind.METER:
            by_aggregate.setdefault(sensor.aggregate, []).append(sensor.name)
    return {
        f"daily_{aggregate.lower()}": statement(
            f"""
            INSERT INTO output_aggr
            SELECT m_name, CAST(window_start AS DATE), '{aggregate}', {aggregate}(m_value), COUNT(*)
            FROM TABLE(TUMBLE(TABLE readings, DESCRIPTOR(ts), INTERVAL '1' DAY))
            WHERE m_name IN ({quoted_list(names)})
            GROUP BY m_name, window_start, window_end
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


def rollup_inserts() -> dict[str, str]:
    """``rollup_1h`` ... ``rollup_1d``: each sensor's sum, count and summed time offsets."""
    return {
        f"rollup_{resolution}": statement(
            f"""
            INSERT INTO output_rollup
            SELECT m_name, '{resolution}', DATE_FORMAT(window_start, '{TIME_FORMAT}'),
                   SUM(m_value), COUNT(*),
                   SUM(CAST(TIMESTAMPDIFF(SECOND, window_start, ts) AS BIGINT))  -- 64 bits
            FROM TABLE(TUMBLE(TABLE readings, DESCRIPTOR(ts), INTERVAL {interval}))
            GROUP BY m_name, window_start, window_end
            """
        )
        for resolution, interval in ROLLUPS.items()
    }
