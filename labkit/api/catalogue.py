"""The metrics the API serves, named as in the original dashboard, and how a target names them.

==========================  ==========  ==========================================================
metric                      table       what
==========================  ==========  ==========================================================
``TH1_raw``                 raw         a sensor's on-time readings (every sensor)
``TH1_aggr``                daily       a sensor's daily AVG or SUM, stamped at the day's midnight
``Etot_DailyDiff``          daily       a meter's daily difference (also ``Wtot_DailyDiff``)
``Etot_AggDayRest``         daily       a meter's rest (``Wtot_AggDayRest``: the water leak)
``W1_late``                 late        late readings, at their event time (every sensor)
``invalid``                 invalid     invalid messages at their send time: counted per bucket
                                        (time series) or listed (table, annotations)
==========================  ==========  ==========================================================

A target names one metric, or several the way Grafana interpolates a multi-value variable:
``(TH1_raw|TH2_raw)`` (regex), ``{TH1_raw,TH2_raw}`` (glob), also inside a name
(``(TH1|TH2)_raw``). A ``*`` or ``.*`` (a variable's "All" value) matches any part of a name:
``.*`` is every metric, ``.*_late`` every late metric. A name given outright must exist; a
wildcard may match none. Nothing else of a regex or glob is understood, so no target can cost
more than matching a few dozen names.
"""

from __future__ import annotations

import fnmatch
import itertools
import re
from dataclasses import dataclass
from enum import StrEnum

from labkit import sensors
from labkit.api.errors import ApiError, bad_request
from labkit.hbase.layout import INVALID_PREFIX, TableKind
from labkit.sensors import Aggregate


class Format(StrEnum):
    """What a target asks for."""

    TIMESERIES = "timeseries"
    TABLE = "table"
    ANNOTATIONS = "annotations"  # late and invalid metrics only: their events

    @property
    def label(self) -> str:
        names = {Format.TIMESERIES: "Time series", Format.TABLE: "Table",
                 Format.ANNOTATIONS: "Annotations"}  # fmt: skip
        return names[self]


class Source(StrEnum):
    """Where a raw metric's downsampled points come from."""

    AUTO = "auto"  # the roll-ups where whole periods fit in the buckets, raw readings elsewhere
    RAW = "raw"  # every raw reading (to compare, or to time it)


# Tables whose rows are events (one per message), listed in tables and annotations.
EVENT_KINDS = (TableKind.LATE, TableKind.INVALID)


@dataclass(frozen=True)
class Metric:
    """One series Grafana can ask for, and where it lives in HBase."""

    name: str  # as Grafana knows it: TH1_raw, TH1_aggr, Etot_DailyDiff, W1_late, invalid
    kind: TableKind  # its table: raw, daily, late or invalid
    key: str  # the row-key prefix in that table: TH1, Etot_DailyDiff, input
    label: str  # a human description for the query editor
    unit: str

    @property
    def has_events(self) -> bool:
        return self.kind in EVENT_KINDS

    @property
    def formats(self) -> tuple[Format, ...]:
        return tuple(Format) if self.has_events else (Format.TIMESERIES, Format.TABLE)


_DAILY_WORDS = {
    Aggregate.AVG: "daily average",
    Aggregate.SUM: "daily sum",
    Aggregate.DIFF: "daily difference",
}


def _daily_label(metric: str, aggregate: Aggregate) -> str:
    if aggregate in _DAILY_WORDS:
        return f"{metric} {_DAILY_WORDS[aggregate]}"
    meter = metric.removesuffix("_AggDayRest")
    parts = " - ".join(sensors.SENSORS[meter].parts)
    return f"{meter} daily rest: difference - {parts}"


