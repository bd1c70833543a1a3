"""The layout functions the API reads with: which keys a range scan takes."""

from datetime import datetime, timedelta

from labkit.hbase import layout


def _within(bounds: tuple[bytes, bytes], key: bytes) -> bool:
    return bounds[0] <= key < bounds[1]


def test_rollup_range_takes_the_periods_from_first_to_last():
    first, last = datetime(2024, 1, 1, 6), datetime(2024, 1, 2, 0)
    bounds = layout.rollup_range("TH1", "6h", first, last)
    assert bounds == (b"TH1#6h#2024-01-01 06:00:00", b"TH1#6h#2024-01-02 00:00:01")
    starts = [first + timedelta(hours=6 * i) for i in range(-1, 5)]
    keys = [layout.rollup_row("TH1", "6h", f"{t:%Y-%m-%d %H:%M:%S}", 1.0, 1, 0)[0] for t in starts]
    assert [_within(bounds, key) for key in keys] == [False, True, True, True, True, False]
    # Neither another resolution nor another sensor whose name starts alike.
    for sensor, resolution in (("TH1", "12h"), ("TH1", "1h"), ("TH10", "6h")):
        key = layout.rollup_row(sensor, resolution, "2024-01-01 12:00:00", 1.0, 1, 0)[0]
        assert not _within(bounds, key)


def test_a_reversed_range_takes_the_same_keys():
    bounds = layout.window_range(
        layout.TableKind.LATE, "W1", datetime(2024, 1, 1, 10), datetime(2024, 1, 1, 12)
    )
    assert bounds is not None
    first, last = layout.reversed_range(bounds)
    assert first > last  # a reversed scan starts at the higher key
    times = ["2024-01-01 09:59:59", "2024-01-01 10:00:00", "2024-01-01 11:30:00",
             "2024-01-01 12:00:00", "2024-01-01 12:00:01"]  # fmt: skip
    keys = [layout.late_row("W1", t, layout.origin(0, i), 1.0, t, t, 0, 0)[0]
            for i, t in enumerate(times)]  # fmt: skip
    # The bounds themselves, as keys of a table whose keys end with the time (raw, daily).
    keys += [bounds[0], bounds[1], b"W1#", b"W10#2024-01-01 11:00:00", b"W1$"]
    for key in keys:
        assert _within(bounds, key) == (last < key <= first), key
    assert [_within(bounds, key) for key in keys[:5]] == [False, True, True, True, False]
