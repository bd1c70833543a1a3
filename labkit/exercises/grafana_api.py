"""Notebook 05's Build it: a Grafana API of the student's own, checked against ``labkit.api``.

The check serves the student's WSGI app from a thread (``labkit.notebook.grafana_api.serve``)
and the lab's API on the same tables (``api.start_in_thread``), sends both the requests the
simPod JSON datasource sends (its datasource test, the query editor's metric list, panels'
queries: ``api.panel_request``), and compares the answers point by point. While the student's
app answers, it also counts the rows its HBase scans read (happybase's ``Table.scan`` is wrapped
for the check's duration): a query must read its metrics' time ranges, never a whole table.

Also here: the exercise that asks why a panel of the dashboard preview differs from the
notebook's own computation (notebooks 05 and 06).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import itertools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import happybase

from labkit import api
from labkit.api.parse import from_ms
from labkit.config import Settings
from labkit.dashboard.compare import Cause, PanelComparison
from labkit.exercises.feedback import Checker, Verdict
from labkit.hbase import layout
from labkit.hbase.layout import TableKind
from labkit.notebook.grafana_api import WSGIApp, serve

# The metrics a student's API serves: readings and daily values (late and invalid ones, which
# are tables of events, are labkit.api's).
SERVED_KINDS = (TableKind.RAW, TableKind.DAILY)
# Rows a scan may read beyond a target's range (a bound a second wide of the mark).
SLACK_ROWS = 4
HINT = (
    "send labkit's API the same request and look at its answer: "
    "`api.call(running.url, '/query', body)`."
)
HINTS = {
    "seconds": "Grafana reads a point's time in epoch milliseconds, not seconds.",
    "order": "each point is [value, time]: the value first.",
    "downsample": (
        "the panel asked for at most maxDataPoints points: cut the range into that many "
        "buckets of equal width and answer, per bucket, the mean value at the mean time."
    ),
    "ends": "the range includes both ends: a reading at exactly `from` or `to` belongs to it.",
    "zone": "Grafana's times are UTC (the Z): keep them in UTC from parsing to answering.",
    "scan": (
        "read one metric's time range with one range scan: layout.window_range gives its "
        "row_start and row_stop; never scan a whole table."
    ),
    "empty": "write the resources' methods: set resp.media to the answer.",
}


@dataclass(frozen=True)
class Probe:
    """One request Grafana sends, and what it is for."""

    what: str
    path: str
    body: dict | None = None

    @property
    def targets(self) -> list[str]:
        return [target["target"] for target in (self.body or {}).get("targets", [])]

    @property
    def max_points(self) -> int:
        return int((self.body or {}).get("maxDataPoints", 0))

    def describe(self) -> str:
        return f"{'GET' if self.body is None else 'POST'} {self.path}, {self.what}"


def probes(start: datetime, end: datetime) -> list[Probe]:
    """The requests the check sends, for data from ``start`` to ``end``."""
    zoom = start + timedelta(hours=6)
    points = max(1, (end - start) // timedelta(minutes=40))
    daily = ["TH1_aggr", "Etot_DailyDiff", "Wtot_AggDayRest"]
    return [
        Probe("the datasource test (Save & test)", "/"),
        Probe("the query editor's metric list", "/metrics", {"metric": "", "payload": {}}),
        Probe("a temperature panel on 06:00-12:00 of the first day, every reading", "/query",
              api.panel_request(["TH1_raw", "TH2_raw"], zoom, zoom + timedelta(hours=6))),
        Probe(f"a water and energy panel over the whole run, {points} points wide", "/query",
              api.panel_request(["W1_raw", "HVAC1_raw"], start, end, points)),
        Probe("the daily panels over the whole run", "/query",
              api.panel_request(daily, start, end)),
    ]  # fmt: skip


# --------------------------------------------------------------------------------------
# Comparing two answers: pure functions, one finding (wrong text, hint key) per difference
# --------------------------------------------------------------------------------------

Finding = tuple[str, str | None]


def _point(point: Any) -> str:
    try:
        value, ms = point
        return f"[{value:.6g}, {int(ms)}] ({from_ms(int(ms)):%Y-%m-%d %H:%M:%S})"
    except (TypeError, ValueError, OverflowError):
        return repr(point)[:80]


def _time_hint(expected_ms: float, got_ms: Any) -> str | None:
    """Seconds for milliseconds, or a time zone's hours off."""
    if not isinstance(got_ms, int | float):
        return None
    if abs(got_ms * 1000 - expected_ms) < 1000:
        return "seconds"
    if (expected_ms - got_ms) % 3_600_000 == 0:
        return "zone"
    return None