def build_catalogue() -> dict[str, Metric]:
    """Every metric the API serves, built from ``labkit.sensors``."""
    metrics: list[Metric] = []
    for sensor in sensors.CATALOGUE:
        metrics.append(
            Metric(f"{sensor.name}_raw", TableKind.RAW, sensor.name,
                   f"{sensor.name} readings ({sensor.description})", sensor.unit)
        )  # fmt: skip
    for name, aggregate in sensors.daily_metrics().items():
        if aggregate in (Aggregate.AVG, Aggregate.SUM):
            metric, unit = f"{name}_aggr", sensors.SENSORS[name].unit
        else:  # a meter's DIFF or REST keeps its name, as in the original dashboard
            metric, unit = name, sensors.SENSORS[name.split("_", 1)[0]].unit
        metrics.append(Metric(metric, TableKind.DAILY, name, _daily_label(name, aggregate), unit))
    for sensor in sensors.CATALOGUE:
        metrics.append(
            Metric(f"{sensor.name}_late", TableKind.LATE, sensor.name,
                   f"{sensor.name} late readings, at their event time", sensor.unit)
        )  # fmt: skip
    metrics.append(
        Metric("invalid", TableKind.INVALID, INVALID_PREFIX, "invalid input messages", "messages")
    )
    return {metric.name: metric for metric in metrics}


CATALOGUE: dict[str, Metric] = build_catalogue()


def metric_names() -> list[str]:
    return list(CATALOGUE)


def unknown_metric(name: str) -> ApiError:
    valid = metric_names()
    return bad_request(
        f"Unknown metric {name[:100]!r}. The metrics are: {', '.join(valid)}", metrics=valid
    )


# A target's parts: a group of alternatives "(a|b)" or "{a,b}", a wildcard, a run of name
# characters. Nothing else (no regex, no key separator) can be part of a name.
_PART = re.compile(r"\(([A-Za-z0-9_|]*)\)|\{([A-Za-z0-9_,]*)\}|(\.?\*)|([A-Za-z0-9_]+)")
# Bounds the names one target can spell out, e.g. "(a|b|c)_(d|e|f)" spells out nine.
MAX_SPELLED_OUT = 1_000
# A dashboard variable left as text: $name, ${name}, ${name:format}, [[name]].
_VARIABLE = re.compile(r"\$\w|\$\{|\[\[\w")


def names_a_variable(text: str) -> bool:
    """True when the target still holds a dashboard variable Grafana did not replace."""
    return _VARIABLE.search(text) is not None


def is_pattern(text: str) -> bool:
    """True when the target has a wildcard: it names whichever metrics match."""
    return "*" in text


def _spelled_out(text: str) -> list[str]:
    """The names (with ``*`` wildcards) a target spells out: every choice of each group."""
    choices: list[list[str]] = []
    position = 0
    while position < len(text):
        part = _PART.match(text, position)
        if part is None:
            raise unknown_metric(text)
        regex_group, glob_group, wildcard, name = part.groups()
        if wildcard is not None:
            choices.append(["*"])
        elif name is not None:
            choices.append([name])
        else:
            group = regex_group.split("|") if regex_group is not None else glob_group.split(",")
            choices.append(group)
        position = part.end()
    count = 1
    for group in choices:
        count *= len(group)
        if count > MAX_SPELLED_OUT:
            raise bad_request(f"The target names more than {MAX_SPELLED_OUT} metrics")
    return ["".join(parts) for parts in itertools.product(*choices)]


def resolve(text: str) -> list[Metric]:
    """The metrics a target names (see the module doc), in catalogue order for wildcards."""
    text = text.strip()
    if text in CATALOGUE:
        return [CATALOGUE[text]]
    found: dict[str, Metric] = {}
    for name in _spelled_out(text):
        if "*" in name:
            pattern = re.sub(r"\*+", "*", name)
            found.update((n, m) for n, m in CATALOGUE.items() if fnmatch.fnmatchcase(n, pattern))
        elif name in CATALOGUE:
            found[name] = CATALOGUE[name]
        else:
            raise unknown_metric(name or text)
    return list(found.values())


def matching(text: str | None) -> list[str]:
    """Metric names containing ``text`` (any case); all of them for no text, ``*`` or ``.*``."""
    text = (text or "").strip().lower()
    if text in ("", "*", ".*"):
        return metric_names()
    return [name for name in CATALOGUE if text in name.lower()]
