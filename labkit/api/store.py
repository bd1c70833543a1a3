"""Reading HBase for the API: a pool of Thrift connections and range scans, one per metric.

Every read is one range scan of one metric's keys between the window's ends (both included),
worked out by ``labkit.hbase.layout``; no request reads a whole table, and only metric names of
the catalogue ever become part of a row key. A table that does not exist yet (before the
pipeline's first run) reads as empty.
"""

from __future__ import annotations

import contextlib
import queue
from collections.abc import Iterator
from datetime import datetime

import happybase
from thriftpy2.thrift import TException

from labkit.api.catalogue import Metric
from labkit.api.errors import first_line
from labkit.api.parse import Window, to_ms
from labkit.api.series import PeriodSum, Point
from labkit.config import Settings
from labkit.hbase import layout
from labkit.hbase.layout import Column, TableKind

Columns = dict[bytes, bytes]
# Rows of one scan are fetched from the Thrift server in batches of this many.
SCAN_BATCH = 5000


class ConnectionPool:
    """A few open Thrift connections, reused across requests; a failed one is dropped."""

    def __init__(self, settings: Settings, size: int) -> None:
        self.settings = settings
        self._idle: queue.LifoQueue[happybase.Connection] = queue.LifoQueue(maxsize=size)

    @contextlib.contextmanager
    def connection(self) -> Iterator[happybase.Connection]:
        try:
            connection = self._idle.get_nowait()
        except queue.Empty:
            connection = layout.connect(self.settings, timeout_ms=10_000)
        try:
            yield connection
        except BaseException:
            connection.close()  # it may be broken; the next request opens a fresh one
            raise
        try:
            self._idle.put_nowait(connection)
        except queue.Full:
            connection.close()

    def close(self) -> None:
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return


def metric_range(metric: Metric, window: Window) -> tuple[bytes, bytes] | None:
    """The row keys of ``metric`` whose time lies in the window, as a range scan's
    ``(row_start, row_stop)``; None when no key can."""
    return layout.window_range(metric.kind, metric.key, window.start, window.end)


class Store:
    """Range scans of the lab's tables through a connection pool."""

    def __init__(self, settings: Settings, connections: int) -> None:
        self.settings = settings
        self.pool = ConnectionPool(settings, connections)

    def _scan(self, kind: TableKind, bounds: tuple[bytes, bytes], **options: object) -> list:
        with self.pool.connection() as connection:
            table = connection.table(layout.table_name(self.settings, kind))
            try:
                return list(table.scan(row_start=bounds[0], row_stop=bounds[1],
                                       batch_size=SCAN_BATCH, **options))  # fmt: skip
            except TException as error:
                if "TableNotFoundException" in first_line(error):
                    return []  # before the pipeline's first run: no data yet
                raise

    def _timed(self, kind: TableKind, scanned: list) -> list[tuple[int, Columns]]:
        rows = []
        for key, data in scanned:
            moment = layout.key_time(kind, key)
            if moment is not None:
                rows.append((to_ms(moment), data))
        return rows

    def rows(
        self, metric: Metric, window: Window, columns: list[bytes] | None = None
    ) -> list[tuple[int, Columns]]:
        """(epoch ms, columns) of the metric's rows in the window, in time order."""
        bounds = metric_range(metric, window)
        if bounds is None:
            return []
        return self._timed(metric.kind, self._scan(metric.kind, bounds, columns=columns))

    def newest(
        self, metric: Metric, window: Window, limit: int
    ) -> tuple[list[tuple[int, Columns]], bool]:
        """The newest ``limit`` rows of the metric in the window, in time order (one reversed
        range scan), and whether older ones were left out."""
        bounds = metric_range(metric, window)
        if bounds is None:
            return [], False
        scanned = self._scan(
            metric.kind, layout.reversed_range(bounds), reverse=True, limit=limit + 1
        )
        rows = self._timed(metric.kind, scanned)
        return rows[:limit][::-1], len(rows) > limit

    def points(self, metric: Metric, window: Window) -> list[Point]:
        """(epoch ms, value) of the metric's readings in the window, in time order."""
        points = []
        for ms, data in self.rows(metric, window, columns=[Column.VALUE]):
            value = layout.decode_number(data.get(Column.VALUE))
            if value is not None:
                points.append((ms, value))
        return points

    def rollups(
        self, metric: Metric, resolution: str, first: datetime, last: datetime
    ) -> list[PeriodSum]:
        """The roll-ups of a raw metric's periods that start from ``first`` to ``last``."""
        bounds = layout.rollup_range(metric.key, resolution, first, last)
        sums = []
        for key, data in self._scan(TableKind.ROLLUP, bounds):
            moment = layout.key_time(TableKind.ROLLUP, key)
            total = layout.decode_number(data.get(Column.SUM))
            count = layout.decode_number(data.get(Column.COUNT))
            offsets = layout.decode_number(data.get(Column.OFFSET_SUM))
            if moment is not None and total is not None and count and offsets is not None:
                start_ms, readings = to_ms(moment), int(count)
                time_total = readings * start_ms + int(offsets) * 1000
                sums.append(PeriodSum(start_ms, readings, total, time_total))
        return sums
