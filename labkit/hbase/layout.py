"""The storage layout: the one place that knows how the lab's data sits in HBase.

A few tables (not one per sensor, as the original had), each with one column family ``d`` and
one version:

=============  ================================================  ==============================
table          row key                                           columns
=============  ================================================  ==============================
``iot_raw``    ``TH1#2024-01-05 10:15:00``                       value
``iot_daily``  ``Etot_DailyDiff#2024-01-05``                     value, readings, kind
``iot_late``   ``W1#2024-01-03 10:15:00#0-000000001234``         value, sent_at, watermark,
                                                                 behind_watermark_s, delay_s
``iot_invalid`` ``input#2024-01-05 10:15:00#0-000000001235``     reason, message, chars
``iot_rollup`` ``TH1#6h#2024-01-05 06:00:00``                    sum, count, offset_sum
=============  ================================================  ==============================

A row key starts with the metric and the time, so one metric's time range is one contiguous
range scan. Keys are deterministic: a message replayed from Kafka lands on the same row, which
makes the writers' at-least-once delivery an idempotent, exactly-once store. Late and invalid
rows end with the message's Kafka partition and offset (its *origin*), which keeps two
messages with the same metric and time apart.

Values are text: numbers as ``repr`` (a float reads back exactly), times as
``YYYY-MM-DD HH:MM:SS`` (days as ``YYYY-MM-DD``), which sorts in time order.

Everything else (the writers, the API, the notebooks) builds and reads keys and columns
through this module, and opens its connections with ``connection()``.
"""

from __future__ import annotations

import contextlib
import math
import socket
import zlib
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from enum import StrEnum

import happybase
from Hbase_thrift import BatchMutation, Mutation
from thriftpy2.transport import TTransportException

from labkit.config import Settings
from labkit.sensors import TIMESTAMP_FORMAT

FAMILY = b"d"
SEPARATOR = "#"
# The character right after the separator: every key of a metric sorts before f"{metric}$".
_AFTER_SEPARATOR = chr(ord(SEPARATOR) + 1)
DAY_FORMAT = "%Y-%m-%d"
# Failures of the Thrift connection that a retry can cure (HBase restarting, a timeout).
TRANSIENT = (TTransportException, socket.error, OSError, BrokenPipeError)
# The key prefix of every invalid message: they belong to no sensor.
INVALID_PREFIX = "input"


class TableKind(StrEnum):
    """The lab's tables; ``iot_<kind>`` with the default prefix."""

    RAW = "raw"  # every valid on-time reading
    DAILY = "daily"  # one row per daily metric and day
    LATE = "late"  # readings that arrived behind the watermark
    INVALID = "invalid"  # messages that failed validation, with the reason
    ROLLUP = "rollup"  # per sensor, sums over 1 h, 6 h, 12 h and 1 d


class Column:
    """The qualified column names (family ``d``) of the tables."""

    VALUE = b"d:value"
    READINGS = b"d:readings"  # daily: how many readings made the value
    KIND = b"d:kind"  # daily: AVG, SUM, DIFF or REST
    SENT_AT = b"d:sent_at"  # late: when the message was sent
    WATERMARK = b"d:watermark"  # late: the watermark it missed
    BEHIND_WATERMARK_S = b"d:behind_watermark_s"
    DELAY_S = b"d:delay_s"  # late: seconds from measured to sent
    REASON = b"d:reason"  # invalid: the first problem found
    MESSAGE = b"d:message"  # invalid: the message's first 1,024 characters
    CHARS = b"d:chars"  # invalid: the message's length in characters
    SUM = b"d:sum"  # rollup: sum of the period's values
    COUNT = b"d:count"  # rollup: how many readings
    OFFSET_SUM = b"d:offset_sum"  # rollup: summed seconds from the period's start


Row = tuple[bytes, dict[bytes, bytes]]