def compare_points(name: str, expected: list, got: Any, max_points: int) -> Finding | None:
    """The first difference between two series' datapoints; None when they are the same."""
    if not isinstance(got, list):
        return f"{name}: datapoints is {type(got).__name__}, not a list of [value, time]", None
    if len(got) > max_points:
        text = f"{name}: {len(got)} points, more than the panel's maxDataPoints ({max_points})"
        return text, "downsample"
    for index, (want, have) in enumerate(zip(expected, got, strict=False)):
        if not isinstance(have, list | tuple) or len(have) != 2:
            return f"{name}: point {index + 1} is {have!r:.60}, not [value, time]", "order"
        same_time = have[1] == want[1]
        close = isinstance(have[0], int | float) and math.isclose(have[0], want[0], rel_tol=1e-9)
        if not (same_time and close):
            text = (f"{name}: point {index + 1} of {len(expected)}: expected {_point(want)}, "
                    f"got {_point(have)}")  # fmt: skip
            if have[0] == want[1]:
                return text, "order"
            return text, None if same_time else _time_hint(want[1], have[1])
    if len(got) != len(expected):
        missing = expected[len(got) :] or got[len(expected) :]
        what = "missing" if len(got) < len(expected) else "extra"
        text = (f"{name}: {len(got)} points, expected {len(expected)}; {what}: "
                f"{', '.join(_point(p) for p in missing[:2])}")  # fmt: skip
        return text, "ends" if abs(len(got) - len(expected)) <= 2 else "downsample"
    return None


def compare_query(expected: list[dict], got: Any, max_points: int) -> list[Finding]:
    """Every target's difference between labkit.api's answer to a /query and the student's."""
    if not isinstance(got, list):
        return [(f"the answer is {type(got).__name__}, not a list (one item per target)", None)]
    if len(got) != len(expected):
        return [(f"{len(got)} items answered for {len(expected)} targets", None)]
    found: list[Finding] = []
    for want, have in zip(expected, got, strict=True):
        name = want["target"]
        if not isinstance(have, dict):
            found.append((f"{name}: {have!r:.60} is not an object", None))
        elif (have.get("target"), have.get("refId")) != (name, want["refId"]):
            found.append((f"{name}: answered as target {have.get('target')!r}, refId "
                          f"{have.get('refId')!r}; expected {name!r}, {want['refId']!r}",
                          None))  # fmt: skip
        else:
            difference = compare_points(name, want["datapoints"], have.get("datapoints"),
                                        max_points)  # fmt: skip
            if difference:
                found.append(difference)
    return found


def compare_metrics(expected: list[dict], got: Any) -> list[Finding]:
    """The student's /metrics against labkit.api's raw and daily metrics (names only)."""
    served = {item["value"] for item in expected
              if api.CATALOGUE[item["value"]].kind in SERVED_KINDS}  # fmt: skip
    if not isinstance(got, list):
        return [(f"the answer is {type(got).__name__}, not a list of metrics", None)]
    names = {item.get("value") if isinstance(item, dict) else item for item in got}
    found: list[Finding] = []
    if served - names:
        found.append((f"missing: {', '.join(sorted(served - names))}", None))
    if names - served:
        found.append((f"listed, though your /query cannot answer them: "
                      f"{', '.join(sorted(map(str, names - served)))}", None))  # fmt: skip
    return found


def last_error(log: str) -> str:
    """The exception at the end of a traceback, and the line that raised it."""
    lines = [line for line in log.strip().splitlines() if line.strip()]
    if not lines:
        return ""
    code = [
        following.strip()
        for line, following in itertools.pairwise(lines)
        if line.lstrip().startswith('File "') and not following.lstrip().startswith("File")
    ]
    where = f" at `{code[-1]}`" if code else ""
    return f": {lines[-1].strip()[:200]}{where}"


# --------------------------------------------------------------------------------------
# HBase rows: what a probe's targets hold, and what the student's app read
# --------------------------------------------------------------------------------------


@dataclass
class Scan:
    """A scan the student's app made: its table, whether it had bounds, the rows it read."""

    table: str
    bounded: bool
    rows: int = 0


@contextlib.contextmanager
def recorded_scans() -> Iterator[list[Scan]]:
    """Record every happybase scan made in this process while the block runs (the scans still
    read HBase as usual; only their bounds and their rows are counted)."""
    original = happybase.Table.scan
    signature = inspect.signature(original)
    scans: list[Scan] = []

    @functools.wraps(original)
    def scan(table: happybase.Table, *args: Any, **kwargs: Any) -> Iterator[Any]:
        bound = signature.bind(table, *args, **kwargs).arguments
        seen = Scan(layout.decode_text(table.name),
                    any(bound.get(k) for k in ("row_start", "row_stop", "row_prefix")))  # fmt: skip
        scans.append(seen)
        for row in original(table, *args, **kwargs):
            seen.rows += 1
            yield row

    happybase.Table.scan = scan
    try:
        yield scans
    finally:
        happybase.Table.scan = original


def rows_in_ranges(settings: Settings, probe: Probe) -> int:
    """How many rows the probe's targets hold in its range (one key-only range scan each)."""
    if probe.body is None or "range" not in probe.body:
        return 0
    window = api.Window(*(datetime.fromisoformat(probe.body["range"][end]).replace(tzinfo=None)
                          for end in ("from", "to")))  # fmt: skip
    total = 0
    with layout.connection(settings) as connection:
        for name in probe.targets:
            metric = api.CATALOGUE[name]
            bounds = layout.window_range(metric.kind, metric.key, window.start, window.end)
            if bounds is not None:
                table = connection.table(layout.table_name(settings, metric.kind))
                scanned = table.scan(row_start=bounds[0], row_stop=bounds[1],
                                     filter=b"KeyOnlyFilter()")  # fmt: skip
                total += sum(1 for _ in scanned)
    return total


