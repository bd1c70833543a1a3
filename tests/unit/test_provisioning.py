"""The Grafana layer's configuration: the provisioned datasource and dashboard agree with each
other, and docker-compose.yml runs Grafana, the API and a Flink cluster as labkit expects."""

from __future__ import annotations

import json
from typing import Any

import yaml

from labkit.config import PROJECT_ROOT

from ..api_reference import DASHBOARDS, GRAFANA


def test_dashboard_and_datasource_provisioning_agree():
    datasources = yaml.safe_load((GRAFANA / "datasources" / "iotlab-api.yaml").read_text())
    (source,) = datasources["datasources"]
    assert source["type"] == "simpod-json-datasource" and source["access"] == "proxy"
    assert source["url"] == "http://api:5000"
    assert source["jsonData"]["httpHeaderName1"] == "Authorization"
    assert source["secureJsonData"]["httpHeaderValue1"] == "Bearer ${LABKIT_API_TOKEN}"
    providers = yaml.safe_load((GRAFANA / "dashboards" / "iotlab.yaml").read_text())
    assert providers["providers"][0]["options"]["path"] == "/etc/grafana/provisioning/dashboards"
    for path in DASHBOARDS:
        text = path.read_text()
        uids = {match["uid"] for match in _datasources(json.loads(text))}
        assert uids == {source["uid"], "-- Grafana --"}


def _datasources(node: Any) -> list[dict]:
    if isinstance(node, dict):
        own = [node["datasource"]] if isinstance(node.get("datasource"), dict) else []
        return own + [d for value in node.values() for d in _datasources(value)]
    if isinstance(node, list):
        return [d for value in node for d in _datasources(value)]
    return []


# --------------------------------------------------------------------------------------
# docker-compose.yml: the Grafana layer and the Flink cluster
# --------------------------------------------------------------------------------------

COMPOSE = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def test_compose_runs_grafana_with_the_plugin_and_the_provisioning():
    grafana = SERVICES["grafana"]
    assert grafana["image"].startswith("grafana/grafana:")
    assert "simpod-json-datasource" in grafana["environment"]["GF_PLUGINS_PREINSTALL_SYNC"]
    assert "./grafana/provisioning:/etc/grafana/provisioning:ro" in grafana["volumes"]
    assert "127.0.0.1:3000:3000" in grafana["ports"]
    # The datasource's Authorization header reads the same token the API is given.
    assert (
        grafana["environment"]["LABKIT_API_TOKEN"]
        == SERVICES["api"]["environment"]["LABKIT_API_TOKEN"]
    )


def test_compose_runs_the_api_against_the_hbase_container():
    service = SERVICES["api"]
    env = service["environment"]
    assert env["LABKIT_MODE"] == "external" and env["LABKIT_HBASE_HOST"] == "hbase"
    assert int(env["LABKIT_HBASE_THRIFT_PORT"]) == 9090
    # Bound to every interface inside its container, so a token is a must.
    assert env["LABKIT_API_HOST"] == "0.0.0.0" and env["LABKIT_API_TOKEN"]
    assert service["command"] == ["api"]
    assert service["build"]["dockerfile"] == "docker/api/Dockerfile"
    dockerfile = (PROJECT_ROOT / "docker" / "api" / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["python", "-m", "labkit"]' in dockerfile
    assert "127.0.0.1:5000:5000" in service["ports"]
    # Grafana's datasource URL is this service's name and port.
    datasources = yaml.safe_load((GRAFANA / "datasources" / "iotlab-api.yaml").read_text())
    assert datasources["datasources"][0]["url"] == f"http://api:{env['LABKIT_API_PORT']}"


def test_compose_runs_a_flink_cluster_matching_pyflink():
    from pyflink.version import __version__ as pyflink_version

    assert {"flink-jobmanager", "flink-taskmanager", "flink-kafka-relay"} <= set(SERVICES)
    jobmanager = SERVICES["flink-jobmanager"]
    assert jobmanager["build"]["dockerfile"] == "docker/flink/Dockerfile"
    assert "127.0.0.1:8081:8081" in jobmanager["ports"]
    dockerfile = (PROJECT_ROOT / "docker" / "flink" / "Dockerfile").read_text()
    assert f"FROM flink:{pyflink_version}-java17" in dockerfile
    # The connector comes from the Maven recipe that pins it for the embedded mode.
    assert "-pl flink" in dockerfile and "/opt/flink/lib/" in dockerfile
    for name in ("flink-taskmanager", "flink-kafka-relay"):
        assert SERVICES[name]["network_mode"] == "service:flink-jobmanager"
        assert SERVICES[name]["image"] == jobmanager["image"]
    assert "TCP:kafka:29092" in SERVICES["flink-kafka-relay"]["entrypoint"]
