"""The provisioned dashboard is generated from the sensor catalogue (labkit.dashboard.build)."""

from __future__ import annotations

import dataclasses
import json

import yaml

from labkit import api, sensors
from labkit.config import PROJECT_ROOT
from labkit.dashboard import build
from labkit.sensors import Aggregate, Sensor, SensorKind

DATASOURCES = PROJECT_ROOT / "grafana" / "provisioning" / "datasources" / "iotlab-api.yaml"


def generated(catalogue: tuple[Sensor, ...] = sensors.CATALOGUE) -> dict:
    return json.loads(build.to_json(build.build(catalogue)))


def panels(dashboard: dict) -> list[dict]:
    return [panel for panel in dashboard["panels"] if panel["type"] != "row"]


def targets(dashboard: dict) -> list[dict]:
    found = [target for panel in panels(dashboard) for target in panel["targets"]]
    return found + [a["target"] for a in dashboard["annotations"]["list"] if "target" in a]


def test_the_committed_dashboard_is_what_the_code_generates():
    committed = build.PROVISIONED.read_text()
    assert committed == build.to_json(build.build()), (
        "grafana/provisioning/dashboards/iotlab.json differs from labkit.dashboard.build: "
        "run `labkit grafana-dashboard` (make dashboard) and commit the file"
    )


def test_every_target_is_a_metric_the_api_serves_in_a_format_it_has():
    dashboard = generated()
    for target in targets(dashboard):
        metric = api.CATALOGUE[target["target"]]
        payload = json.loads(target["payload"]) if target["payload"] else {}
        assert payload.get("format", "timeseries") in metric.formats, target


def test_every_sensor_and_daily_metric_has_a_panel():
    shown = {target["target"] for target in targets(generated())}
    for sensor in sensors.CATALOGUE:
        if sensor.kind is not SensorKind.EVENT:  # movements are shown per day
            assert f"{sensor.name}_raw" in shown
    for name, aggregate in sensors.daily_metrics().items():
        assert (f"{name}_aggr" if aggregate in (Aggregate.AVG, Aggregate.SUM) else name) in shown
    assert {f"{sensors.LATE_SENSOR}_late", "invalid"} <= shown


def test_targets_and_annotations_use_the_provisioned_datasource():
    (source,) = yaml.safe_load(DATASOURCES.read_text())["datasources"]
    dashboard = generated()
    for panel in panels(dashboard):
        assert panel["datasource"] == {"type": source["type"], "uid": source["uid"]}
        assert all(t["datasource"]["uid"] == source["uid"] for t in panel["targets"])
    late, invalid = dashboard["annotations"]["list"][1:]
    assert late["target"] == {"refId": "Anno", "target": "W1_late",
                              "payload": '{"format": "annotations"}'}  # fmt: skip
    assert late["enable"] and not invalid["enable"]
    assert late["datasource"]["uid"] == invalid["datasource"]["uid"] == source["uid"]


def test_panels_tile_the_grid_below_their_row_without_overlapping():
    taken: set[tuple[int, int]] = set()
    row_y = -1
    for panel in generated()["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= build.GRID_COLUMNS
        if panel["type"] == "row":
            assert grid["y"] > row_y
            row_y = grid["y"]
        else:
            assert grid["y"] > row_y
        cells = {(x, y) for x in range(grid["x"], grid["x"] + grid["w"])
                 for y in range(grid["y"], grid["y"] + grid["h"])}  # fmt: skip
        assert not cells & taken, panel["title"]
        taken |= cells


def _value_unit(panel: dict) -> str:
    """The unit of a panel's values: its default, or a table's override of ``value``."""
    for override in panel["fieldConfig"]["overrides"]:
        if override["matcher"] == {"id": "byName", "options": "value"}:
            return override["properties"][0]["value"]
    return panel["fieldConfig"]["defaults"].get("unit", "")


def test_units_follow_the_catalogue():
    units = {"celsius": "°C", "watth": "Wh", "m3": "m³"}
    checked = 0
    for panel in panels(generated()):
        unit = _value_unit(panel)
        for target in panel["targets"]:
            if unit in units:
                assert api.CATALOGUE[target["target"]].unit == units[unit], panel["title"]
                checked += 1
    assert checked >= 20  # every panel of readings and daily values, and the late table


def test_thresholds_mark_a_shared_device_limit_and_a_negative_rest():
    by_title = {panel["title"]: panel for panel in panels(generated())}
    water = by_title["Water per 15 minutes"]["fieldConfig"]["defaults"]
    assert water["thresholds"]["steps"][1] == {"value": sensors.SENSORS["W1"].valid_max,
                                               "color": "red"}  # fmt: skip
    assert water["custom"]["thresholdsStyle"] == {"mode": "dashed"}
    # The four energy consumers have four ratings: no single line would be true for all.
    assert "thresholds" not in by_title["Energy per 15 minutes"]["fieldConfig"]["defaults"]
    leak = by_title["Water not accounted for by W1"]["fieldConfig"]["defaults"]["thresholds"]
    assert leak["steps"] == [{"value": None, "color": "red"}, {"value": 0, "color": "green"}]


def test_a_sensor_added_to_the_catalogue_gets_its_panels():
    co2 = Sensor("CO2", SensorKind.INTERVAL, Aggregate.AVG, "ppm", "CO2 concentration",
                 400, 2000, valid_min=0, valid_max=5000)  # fmt: skip
    hvac3 = dataclasses.replace(sensors.SENSORS["HVAC1"], name="HVAC3")
    etot = sensors.SENSORS["Etot"]
    with_hvac3 = dataclasses.replace(etot, parts=(*etot.parts, "HVAC3"))
    catalogue = (*(with_hvac3 if s is etot else s for s in sensors.CATALOGUE), hvac3, co2)
    before, after = generated(), generated(catalogue)
    new = {t["target"] for t in targets(after)} - {t["target"] for t in targets(before)}
    assert new == {"CO2_raw", "CO2_aggr", "HVAC3_raw", "HVAC3_aggr"}
    rows = [panel["title"] for panel in after["panels"] if panel["type"] == "row"]
    assert "CO2 concentration" in rows and len(rows) == len(
        [p for p in before["panels"] if p["type"] == "row"]) + 1  # fmt: skip
    co2_panels = [
        p for p in panels(after) if any(t["target"].startswith("CO2") for t in p["targets"])
    ]
    assert [p["fieldConfig"]["defaults"]["unit"] for p in co2_panels] == ["suffix: ppm"] * 2
    energy = next(p for p in panels(after) if p["title"] == "Energy per day")
    assert [t["target"] for t in energy["targets"]][-2:] == ["HVAC3_aggr", "Etot_DailyDiff"]


def test_the_compose_grafana_loads_the_generated_dashboard_and_reaches_the_host():
    compose = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
    grafana = compose["services"]["grafana"]
    mounted = next(v for v in grafana["volumes"] if v.endswith(":/etc/grafana/provisioning:ro"))
    folder = PROJECT_ROOT / mounted.split(":")[0]
    assert build.PROVISIONED.parent == (folder / "dashboards").resolve()
    providers = yaml.safe_load((folder / "dashboards" / "iotlab.yaml").read_text())
    assert providers["providers"][0]["options"]["path"] == "/etc/grafana/provisioning/dashboards"
    # A student's own API on the host, for the datasource (README, "Grafana").
    assert "host.docker.internal:host-gateway" in grafana["extra_hosts"]
