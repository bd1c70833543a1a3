"""Notebook 03."""

# 23:59:59 belongs to the window [2024-01-03 00:00, 2024-01-04 00:00).
WINDOW_OF_LAST_SECOND = "2024-01-03"
# The lab's rule calls a reading late when its event time is at or behind the watermark.
LATE_AT_WATERMARK = True

# Build it (1): each sensor's daily figure, in 1-day tumbling windows on the event time.
# Temperatures are averaged; energy, water and movements add up. Meters are not in the list.
DAILY_SQL = """
SELECT m_name AS metric,
       CAST(window_start AS DATE) AS `day`,
       CASE WHEN m_name IN ('TH1', 'TH2') THEN AVG(m_value) ELSE SUM(m_value) END AS `value`,
       COUNT(*) AS readings
FROM TABLE(TUMBLE(TABLE readings, DESCRIPTOR(ts), INTERVAL '1' DAY))
WHERE m_name IN ('TH1', 'TH2', 'HVAC1', 'HVAC2', 'MiAC1', 'MiAC2', 'W1', 'MOV1')
GROUP BY m_name, window_start, window_end
"""

# Build it (2): Etot's daily difference. A 2-day window that slides by a day holds a day's
# reading and the day before's; a day without both has no difference.
METER_SQL = """
SELECT `day`, today - yesterday AS `value`
FROM (
  SELECT CAST(window_start + INTERVAL '1' DAY AS DATE) AS `day`,
         MAX(m_value) FILTER (WHERE ts >= window_start + INTERVAL '1' DAY) AS today,
         MAX(m_value) FILTER (WHERE ts < window_start + INTERVAL '1' DAY) AS yesterday
  FROM TABLE(HOP(TABLE readings, DESCRIPTOR(ts), INTERVAL '1' DAY, INTERVAL '2' DAY))
  WHERE m_name = 'Etot'
  GROUP BY window_start, window_end
)
WHERE today IS NOT NULL AND yesterday IS NOT NULL
"""
