"""What each selection of a query is answered with, read from HBase through the store.

A raw or daily metric answers its points, downsampled to the panel's ``maxDataPoints``
(``labkit.api.series``), as a time series or a table of the same points. A late or invalid
metric answers its events: as a time series (a late reading's value; the number of invalid
messages per bucket), a table of one row per event, or annotations.
"""

from __future__ import annotations

from datetime import timedelta

from labkit.api import grafana, series
from labkit.api.cache import AnswerCache
from labkit.api.catalogue import Format, Metric, Source
from labkit.api.grafana import Event
from labkit.api.parse import Selection, Unanswerable, Window, to_ms
from labkit.api.series import PeriodSum, Point
from labkit.api.store import Columns, Store
from labkit.hbase import layout
from labkit.hbase.layout import Column, TableKind

# The most events (late readings, invalid messages) one table or annotation target lists.
MAX_EVENTS = 5_000


def _time_ms(raw: bytes | None) -> int | None:
    moment = layout.decode_time(raw)
    return to_ms(moment) if moment is not None else None


def _late_event(metric: Metric, ms: int, data: Columns) -> Event:
    value = layout.decode_text(data.get(Column.VALUE))
    sent_at = layout.decode_text(data.get(Column.SENT_AT))
    text = f"{metric.key} = {value} {metric.unit}, sent at {sent_at}"
    delay = layout.decode_number(data.get(Column.DELAY_S))
    if delay is not None:
        text += f", {timedelta(seconds=int(delay))} after it was measured"
    behind = layout.decode_number(data.get(Column.BEHIND_WATERMARK_S))
    if behind is not None:
        text += f" ({behind:g} s behind the watermark)"
    return Event(ms, f"late {metric.key} reading", text, ["late", metric.key])


def _invalid_event(ms: int, data: Columns) -> Event:
    reason = layout.decode_text(data.get(Column.REASON))
    message = layout.decode_text(data.get(Column.MESSAGE))[:300]
    return Event(ms, f"invalid message: {reason}", message, ["invalid"])


def _late_table(name: str, ref_id: str | None, rows: list[tuple[int, Columns]]) -> dict:
    number = layout.decode_number
    columns = [grafana.column("time", "time"), grafana.column("value", "number"),
               grafana.column("sent_at", "time"), grafana.column("watermark", "time"),
               grafana.column("behind_watermark_s", "number"),
               grafana.column("delay_s", "number")]  # fmt: skip
    table = [
        [ms, number(d.get(Column.VALUE)), _time_ms(d.get(Column.SENT_AT)),
         _time_ms(d.get(Column.WATERMARK)), number(d.get(Column.BEHIND_WATERMARK_S)),
         number(d.get(Column.DELAY_S))]
        for ms, d in rows
    ]  # fmt: skip
    return grafana.table(name, ref_id, columns, table)


def _invalid_table(name: str, ref_id: str | None, rows: list[tuple[int, Columns]]) -> dict:
    columns = [grafana.column("time", "time"), grafana.column("reason", "string"),
               grafana.column("message", "string"), grafana.column("chars", "number")]  # fmt: skip
    table = [
        [ms, layout.decode_text(d.get(Column.REASON)), layout.decode_text(d.get(Column.MESSAGE)),
         layout.decode_number(d.get(Column.CHARS))]
        for ms, d in rows
    ]  # fmt: skip
    return grafana.table(name, ref_id, columns, table)


