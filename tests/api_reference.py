"""Independent references for the API's tests: Grafana's request bodies, the dashboard's
queries, and the buckets and means a downsampled series must have. No services."""

from __future__ import annotations

import calendar
import json
from collections.abc import Callable
from datetime import datetime, timedelta

from labkit import sensors
from labkit.config import PROJECT_ROOT

MS = timedelta(milliseconds=1)
EPOCH_START = datetime(1970, 1, 1)
GRAFANA = PROJECT_ROOT / "grafana" / "provisioning"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))


def ms(moment: datetime) -> int:
    return calendar.timegm(moment.timetuple()) * 1000 + moment.microsecond // 1000


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def expected_names() -> list[str]:
    """The metric names the original dashboard knows, derived from the sensor catalogue."""
    raw = [f"{sensor.name}_raw" for sensor in sensors.CATALOGUE]
    daily = [
        f"{name}_aggr" if kind in ("AVG", "SUM") else name
        for name, kind in sensors.daily_metrics().items()
    ]
    late = [f"{sensor.name}_late" for sensor in sensors.CATALOGUE]
    return raw + daily + late + ["invalid"]


def simplejson_query(targets: list[dict], start: datetime, end: datetime, points: int) -> dict:
    """A /query body as SimpleJSON 1.4 sends it (README example, with the fields it adds)."""
    return {
        "panelId": 1,
        "range": {"from": iso(start), "to": iso(end), "raw": {"from": "now-6h", "to": "now"}},
        "rangeRaw": {"from": "now-6h", "to": "now"},
        "interval": "30s",
        "intervalMs": 30000,
        "maxDataPoints": points,
        "targets": targets,
        "adhocFilters": [{"key": "City", "operator": "=", "value": "Berlin"}],
        "scopedVars": {"__interval": {"text": "30s", "value": "30s"}},
    }


def simpod_target(metric: str, ref: str = "A", payload: dict | None = None) -> dict:
    """A simPod 0.6 target after the plugin's processTargets (payload parsed to an object)."""
    return {
        "refId": ref,
        "target": metric,
        "payload": payload or {},
        "editorMode": "code",
        "datasource": {"type": "simpod-json-datasource", "uid": "iotlab-api"},
        "hide": False,
        "key": "Q-1f3a-0",
    }


def simpod_query(targets: list[dict], start: datetime, end: datetime, points: int) -> dict:
    """A /query body as simPod 0.6 sends it (the README's and a captured request's fields)."""
    return {
        "app": "dashboard",
        "requestId": "Q121",
        "timezone": "browser",
        "panelId": 1,
        "dashboardUID": "iotlab-overview",
        "range": {"from": iso(start), "to": iso(end), "raw": {"from": "now-6h", "to": "now"}},
        "rangeRaw": {"from": "now-6h", "to": "now"},
        "interval": "15s",
        "intervalMs": 15000,
        "maxDataPoints": points,
        "startTime": 1716695603558,
        "scopedVars": {
            "__interval": {"text": "15s", "value": "15s"},
            "__interval_ms": {"text": "15000", "value": 15000},
        },
        "targets": targets,
        "filters": [],
        "adhocFilters": [],
    }


def in_window(points: list[tuple[datetime, float]], start: datetime, end: datetime) -> list:
    return [[value, ms(moment)] for moment, value in points if start <= moment <= end]


def rollup_cut(start: datetime, end: datetime, buckets: int) -> tuple[int, timedelta] | None:
    """Reference: the width (ms) of a range's buckets and the roll-up period read for them;
    None when no roll-up period fits in an equal bucket."""
    periods = sorted(sensors.ROLLUP_PERIODS.values(), reverse=True)
    fitting = [p for p in periods if p * buckets <= end - start + MS]
    if not fitting:
        return None
    unit = fitting[0] // MS
    width = next(k * unit for k in range(1, 10**6)
                 if (ms(end) - ms(start) // (k * unit) * (k * unit)) // (k * unit) + 1 <= buckets
                 and k * unit * buckets >= ms(end) - ms(start) + 1)  # fmt: skip
    return width, next(p for p in periods if width % (p // MS) == 0)


def bucket_of(start: datetime, end: datetime, buckets: int) -> Callable[[int], int]:
    """Independent reference for the buckets of a range: equal ones over the inclusive range
    when no roll-up period fits in one; otherwise the widest such period times the smallest
    whole number that covers the range in ``buckets`` (and keeps at most ``buckets`` of them
    once aligned to their width)."""
    cut = rollup_cut(start, end, buckets)
    if cut is None:
        span = ms(end) - ms(start) + 1
        return lambda t: (t - ms(start)) * buckets // span
    width = cut[0]
    return lambda t: (t - ms(start) // width * width) // width


def bucket_averages(points: list[list], start: datetime, end: datetime, buckets: int) -> list:
    """Reference downsampling: each non-empty bucket gives (mean value, floor of the mean
    time)."""
    bucket = bucket_of(start, end, buckets)
    groups: dict[int, list[list]] = {}
    for value, t in points:
        groups.setdefault(bucket(t), []).append([value, t])
    return [
        [sum(v for v, _ in group) / len(group), sum(t for _, t in group) // len(group)]
        for _, group in sorted(groups.items())
    ]


def dashboard_queries() -> list[tuple[str, list[dict]]]:
    """(panel type, its targets as the simPod plugin sends them) of every dashboard panel
    and annotation: the code-mode payload text parsed, as its processTargets does."""
    found = []
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        panels = [p for p in dashboard["panels"] if p.get("targets")]
        for panel in panels:
            found.append((panel["type"], panel["targets"]))
        for annotation in dashboard["annotations"]["list"]:
            if "target" in annotation:
                found.append(("annotations", [annotation["target"]]))
    for _, targets in found:
        for target in targets:
            text = target.get("payload") or ""
            target["payload"] = json.loads(text) if text.strip() else {}
    return found
