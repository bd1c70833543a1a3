"""Notebook 03."""

# 23:59:59 belongs to the window [2024-01-03 00:00, 2024-01-04 00:00).
WINDOW_OF_LAST_SECOND = "2024-01-03"
# The job's rule is ts <= CURRENT_WATERMARK(ts): a reading at the watermark is late.
LATE_AT_WATERMARK = True
