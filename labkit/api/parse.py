"""Reading request bodies: JSON of bounded size, the time range, the targets, validated.

Every function here raises ``ApiError`` (a 400 or 413 with a message) on a body it cannot
read; what it returns is typed and checked: a ``Window``, ``maxDataPoints``, ``Selection``s.

A ``/query`` target asks for one of three formats: ``timeseries`` (the default), ``table`` or
``annotations`` (late and invalid metrics only). SimpleJSON says so with the target's ``type``
(``timeserie`` or ``table``); the simPod plugin, which dropped ``type``, with the target's
payload, e.g. ``{"format": "table"}``. A raw metric's payload may also say
``{"source": "raw"}``: downsample every reading, never the roll-ups.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import falcon

from labkit.api.catalogue import Format, Metric, Source, is_pattern, names_a_variable, resolve
from labkit.api.errors import ApiError, bad_request

MAX_BODY_BYTES = 1024 * 1024
MAX_DATA_POINTS = 10_000
# When a request names no maxDataPoints (Grafana always does; curl users may not).
DEFAULT_DATA_POINTS = 1_000
# Each metric of a request is one range scan: bound the work one request can ask for.
MAX_METRICS_PER_QUERY = 50
# A target's "type" (SimpleJSON; simPod <= 0.2), also accepted as a payload's format.
_TARGET_TYPES = {"timeserie": Format.TIMESERIES, "timeseries": Format.TIMESERIES,
                 "table": Format.TABLE}  # fmt: skip
# The refId Grafana gives the one target of a dashboard's annotation query.
ANNOTATION_REF_ID = "Anno"
# Placeholder SimpleJSON sends for a target whose metric was never chosen.
PLACEHOLDER = "select metric"

EPOCH = datetime(1970, 1, 1)


def too_large() -> ApiError:
    return ApiError(falcon.HTTP_413, f"The body is larger than {MAX_BODY_BYTES} bytes")


def read_json(req: falcon.Request) -> Any:
    """The request's JSON body (``{}`` when empty), at most MAX_BODY_BYTES long."""
    if req.content_length is not None and req.content_length > MAX_BODY_BYTES:
        raise too_large()
    # Read one byte more than allowed: a chunked body has no length to check beforehand.
    raw = req.bounded_stream.read(MAX_BODY_BYTES + 1)
    if len(raw) > MAX_BODY_BYTES:
        raise too_large()
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as error:  # RecursionError: absurdly nested JSON
        raise bad_request(f"The body is not valid JSON: {str(error)[:200]}") from None


def read_object(req: falcon.Request) -> dict:
    """The request's JSON body, which must be an object."""
    return as_object(read_json(req), "The body")


def as_object(value: Any, what: str) -> dict:
    if not isinstance(value, dict):
        raise bad_request(f"{what} must be a JSON object")
    return value


