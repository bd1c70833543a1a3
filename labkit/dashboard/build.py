"""The provisioned Grafana dashboard, as code: built from the sensor catalogue with Grafana's
own Python SDK (``grafana-foundation-sdk``).

``labkit grafana-dashboard`` writes it to ``grafana/provisioning/dashboards/iotlab.json``; a
unit test fails when that file differs from what this module builds. The rows follow the
catalogue, so that a sensor added to it gets its panels:

* a **meter and the sensors that measure its parts** (Etot with HVAC1, HVAC2, MiAC1, MiAC2;
  Wtot with W1) share a row: the parts' readings, their daily sums beside the meter's daily
  difference, the meter's rest (energy not accounted for; the water leak) and the meter itself;
* **other interval sensors** share a row per quantity (TH1, TH2: temperatures): readings and
  daily aggregates;
* **event sensors** (MOV1) go to the last row with the data quality: invalid messages counted,
  late readings of ``sensors.LATE_SENSOR`` and invalid messages listed.

Late readings (shown) and invalid messages (off until switched on) also mark the time axes
as annotations. Metric names are those ``labkit.api`` serves (a unit test checks each one).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as builders
from grafana_foundation_sdk.builders import table, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as models

from labkit import sensors
from labkit.config import PROJECT_ROOT
from labkit.dashboard import simpod
from labkit.sensors import Aggregate, Sensor, SensorKind

PROVISIONED = PROJECT_ROOT / "grafana" / "provisioning" / "dashboards" / "iotlab.json"
UID = "iotlab-overview"
TITLE = "iotlab: building sensors"
# January 2024, where `labkit run` simulates (sensors.Scenario's default start).
TIME_FROM = datetime(2024, 1, 1)
TIME_TO = datetime(2024, 1, 31)
PANEL_HEIGHT = 8
TABLE_HEIGHT = 7
GRID_COLUMNS = 24
INVALID = "invalid"  # the API's metric of invalid input messages
TABLE = {"format": "table"}
ANNOTATIONS = {"format": "annotations"}


Panel = timeseries.Panel | table.Panel


@dataclass(frozen=True)
class Quantity:
    """What a unit of the catalogue measures, and Grafana's id for the unit."""

    name: str
    grafana_unit: str


QUANTITIES = {
    "°C": Quantity("Temperatures", "celsius"),
    "Wh": Quantity("Energy", "watth"),
    "m³": Quantity("Water", "m3"),
    "events": Quantity("Movements", "short"),
}


def quantity(sensor: Sensor) -> Quantity:
    """The sensor's quantity; a unit Grafana does not know is shown as a suffix."""
    described = sensor.description[:1].upper() + sensor.description[1:]
    return QUANTITIES.get(sensor.unit, Quantity(described, f"suffix: {sensor.unit}"))


# The API's metric names (labkit.api builds the same from the catalogue).
def raw_metric(sensor: Sensor) -> str:
    return f"{sensor.name}_raw"


def daily_metric(sensor: Sensor) -> str:
    return f"{sensor.name}_aggr"


def late_metric(sensor_name: str) -> str:
    return f"{sensor_name}_late"


# --------------------------------------------------------------------------------------
# Panels
# --------------------------------------------------------------------------------------


def _targets(panel: Panel, metrics: Sequence[str], payload: dict | None = None) -> None:
    for index, metric in enumerate(metrics):
        target = simpod.Target(metric, ref_id=chr(ord("A") + index))
        panel.with_target(target.payload(payload) if payload else target)


def _legend() -> common_builders.VizLegendOptions:
    return (
        common_builders.VizLegendOptions()
        .display_mode(common.LegendDisplayMode.LIST)
        .placement(common.LegendPlacement.BOTTOM)
        .show_legend(True)
    )


def _thresholds(steps: list[tuple[float | None, str]]) -> builders.ThresholdsConfig:
    return (
        builders.ThresholdsConfig()
        .mode(models.ThresholdsMode.ABSOLUTE)
        .steps([models.Threshold(value, color) for value, color in steps])
    )


def series_panel(
    title: str, description: str, metrics: Sequence[str], unit: str, bars: bool = False
) -> timeseries.Panel:
    """A time series panel: lines for readings, bars for one value per day."""
    tooltip = common_builders.VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI)
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(simpod.DATASOURCE)
        .unit(unit)
        .height(PANEL_HEIGHT)
        .line_width(1)
        .legend(_legend())
        .tooltip(tooltip.sort(common.SortOrder.NONE))
    )
    if bars:
        panel.draw_style(common.GraphDrawStyle.BARS).fill_opacity(70)
    else:
        panel.draw_style(common.GraphDrawStyle.LINE).fill_opacity(0)
        panel.show_points(common.VisibilityMode.NEVER)
    _targets(panel, metrics)
    return panel