class Answers:
    """Builds the JSON answers of /query and /annotations from HBase rows."""

    def __init__(self, store: Store, cache: AnswerCache | None = None) -> None:
        self.store = store
        self.cache = cache or AnswerCache()

    def events(self, metric: Metric, window: Window) -> tuple[list[Event], bool]:
        """The newest MAX_EVENTS events of the window, in time order; and whether older ones
        were left out."""
        rows, cut = self.store.newest(metric, window, MAX_EVENTS)
        if metric.kind is TableKind.LATE:
            return [_late_event(metric, ms, data) for ms, data in rows], cut
        return [_invalid_event(ms, data) for ms, data in rows], cut

    def answer(
        self,
        selection: Selection | Unanswerable,
        window: Window,
        max_points: int,
        reuse: bool = False,
    ) -> dict:
        """The answer to one selection of a query; with ``reuse``, the same answer computed less
        than the cache's TTL ago, if there is one."""
        if isinstance(selection, Unanswerable):
            empty = grafana.series(selection.target, selection.ref_id, [])
            return grafana.with_notice(empty, grafana.Severity.WARNING, selection.notice)
        key = (selection.metric.name, selection.format, selection.source, window, max_points)
        answer = self.cache.get(key, lambda: self._answer(selection, window, max_points), reuse)
        return {**answer, "refId": selection.ref_id}

    def _answer(self, selection: Selection, window: Window, max_points: int) -> dict:
        metric, ref_id = selection.metric, selection.ref_id
        if metric.has_events and selection.format is not Format.TIMESERIES:
            return self._event_table(selection, window)
        if metric.kind is TableKind.INVALID:
            times = [ms for ms, _ in self.store.rows(metric, window, columns=[Column.REASON])]
            points = series.count_per_bucket(times, window.start_ms, window.end_ms, max_points)
        else:
            points = self.series(metric, window, max_points, selection.source)
        if selection.format is Format.TABLE:
            return grafana.series_table(metric.name, ref_id, points)
        return grafana.series(metric.name, ref_id, points)

    def _event_table(self, selection: Selection, window: Window) -> dict:
        """A late or invalid metric's events, one row each, as a table or as annotations:
        every event of the window up to MAX_EVENTS (maxDataPoints counts points on a graph,
        not rows), the newest when there are more, and then a notice that says so."""
        metric, ref_id = selection.metric, selection.ref_id
        if selection.format is Format.ANNOTATIONS:
            events, cut = self.events(metric, window)
            answer = grafana.annotation_table(metric.name, ref_id, events)
        else:
            rows, cut = self.store.newest(metric, window, MAX_EVENTS)
            tabulate = _late_table if metric.kind is TableKind.LATE else _invalid_table
            answer = tabulate(metric.name, ref_id, rows)
        if not cut:
            return answer
        what = "late readings" if metric.kind is TableKind.LATE else "invalid messages"
        return grafana.with_notice(
            answer, grafana.Severity.WARNING,
            f"Showing the newest {MAX_EVENTS:,} {what} of the time range; older ones are left "
            "out: narrow the time range to see them.",
        )  # fmt: skip

    def series(
        self, metric: Metric, window: Window, max_points: int, source: Source = Source.AUTO
    ) -> list[Point]:
        """The metric's points in the window, downsampled to at most ``max_points``."""
        source = Source(source)
        buckets = series.buckets_for(window, max_points)
        sums = None
        if buckets.rollup is not None and metric.kind is TableKind.RAW and source is Source.AUTO:
            sums = self._rolled_up(metric, window, buckets.rollup)
        if sums is None or sum(part.count for part in sums) <= max_points:
            points = self.store.points(metric, window)
            if len(points) <= max_points:
                return points
            sums = series.as_sums(points)
        return series.downsample(sums, buckets)

    def _rolled_up(self, metric: Metric, window: Window, resolution: str) -> list[PeriodSum] | None:
        """The window's readings as the roll-ups of the periods that lie wholly inside it, plus
        the raw readings before and after the rolled-up periods (the window's edges, periods
        not rolled up yet); None when there are no roll-ups to use."""
        periods = series.periods_inside(window, resolution)
        if periods is None:
            return None
        rolled = self.store.rollups(metric, resolution, *periods)
        if not rolled:
            return None
        edges = [
            point
            for part in series.uncovered(window, rolled, resolution)
            for point in self.store.points(metric, part)
        ]
        return rolled + series.as_sums(edges)