def optional_str(body: dict, key: str, what: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise bad_request(f"{what}.{key} must be a string")
    return value


def _payload(target: dict) -> dict:
    """A target's payload (simPod >= 0.3) or data (simPod <= 0.2), as an object."""
    key = "payload" if "payload" in target else "data"
    value = target.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        return {}
    if isinstance(value, str):  # a code-mode payload, sent as the text the user typed
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            raise bad_request(f"target.{key} is not valid JSON") from None
    return as_object(value, f"target.{key}")


# --------------------------------------------------------------------------------------
# Time
# --------------------------------------------------------------------------------------


def to_ms(moment: datetime) -> int:
    """Epoch milliseconds of a naive UTC datetime."""
    return (moment - EPOCH) // timedelta(milliseconds=1)


def from_ms(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


@dataclass(frozen=True)
class Window:
    """A query's time range, as naive UTC datetimes; both ends included."""

    start: datetime
    end: datetime

    @property
    def start_ms(self) -> int:
        return to_ms(self.start)

    @property
    def end_ms(self) -> int:
        return to_ms(self.end)


def _instant(value: Any, what: str) -> datetime:
    if not isinstance(value, str):
        raise bad_request(f"{what} must be an ISO 8601 time such as 2024-01-05T10:15:00.000Z")
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise bad_request(f"{what}={value[:100]!r} is not an ISO 8601 time") from None
    if moment.tzinfo is not None:
        try:
            moment = moment.astimezone(UTC).replace(tzinfo=None)
        except OverflowError:
            raise bad_request(f"{what}={value[:100]!r} is out of range") from None
    return moment


def window(body: dict) -> Window:
    """The body's ``range``: from and to, ISO 8601, in order."""
    span = as_object(body.get("range"), "range")
    read = Window(_instant(span.get("from"), "range.from"), _instant(span.get("to"), "range.to"))
    if read.start > read.end:
        raise bad_request("range.from is later than range.to")
    return read


def max_points(body: dict) -> int:
    """``maxDataPoints``, capped at MAX_DATA_POINTS."""
    value = body.get("maxDataPoints", DEFAULT_DATA_POINTS)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise bad_request("maxDataPoints must be a positive integer")
    return min(value, MAX_DATA_POINTS)


# --------------------------------------------------------------------------------------
# Targets
# --------------------------------------------------------------------------------------


Choice = TypeVar("Choice", Format, Source)


def _choice(enum: type[Choice], value: Any, what: str) -> Choice:
    try:
        return enum(value)
    except (ValueError, TypeError):  # TypeError: a list or an object
        raise bad_request(f"{what} must be one of {', '.join(enum)}") from None


def _source(target: dict) -> Source:
    return _choice(Source, _payload(target).get("source", Source.AUTO), "payload.source")


def _format(target: dict) -> Format | None:
    """The format the target asks for; None when it names none."""
    legacy = target.get("type")  # SimpleJSON: timeserie|table; simPod <= 0.2: timeseries|table
    if legacy is not None and (not isinstance(legacy, str) or legacy not in _TARGET_TYPES):
        raise bad_request("target.type must be 'timeserie' or 'table'")
    chosen = _payload(target).get("format", legacy)
    if chosen is None:
        return None
    if isinstance(chosen, str) and chosen in _TARGET_TYPES:
        return _TARGET_TYPES[chosen]
    return _choice(Format, chosen, "payload.format")


def is_annotation_query(body: dict, target: dict) -> bool:
    """True for a dashboard's annotation query: Grafana sends it through /query as one target
    with refId "Anno", in a request whose requestId is "AQ<n>"."""
    request_id = body.get("requestId")
    return (
        target.get("refId") == ANNOTATION_REF_ID
        and isinstance(request_id, str)
        and request_id.startswith("AQ")
    )


@dataclass(frozen=True)
class Selection:
    """One metric of a query, in one format, answered under the target's refId."""

    metric: Metric
    format: Format
    ref_id: str | None
    source: Source = Source.AUTO


@dataclass(frozen=True)
class Unanswerable:
    """A target no metric can answer without failing the panel: answered with no data and a
    notice Grafana shows on the panel."""

    target: str
    ref_id: str | None
    notice: str


def _unanswerable(name: str, ref_id: str | None) -> Unanswerable | None:
    if names_a_variable(name):
        return Unanswerable(name, ref_id, f"The target {name[:100]!r} holds a dashboard "
                            "variable Grafana did not replace: define the variable in the "
                            "dashboard's settings, or pick a metric")  # fmt: skip
    return None


def _metric_format(metric: Metric, chosen: Format | None, annotating: bool) -> Format:
    if chosen is not None:
        return chosen
    # An annotation query asks for annotations even without a payload saying so.
    return Format.ANNOTATIONS if annotating and metric.has_events else Format.TIMESERIES


def selections(body: dict) -> list[Selection | Unanswerable]:
    """What the body's targets ask for, hidden and unchosen targets left out.

    A target that names metrics outright must name existing ones, in a format they have (400
    otherwise). A wildcard (a variable's "All" value) takes every metric that matches and has
    the format asked for. A variable left as text, or a wildcard that matches no metric, is
    ``Unanswerable``: the panel shows a notice, its other targets are answered.
    """
    targets = body.get("targets")
    if not isinstance(targets, list):
        raise bad_request("targets must be a list")
    chosen: list[Selection | Unanswerable] = []
    for target in targets:
        target = as_object(target, "each target")
        name = optional_str(target, "target", "target")
        if target.get("hide") is True or name is None or name.strip() in ("", PLACEHOLDER):
            continue
        ref_id = optional_str(target, "refId", "target")
        wanted, source = _format(target), _source(target)
        skipped = _unanswerable(name, ref_id)
        if skipped is not None:
            chosen.append(skipped)
            continue
        annotating = is_annotation_query(body, target)
        metrics = resolve(name)
        if is_pattern(name):
            metrics = [m for m in metrics if wanted is None or wanted in m.formats]
            if not metrics:
                what = f" with the format {wanted}" if wanted else ""
                chosen.append(Unanswerable(name, ref_id, f"No metric{what} matches "
                                           f"{name.strip()[:100]!r}"))  # fmt: skip
        for metric in metrics:
            shown = _metric_format(metric, wanted, annotating)
            if shown not in metric.formats:
                raise bad_request(
                    f"{metric.name} has no {shown}: only late and invalid metrics have them"
                )
            chosen.append(Selection(metric, shown, ref_id, source))
    if sum(isinstance(item, Selection) for item in chosen) > MAX_METRICS_PER_QUERY:
        raise bad_request(f"A query may ask for at most {MAX_METRICS_PER_QUERY} metrics")
    return chosen
