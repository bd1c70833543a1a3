"""The requests Grafana sends for a dashboard: read from its JSON, built as Grafana builds them.

For every panel, one ``/query`` request (Grafana's ``SceneQueryRunner``), its targets as the
simPod plugin passes them on (``processTargets``: hidden targets and targets without a metric
dropped, the code editor's payload text parsed into an object); for every enabled annotation
of the simPod datasource, one ``/query`` request under refId ``Anno``
(``executeAnnotationQuery``). The range is the dashboard's (or the one asked for), and
``maxDataPoints`` and ``interval`` follow the panel's width as in ``sizing``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from labkit.dashboard import simpod, sizing
from labkit.dashboard.build import PROVISIONED
from labkit.errors import LabkitError

EPOCH = datetime(1970, 1, 1)


class DashboardError(LabkitError):
    """The dashboard JSON cannot be previewed as it is."""


def load(path: Path = PROVISIONED) -> dict:
    """The dashboard JSON (by default the provisioned one)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise DashboardError(
            f"Cannot read the dashboard {path}: {error}. `labkit grafana-dashboard` writes it."
        ) from None


def parse_time(text: str) -> datetime:
    """An absolute time (ISO 8601, or epoch milliseconds as in a Grafana URL) as naive UTC."""
    text = text.strip()
    if text.isdigit():
        return datetime.fromtimestamp(int(text) / 1000, UTC).replace(tzinfo=None)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise DashboardError(
            f"{text!r} is not an absolute time: give one such as 2024-01-05T10:00:00Z "
            "(relative times like now-7d depend on the clock: pass --from and --to)"
        ) from None
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def iso(moment: datetime) -> str:
    """A naive UTC datetime as Grafana writes times: ``2024-01-05T10:15:00.000Z``."""
    return moment.isoformat(timespec="milliseconds") + "Z"


def ms(moment: datetime) -> int:
    """Epoch milliseconds of a naive UTC datetime."""
    return (moment - EPOCH) // timedelta(milliseconds=1)


@dataclass(frozen=True)
class TimeRange:
    """The dashboard's time range, as Grafana resolves it; ``raw`` as the dashboard (or the
    URL) spells it."""

    start: datetime
    end: datetime
    raw_from: str
    raw_to: str

    @classmethod
    def of(cls, dashboard: dict, start: str | None = None, end: str | None = None) -> TimeRange:
        """The dashboard's own range, or ``start``/``end`` in its place."""
        raw_from = start or dashboard.get("time", {}).get("from", "")
        raw_to = end or dashboard.get("time", {}).get("to", "")
        first, last = parse_time(raw_from), parse_time(raw_to)
        if first >= last:
            raise DashboardError(f"The range ends ({raw_to}) before it starts ({raw_from})")
        return cls(first, last, raw_from, raw_to)

    @property
    def span_ms(self) -> int:
        return ms(self.end) - ms(self.start)

    def as_request(self) -> dict:
        span = {"from": iso(self.start), "to": iso(self.end)}
        return {"range": {**span, "raw": {"from": self.raw_from, "to": self.raw_to}},
                "rangeRaw": {"from": self.raw_from, "to": self.raw_to}}  # fmt: skip


def panels(dashboard: dict) -> Iterator[dict]:
    """The dashboard's panels that query (rows' own panels included, as Grafana shows a
    collapsed row's panels when it is opened)."""
    for panel in dashboard.get("panels", []):
        if panel.get("type") == "row":
            yield from (inner for inner in panel.get("panels", []) if inner.get("targets"))
        elif panel.get("targets"):
            yield panel


def _payload(text: Any) -> dict:
    """The payload as the plugin sends it: code-mode text parsed; nothing (or junk) is {}."""
    if isinstance(text, dict):
        return copy.deepcopy(text)
    try:
        parsed = json.loads(text) if isinstance(text, str) and text.strip() else {}
    except ValueError:
        return {}  # the plugin sends {} for a payload it cannot parse
    return parsed if isinstance(parsed, dict) else {}


def sent_targets(targets: list[dict]) -> list[dict]:
    """The targets as the simPod plugin sends them to ``/query``."""
    return [
        {**copy.deepcopy(target), "payload": _payload(target.get("payload"))}
        for target in targets
        if not target.get("hide") and target.get("target") is not None
    ]


def _interval(span_ms: int, points: int, min_interval: str | None) -> dict:
    low = sizing.interval_to_ms(min_interval) if min_interval else 1
    interval_ms, interval = sizing.calculate_interval(span_ms, points, low)
    return {
        "interval": interval,
        "intervalMs": interval_ms,
        "scopedVars": {
            "__interval": {"text": interval, "value": interval},
            "__interval_ms": {"text": str(interval_ms), "value": interval_ms},
        },
    }


def panel_request(
    dashboard: dict, panel: dict, span: TimeRange, screen: sizing.Screen, number: int = 1
) -> dict:
    """The body of the ``/query`` request Grafana sends for ``panel``."""
    points = sizing.max_data_points(panel, screen)
    return {
        "app": "dashboard",
        "requestId": f"SQR{100 + number}",
        "timezone": dashboard.get("timezone", "browser"),
        **span.as_request(),
        **_interval(span.span_ms, points, panel.get("interval")),
        "maxDataPoints": points,
        "targets": sent_targets(panel["targets"]),
        "startTime": ms(datetime.now(UTC).replace(tzinfo=None)),
        "dashboardUID": dashboard.get("uid"),
        "panelId": panel.get("id"),
        "panelName": panel.get("title"),
        "panelPluginId": panel.get("type"),
        "filters": [],
    }


def annotation_queries(dashboard: dict) -> list[dict]:
    """The enabled annotation queries of the simPod datasource (Grafana runs no other)."""
    return [
        annotation
        for annotation in dashboard.get("annotations", {}).get("list", [])
        if annotation.get("enable")
        and annotation.get("datasource", {}).get("type") == simpod.PLUGIN
        and annotation.get("target")
    ]


def annotation_request(
    dashboard: dict, annotation: dict, span: TimeRange, screen: sizing.Screen, number: int = 1
) -> dict:
    """The body of the ``/query`` request Grafana sends for an annotation query."""
    request = _interval(span.span_ms, screen.window_px, None)
    request["scopedVars"]["__annotation"] = {"text": annotation["name"], "value": annotation}
    target = {**annotation["target"], "refId": simpod.ANNOTATION_REF_ID}
    return {
        "startTime": ms(datetime.now(UTC).replace(tzinfo=None)),
        "requestId": f"AQ{100 + number}",
        **span.as_request(),
        "maxDataPoints": screen.window_px,
        **request,
        "app": "dashboard",
        "dataQueryKind": "annotations",
        "timezone": dashboard.get("timezone", "browser"),
        "targets": sent_targets([target]),
    }