def with_threshold_lines(
    panel: timeseries.Panel, steps: list[tuple[float | None, str]]
) -> timeseries.Panel:
    """Thresholds drawn as dashed lines (the first step is the base, below every other)."""
    dashed = common.GraphThresholdsStyleMode.DASHED
    style = common_builders.GraphThresholdsStyleConfig().mode(dashed)
    return panel.thresholds(_thresholds(steps)).thresholds_style(style)


def table_panel(
    title: str,
    description: str,
    metric: str,
    units: dict[str, str],
    height: int = PANEL_HEIGHT,
) -> table.Panel:
    """A table of a late or invalid metric; ``units`` of its columns, by name."""
    panel = (
        table.Panel()
        .title(title)
        .description(description)
        .datasource(simpod.DATASOURCE)
        .height(height)
        .show_header(True)
    )
    for column, unit in units.items():
        panel.override_by_name(column, [models.DynamicConfigValue(id_val="unit", value=unit)])
    _targets(panel, [metric], TABLE)
    return panel


def _names(sensor_names: Iterable[str]) -> str:
    names = list(sensor_names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


EVERY = f"{sensors.TICK.seconds // 60} minutes"


def readings_panel(group: Sequence[Sensor]) -> timeseries.Panel:
    """The group's readings; the devices' common limit, if any, as a threshold."""
    what, names = quantity(group[0]), _names(sensor.name for sensor in group)
    averaged = group[0].aggregate is Aggregate.AVG
    panel = series_panel(
        f"{what.name}: readings every {EVERY}" if averaged else f"{what.name} per {EVERY}",
        f"Readings of {names} (iot_raw), downsampled by the API to the panel's width: "
        "roll-ups for wide buckets.",
        [raw_metric(sensor) for sensor in group],
        what.grafana_unit,
    )
    limits = {sensor.valid_max for sensor in group}
    if len(limits) == 1 and (limit := limits.pop()) != float("inf"):
        # Above the device's rating a reading is invalid input: Flink diverts it.
        with_threshold_lines(panel, [(None, "green"), (limit, "red")])
    return panel


def daily_panel(group: Sequence[Sensor], meter: Sensor | None = None) -> timeseries.Panel:
    """The group's daily aggregates, with the meter's daily difference beside its parts'."""
    what, names = quantity(group[0]), _names(sensor.name for sensor in group)
    averaged = group[0].aggregate is Aggregate.AVG
    metrics = [daily_metric(sensor) for sensor in group]
    description = (
        f"{'AVG' if averaged else 'SUM'} of {names} over 1-day tumbling windows (iot_daily), "
        "stamped at the day's midnight UTC."
    )
    if meter is not None:
        diff = sensors.diff_metric(meter.name)
        metrics.append(diff)
        description += f" {diff}: the meter's reading minus the day before's."
    title = f"{what.name}: daily average" if averaged else f"{what.name} per day"
    return series_panel(title, description, metrics, what.grafana_unit, bars=True)


def meter_panels(meter: Sensor) -> list[Panel]:
    """A meter's rest (what its parts do not explain) and its cumulative reading."""
    what, rest = quantity(meter), sensors.rest_metric(meter.name)
    rest_panel = series_panel(
        f"{what.name} not accounted for by {_names(meter.parts)}",
        f"{rest} = {sensors.diff_metric(meter.name)} - {' - '.join(meter.parts)}, per day. "
        "Below zero the parts counted more than the meter: a reading lost or counted twice.",
        [rest],
        what.grafana_unit,
        bars=True,
    )
    cumulative = series_panel(
        f"{meter.name}: {meter.description}",
        "The meter's reading, sent once a day at the day's last second.",
        [raw_metric(meter)],
        what.grafana_unit,
    )
    return [with_threshold_lines(rest_panel, [(None, "red"), (0, "green")]), cumulative]


def quality_panels(events: Sequence[Sensor]) -> list[Panel]:
    """Events per day, invalid messages counted, late readings listed."""
    panels: list[Panel] = [
        series_panel(
            f"{quantity(sensor).name} per day",
            f"{sensor.name} ({sensor.description}): events per day (iot_daily).",
            [daily_metric(sensor)],
            quantity(sensor).grafana_unit,
            bars=True,
        )
        for sensor in events
    ]
    late = sensors.SENSORS[sensors.LATE_SENSOR]
    invalid = series_panel(
        "Invalid messages",
        "Invalid input messages (iot_invalid) counted per time bucket.",
        [INVALID],
        "short",
        bars=True,
    )
    late_table = table_panel(
        f"Late {late.name} readings",
        f"{late.name} readings that arrived behind the watermark (iot_late): never part of "
        "an aggregate.",
        late_metric(late.name),
        {"value": quantity(late).grafana_unit, "behind_watermark_s": "s", "delay_s": "s"},
    )
    return [*panels, invalid, late_table]


def reasons_panel() -> Panel:
    """Why each invalid message was refused: the whole width, for the messages' text."""
    why = "Why each message was refused (iot_invalid), with its text."
    panel = table_panel("Invalid messages: why", why, INVALID, {"chars": "short"}, TABLE_HEIGHT)
    return panel.span(GRID_COLUMNS)


# --------------------------------------------------------------------------------------
# Rows and the dashboard
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Group:
    """Sensors that share a row: a meter with its parts, or sensors of one quantity."""

    sensors: tuple[Sensor, ...]
    meter: Sensor | None = None

    @property
    def title(self) -> str:
        return quantity(self.sensors[0]).name


def groups(catalogue: Sequence[Sensor]) -> list[Group]:
    """The catalogue's interval sensors in rows, in the catalogue's order (see module doc)."""
    meters = {s.name: s for s in catalogue if s.kind is SensorKind.METER}
    meter_of = {part: meter for meter in meters.values() for part in meter.parts}
    found: dict[str, list[Sensor]] = {}
    for sensor in catalogue:
        if sensor.kind is not SensorKind.INTERVAL:
            continue
        key = meter_of[sensor.name].name if sensor.name in meter_of else quantity(sensor).name
        found.setdefault(key, []).append(sensor)
    return [Group(tuple(members), meters.get(key)) for key, members in found.items()]


def _spread(panels: list[Panel]) -> list[Panel]:
    """Two or four panels two abreast, others three abreast (24 grid columns)."""
    columns = 2 if len(panels) in (2, 4) else min(len(panels), 3)
    return [panel.span(GRID_COLUMNS // columns) for panel in panels]


def rows(catalogue: Sequence[Sensor]) -> list[tuple[str, list[Panel]]]:
    """(row title, its panels laid out) in the dashboard's order."""
    found = []
    for group in groups(catalogue):
        panels: list[Panel] = [
            readings_panel(group.sensors),
            daily_panel(group.sensors, group.meter),
        ]
        title = group.title
        if group.meter is not None:
            panels += meter_panels(group.meter)
            title += f": {group.meter.name} and its parts {_names(group.meter.parts)}"
        found.append((title, _spread(panels)))
    events = [sensor for sensor in catalogue if sensor.kind is SensorKind.EVENT]
    title = " and ".join([quantity(s).name for s in events] + ["data quality"])
    found.append(
        (title[:1].upper() + title[1:], [*_spread(quality_panels(events)), reasons_panel()])
    )
    return found


def _annotation(name: str, metric: str, color: str, shown: bool) -> builders.AnnotationQuery:
    return (
        builders.AnnotationQuery()
        .name(name)
        .datasource(simpod.DATASOURCE)
        .enable(shown)
        .hide(False)
        .icon_color(color)
        .target(simpod.Annotation(metric, ANNOTATIONS))
    )


def _grafana_annotations() -> builders.AnnotationQuery:
    """Grafana's own annotations and alerts, which every dashboard has."""
    return (
        builders.AnnotationQuery()
        .name("Annotations & Alerts")
        .datasource(models.DataSourceRef(type_val="grafana", uid="-- Grafana --"))
        .enable(True)
        .hide(True)
        .icon_color("rgba(0, 211, 255, 1)")
        .type("dashboard")
        .built_in(1)
    )


def build(catalogue: Sequence[Sensor] = sensors.CATALOGUE) -> models.Dashboard:
    """The dashboard of the catalogue's sensors."""
    board = (
        builders.Dashboard(TITLE)
        .uid(UID)
        .description("The lab's HBase tables, served by labkit.api (the simPod JSON datasource). "
                     "Generated by labkit.dashboard.build from the sensor catalogue.")
        .tags(["iotlab"])
        .timezone("utc")
        .editable()
        .tooltip(models.DashboardCursorSync.CROSSHAIR)
        .time(_iso(TIME_FROM), _iso(TIME_TO))
        .refresh("")
        .version(1)
        .annotations([
            _grafana_annotations(),
            _annotation(f"Late {sensors.LATE_SENSOR} readings",
                        late_metric(sensors.LATE_SENSOR), "orange", shown=True),
            _annotation("Invalid messages", INVALID, "red", shown=False),
        ])
    )  # fmt: skip
    panel_id = 0
    for title, panels in rows(catalogue):
        panel_id += 1
        board.with_row(builders.Row(title).id(panel_id))
        for panel in panels:
            panel_id += 1
            board.with_panel(panel.id(panel_id))
    return board.build()


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds") + "Z"


def to_json(dashboard: models.Dashboard) -> str:
    """The dashboard as Grafana's provisioning reads it."""
    return json.dumps(dashboard, cls=JSONEncoder, indent=2, ensure_ascii=False) + "\n"


def write(path: Path = PROVISIONED, catalogue: Sequence[Sensor] = sensors.CATALOGUE) -> Path:
    """Write the dashboard's JSON (``labkit grafana-dashboard``)."""
    path.write_text(to_json(build(catalogue)))
    return path
