"""Calling the API from Python (notebooks, tests, the benchmark, the load test): the request a
Grafana panel sends, and the API's JSON answer."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import UTC, datetime
from typing import Any

from labkit.api.parse import to_ms
from labkit.errors import LabkitError


def iso(moment: datetime) -> str:
    """A naive UTC datetime as Grafana writes times: ``2024-01-05T10:15:00.000Z``."""
    return moment.isoformat(timespec="milliseconds") + "Z"


def panel_request(
    metrics: list[str],
    start: datetime,
    end: datetime,
    max_data_points: int = 1000,
    payload: dict | None = None,
) -> dict:
    """The body of the ``/query`` request a Grafana panel with these metrics sends through
    the simPod plugin (0.6), one target per metric, with the fields Grafana adds."""
    interval_ms = max(1, (to_ms(end) - to_ms(start)) // max_data_points)
    interval = f"{interval_ms // 1000}s" if interval_ms >= 1000 else f"{interval_ms}ms"
    span = {"from": iso(start), "to": iso(end)}
    return {
        "app": "dashboard",
        "requestId": "Q100",
        "timezone": "utc",
        "panelId": 1,
        "dashboardUID": "iotlab-overview",
        "range": {**span, "raw": dict(span)},
        "rangeRaw": dict(span),
        "interval": interval,
        "intervalMs": interval_ms,
        "maxDataPoints": max_data_points,
        "startTime": to_ms(datetime.now(UTC).replace(tzinfo=None)),
        "scopedVars": {
            "__interval": {"text": interval, "value": interval},
            "__interval_ms": {"text": str(interval_ms), "value": interval_ms},
        },
        "targets": [
            {
                "refId": chr(ord("A") + index),
                "target": metric,
                "payload": dict(payload or {}),
                "editorMode": "code",
                "datasource": {"type": "simpod-json-datasource", "uid": "iotlab-api"},
                "hide": False,
            }
            for index, metric in enumerate(metrics)
        ],
        "filters": [],
        "adhocFilters": [],
    }


class ApiCallError(LabkitError):
    """The API answered with an error status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


def request(
    url: str, path: str = "/", body: object = None, token: str | None = None
) -> tuple[int, Any]:
    """(status, JSON answer) of ``POST url+path`` with ``body`` (``GET`` when body is None)."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    outgoing = urllib.request.Request(url.rstrip("/") + path, data=data, headers=headers)
    try:
        with urllib.request.urlopen(outgoing, timeout=60) as response:
            status, text = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read()
    try:
        return status, json.loads(text) if text else None
    except ValueError:
        return status, text.decode("utf-8", errors="replace")


def call(url: str, path: str = "/", body: object = None, token: str | None = None) -> Any:
    """The API's JSON answer, like ``request``; an error status raises ApiCallError."""
    status, answer = request(url, path, body, token)
    if status >= 400:
        message = answer.get("message") if isinstance(answer, dict) else answer
        raise ApiCallError(status, str(message))
    return answer