# --------------------------------------------------------------------------------------
# Connections and tables
# --------------------------------------------------------------------------------------


def connect(settings: Settings, timeout_ms: int = 30_000) -> happybase.Connection:
    """A happybase connection to the lab's HBase Thrift server (close it when done)."""
    return happybase.Connection(settings.hbase_host, settings.hbase_thrift_port, timeout=timeout_ms)


@contextlib.contextmanager
def connection(settings: Settings, timeout_ms: int = 30_000) -> Iterator[happybase.Connection]:
    """A connection for the ``with`` block, closed afterwards."""
    opened = connect(settings, timeout_ms)
    try:
        yield opened
    finally:
        opened.close()


def table_name(settings: Settings, kind: TableKind | str) -> str:
    return f"{settings.hbase_table_prefix}_{TableKind(kind)}"


def create_table(conn: happybase.Connection, name: str) -> None:
    """A table of the lab's shape: one column family, one version."""
    conn.create_table(name, {FAMILY.decode(): {"max_versions": 1}})


def ensure_tables(settings: Settings) -> list[str]:
    """Create the lab's tables if they are missing; return those created."""
    with connection(settings) as conn:
        existing = {name.decode() for name in conn.tables()}
        created = []
        for kind in TableKind:
            name = table_name(settings, kind)
            if name not in existing:
                create_table(conn, name)
                created.append(name)
        return created


def drop_tables(settings: Settings, names: list[str] | None = None) -> None:
    """Drop tables (default: the lab's own); missing ones are skipped."""
    wanted = names if names is not None else [table_name(settings, kind) for kind in TableKind]
    with connection(settings) as conn:
        existing = {name.decode() for name in conn.tables()}
        for name in wanted:
            if name in existing:
                conn.delete_table(name, disable=True)


def recreate_tables(settings: Settings) -> None:
    """Empty the lab's tables (a fresh run of the pipeline)."""
    drop_tables(settings)
    ensure_tables(settings)


def put_rows(conn: happybase.Connection, name: str, rows: list[Row]) -> None:
    """Store the rows in table ``name`` with one Thrift call (``mutateRows``).

    What happybase's ``Table.batch()`` sends, without its per-cell bookkeeping, which cost the
    writers more than the call itself (docs/benchmarks.md). Every cell is written to HBase's
    write-ahead log (the Thrift default), so a stored row survives a crash of HBase.
    """
    if rows:
        batch = [
            BatchMutation(
                row_key, [Mutation(column=column, value=value) for column, value in cells.items()]
            )
            for row_key, cells in rows
        ]
        conn.client.mutateRows(name.encode(), batch, {})


# --------------------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------------------


def encode(value: object) -> bytes:
    """A column value as text: ``repr`` of a float (it reads back exactly), ``str`` else."""
    return repr(value).encode() if isinstance(value, float) else str(value).encode()


def decode_number(raw: bytes | None) -> float | None:
    """A numeric column, or None when it is missing, not a number or not finite."""
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def decode_text(raw: bytes | None) -> str:
    return raw.decode("utf-8", errors="replace") if raw is not None else ""


def time_text(moment: datetime) -> str:
    """A time as keys and columns hold it: ``2024-01-05 10:15:00``."""
    return moment.strftime(TIMESTAMP_FORMAT)


def decode_time(raw: bytes | str | None) -> datetime | None:
    """A time of a key part or a column, or None when it is not one."""
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:
        return None


# --------------------------------------------------------------------------------------
# Row keys and rows, table by table
# --------------------------------------------------------------------------------------


def origin(partition: int, offset: int) -> str:
    """A message's place in Kafka, as the end of a late or invalid row's key."""
    return f"{partition}-{offset:012d}"


def key(*parts: str) -> bytes:
    return SEPARATOR.join(parts).encode()


def key_parts(row_key: bytes) -> list[str]:
    return row_key.decode("utf-8", errors="replace").split(SEPARATOR)