def scans_finding(scans: list[Scan], needed: int, targets: int) -> Finding | None:
    """What is wrong with the scans a request made, if anything."""
    whole = sorted({scan.table for scan in scans if not scan.bounded})
    if whole:
        return f"your app scanned whole tables ({', '.join(whole)}), without bounds", "scan"
    read = sum(scan.rows for scan in scans)
    if read > needed + SLACK_ROWS * targets:
        text = (f"your app's scans read {read:,} rows of HBase where the targets' ranges hold "
                f"{needed:,}")  # fmt: skip
        return text, "scan"
    return None


# --------------------------------------------------------------------------------------
# The checks
# --------------------------------------------------------------------------------------


def _note(check: Checker, said: str, findings: list[Finding], right: str) -> None:
    """Note a probe's findings, a line each (or what is right), and the first specific hint."""
    for text, _ in findings:
        check.expect(False, "", f"{said}: {text}")
    if not findings:
        check.expect(True, f"{said}: {right}", "")
    hints = [HINTS[key] for _, key in findings if key]
    if hints and check.verdict.hint == HINT:  # the first specific hint replaces the general one
        check.verdict.hint = hints[0]


@dataclass
class Reply:
    """The student's app's answer to one probe: status, JSON, the scans it made, its errors."""

    status: int
    answer: Any
    scans: list[Scan]
    errors: str


def _ask_both(app: WSGIApp, settings: Settings, sent: list[Probe]) -> tuple[list, list[Reply]]:
    """labkit.api's answers to the probes, and the student's replies."""
    with api.start_in_thread(settings, port=0) as reference:
        expected = [api.request(reference.url, probe.path, probe.body)[1] for probe in sent]
    replies = []
    with serve(app) as served, recorded_scans() as scans:
        for probe in sent:
            del scans[:]
            logged = len(served.errors())
            status, answer = api.request(served.url, probe.path, probe.body)
            replies.append(Reply(status, answer, list(scans), served.errors()[logged:]))
    return expected, replies


def check_api(
    make_app: Callable[[Settings], WSGIApp], settings: Settings, start: datetime, end: datetime
) -> Verdict:
    """Notebook 05: the student's API (``make_app(settings)``, a WSGI app) answers Grafana's
    requests with the same points as labkit.api, from range scans of HBase."""
    sent = probes(start, end)
    with Checker("05.grafana_api", HINT) as check:
        with recorded_scans() as made:
            app = check.run(make_app, settings)
        name = getattr(make_app, "__name__", "your function")
        check.require(callable(app), "a WSGI app", f"`{name}` returned {app!r:.60}, "
                      "not a WSGI app (falcon.App() is one)")  # fmt: skip
        early = scans_finding(made, 0, 0)
        if early:
            _note(check, "making the app", [(f"before any request, {early[0]}", early[1])], "")
        needed = [rows_in_ranges(settings, probe) for probe in sent]
        expected, replies = _ask_both(app, settings, sent)
        if all(reply.answer is None for reply in replies if reply.status == 200):
            check.verdict.hint = HINTS["empty"]
            check.not_yet("your app answers every request with an empty body")
        for probe, reference, reply, rows in zip(sent, expected, replies, needed, strict=True):
            said = probe.describe()
            if reply.status != 200:
                _note(check, said, [(f"answered {reply.status}{last_error(reply.errors)}",
                                     None)], "")  # fmt: skip
            elif probe.path == "/metrics":
                _note(check, said, compare_metrics(reference, reply.answer), "the same metrics")
            elif probe.path == "/query":
                findings = compare_query(reference, reply.answer, probe.max_points)
                scanned = scans_finding(reply.scans, rows, len(probe.targets))
                right = f"{len(reference)} series, point for point as labkit.api's"
                _note(check, said, findings + ([scanned] if scanned else []), right)
            else:
                _note(check, said, [], "200")
    return check.verdict


def difference_cause(exercise: str, answer: object, compared: PanelComparison) -> Verdict:
    """Notebooks 05 and 06: why a panel of the preview differs from the notebook's own data
    (``answer``, the student's ``cause``: one of the causes' names)."""
    causes = [str(cause) for cause in Cause if cause is not Cause.MISMATCH]
    hint = (
        "compare the panel's request (`maxDataPoints`, its range) with the data the notebook "
        "computed: how many readings, how wide a bucket is (roll-ups start at one hour), and "
        "whether the day that differs is on both sides."
    )
    with Checker(exercise, hint) as check:
        if answer is None:
            check.not_yet(f"no choice yet: set `cause` to one of {', '.join(causes)}")
        check.require(str(answer).strip() in causes, "one of the causes",
                      f"{answer!r} is none of {', '.join(map(repr, causes))}")  # fmt: skip
        check.expect(str(answer).strip() == compared.cause, f"{answer!r}: right",
                     f"{answer!r} is not what makes this panel differ")  # fmt: skip
    return check.verdict