def raw_row(sensor: str, time: str, value: float) -> Row:
    return key(sensor, time), {Column.VALUE: encode(value)}


def daily_row(metric: str, day: str, kind: str, value: float, readings: int) -> Row:
    return key(metric, day), {
        Column.VALUE: encode(value),
        Column.READINGS: encode(readings),
        Column.KIND: encode(kind),
    }


def late_row(
    sensor: str,
    time: str,
    origin_: str,
    value: float,
    sent_at: str,
    watermark: str,
    behind_watermark_s: int,
    delay_s: int,
) -> Row:
    return key(sensor, time, origin_), {
        Column.VALUE: encode(value),
        Column.SENT_AT: encode(sent_at),
        Column.WATERMARK: encode(watermark),
        Column.BEHIND_WATERMARK_S: encode(behind_watermark_s),
        Column.DELAY_S: encode(delay_s),
    }


def invalid_row(sent_at: str, origin_: str, reason: str, message: str | None, chars: int) -> Row:
    return key(INVALID_PREFIX, sent_at, origin_), {
        Column.REASON: encode(reason),
        Column.MESSAGE: (message or "").encode("utf-8", errors="replace"),
        Column.CHARS: encode(chars),
    }


def rollup_row(
    sensor: str, resolution: str, period_start: str, total: float, count: int, offset_sum: int
) -> Row:
    return key(sensor, resolution, period_start), {
        Column.SUM: encode(total),
        Column.COUNT: encode(count),
        Column.OFFSET_SUM: encode(offset_sum),
    }


def key_time(kind: TableKind, row_key: bytes) -> datetime | None:
    """The time in a row key of a table of ``kind`` (a roll-up's period start); None for a
    key of another shape."""
    parts = key_parts(row_key)
    field = 2 if kind is TableKind.ROLLUP else 1
    return decode_time(parts[field]) if len(parts) > field else None


# --------------------------------------------------------------------------------------
# Key ranges: one metric's time span is one range scan
# --------------------------------------------------------------------------------------


def _bound(moment: datetime | date | str) -> str:
    if isinstance(moment, datetime):
        return time_text(moment)
    if isinstance(moment, date):
        return moment.strftime(DAY_FORMAT)
    return moment


def key_range(
    prefix: tuple[str, ...] | str,
    start: datetime | date | str | None = None,
    stop: datetime | date | str | None = None,
) -> tuple[bytes, bytes]:
    """The ``(row_start, row_stop)`` of a range scan over the keys that begin with ``prefix``
    (one part or several) whose next part lies from ``start`` (included) to ``stop``
    (excluded); without them, from the first such key or to the last."""
    parts = (prefix,) if isinstance(prefix, str) else prefix
    if not parts or any(not part or SEPARATOR in part for part in parts):
        raise ValueError(f"Not a key prefix: {prefix!r}")
    head = SEPARATOR.join(parts)
    row_start = f"{head}{SEPARATOR}{_bound(start) if start is not None else ''}"
    row_stop = f"{head}{SEPARATOR}{_bound(stop)}" if stop is not None else head + _AFTER_SEPARATOR
    return row_start.encode(), row_stop.encode()


def rollup_range(
    sensor: str, resolution: str, first: datetime, last: datetime
) -> tuple[bytes, bytes]:
    """The range scan over a sensor's roll-ups of one resolution whose periods start from
    ``first`` to ``last`` (both included)."""
    return key_range((sensor, resolution), first, last + timedelta(seconds=1))


def _just_before(bound: bytes) -> bytes:
    # Keys are UTF-8 text, in which the byte 0xff never occurs: no key lies between this and
    # the bound, so an exclusive bound here includes the bound itself.
    return bound[:-1] + bytes([bound[-1] - 1]) + b"\xff"


def reversed_range(bounds: tuple[bytes, bytes]) -> tuple[bytes, bytes]:
    """The keys of a range scan's ``(row_start, row_stop)`` (start included, stop excluded)
    for a reversed scan, newest first: HBase starts that one at its row_start (included) and
    runs down to its row_stop (excluded)."""
    row_start, row_stop = bounds
    return _just_before(row_stop), _just_before(row_start)


def _resolution(kind: TableKind) -> timedelta:
    """How fine the times of a table's keys are: whole days (daily) or whole seconds."""
    return timedelta(days=1) if kind is TableKind.DAILY else timedelta(seconds=1)


def _floor(moment: datetime, step: timedelta) -> datetime:
    return datetime.min + (moment - datetime.min) // step * step


def _later(moment: datetime, step: timedelta) -> datetime | None:
    try:
        return moment + step
    except OverflowError:
        return None


def window_range(
    kind: TableKind, prefix: tuple[str, ...] | str, start: datetime, end: datetime
) -> tuple[bytes, bytes] | None:
    """The range scan over the keys of ``prefix`` whose time ``t`` has ``start <= t <= end``
    (both included, any precision); None when no key time can (a window inside one second,
    or one day for the daily table)."""
    step = _resolution(kind)
    first: datetime | None = _floor(start, step)
    if first is not None and first < start:  # key times are whole seconds (days): round up
        first = _later(first, step)
    after = _later(_floor(end, step), step)
    # HBase would read row_start == row_stop as a get, not as an empty range.
    if first is None or (after is not None and first >= after):
        return None

    def text(moment: datetime) -> str:
        return moment.strftime(DAY_FORMAT) if kind is TableKind.DAILY else time_text(moment)

    return key_range(prefix, text(first), text(after) if after is not None else None)


# --------------------------------------------------------------------------------------
# The original's layout, for comparison: one table per sensor, keyed by time alone
# --------------------------------------------------------------------------------------


def per_sensor_table(prefix: str, sensor: str) -> str:
    return f"{prefix}_{sensor.lower()}"


def per_sensor_row(time: str, value: float) -> Row:
    return time.encode(), {Column.VALUE: encode(value)}


def per_sensor_range(start: datetime, stop: datetime) -> tuple[bytes, bytes]:
    """The range scan over a per-sensor table's keys from ``start`` (included) to ``stop``."""
    return time_text(start).encode(), time_text(stop).encode()


# --------------------------------------------------------------------------------------
# Salted keys, for the note on hot-spotting: a bucket in front of the metric spreads a
# metric's time-ordered writes over as many key ranges (and regions) as there are buckets
# --------------------------------------------------------------------------------------


def salt_buckets(buckets: int) -> list[str]:
    """The key prefixes of ``buckets`` salt buckets (``0``, ``1``, ...), in key order."""
    width = len(str(buckets - 1))
    return [f"{bucket:0{width}d}" for bucket in range(buckets)]


def salted_raw_row(buckets: int, sensor: str, time: str, value: float) -> Row:
    """A raw row whose key starts with its salt bucket: a stable hash of the unsalted key."""
    unsalted, columns = raw_row(sensor, time, value)
    bucket = salt_buckets(buckets)[zlib.crc32(unsalted) % buckets]
    return key(bucket, sensor, time), columns


def salted_key_ranges(
    buckets: int, prefix: str, start: datetime | date | str, stop: datetime | date | str
) -> list[tuple[bytes, bytes]]:
    """A salted metric's time range: one range scan per bucket."""
    return [key_range((bucket, prefix), start, stop) for bucket in salt_buckets(buckets)]


def unsalted(row_key: bytes) -> bytes:
    """A salted key without its bucket: the key the row would have had unsalted."""
    return row_key.split(SEPARATOR.encode(), 1)[1]


def salt_split_keys(buckets: int) -> list[bytes]:
    """The keys at which a salted table splits into one region per bucket."""
    return [key(bucket) for bucket in salt_buckets(buckets)[1:]]
