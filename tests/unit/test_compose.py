"""docker-compose.yml cannot run here (no Docker engine): check it against labkit's settings."""

import re
import xml.etree.ElementTree as ET

import pytest
import yaml

from labkit import config
from labkit.config import PROJECT_ROOT

COMPOSE = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def _pinned(name: str) -> str:
    pom = ET.parse(PROJECT_ROOT / "services" / "pom.xml")
    namespace = {"m": "http://maven.apache.org/POM/4.0.0"}
    return pom.find(f"m:properties/m:{name}", namespace).text


def _mappings(service: dict) -> list[tuple[str, int, int]]:
    """(host address, host port, container port) of each port a service publishes."""
    found = []
    for mapping in service.get("ports", []):
        *address, host_port, container_port = str(mapping).split(":")
        found.append((address[0] if address else "0.0.0.0", int(host_port), int(container_port)))
    return found


def _published(service: dict) -> set[int]:
    return {host_port for _address, host_port, _container in _mappings(service)}


@pytest.fixture(scope="module")
def defaults():
    return config.load({})


def test_the_stack_has_kafka_hbase_and_its_thrift_server():
    assert {"kafka", "kafka-topics", "hbase", "hbase-thrift"} <= set(SERVICES)


def test_ports_are_those_of_the_embedded_mode(defaults):
    assert _published(SERVICES["kafka"]) == {defaults.kafka_port}
    # The Thrift server shares the HBase container's network: its port is published there.
    # ZooKeeper listens on the container's loopback, which no published port reaches.
    assert SERVICES["hbase-thrift"]["network_mode"] == "service:hbase"
    assert _published(SERVICES["hbase"]) == {defaults.hbase_thrift_port}
    env = SERVICES["kafka"]["environment"]
    assert f"localhost:{defaults.kafka_port}" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert int(env["KAFKA_NUM_PARTITIONS"]) == defaults.kafka_partitions


def test_images_carry_the_versions_pinned_in_the_maven_recipes():
    assert SERVICES["kafka"]["image"] == f"apache/kafka:{_pinned('kafka.version')}"
    assert SERVICES["hbase"]["image"].endswith(f":{_pinned('hbase.version')}")
    assert SERVICES["hbase"]["build"]["dockerfile"] == "docker/hbase/Dockerfile"
    assert (PROJECT_ROOT / "docker" / "hbase" / "Dockerfile").exists()


def test_hbase_containers_use_labkits_launcher():
    assert SERVICES["hbase"]["command"] == ["serve", "hbase"]
    assert SERVICES["hbase-thrift"]["command"] == ["serve", "thrift"]


def test_the_topics_created_are_the_labs_topics(defaults):
    script = SERVICES["kafka-topics"]["command"][0]
    listed = re.search(r"for topic in ([\w ]+); do", script).group(1).split()
    assert listed == defaults.topics.all()
    assert f"--partitions {defaults.kafka_partitions}" in script


def test_every_published_port_is_on_the_hosts_loopback_only():
    published = {name: _mappings(service) for name, service in SERVICES.items()}
    assert sum(len(mappings) for mappings in published.values()) >= 5
    for name, mappings in published.items():
        for address, host_port, _container in mappings:
            assert address == "127.0.0.1", f"{name} publishes {host_port} on {address}"


def test_the_thrift_container_listens_beyond_its_loopback():
    # The api container reaches Thrift as hbase:9090, and the published port through the
    # container's interface: bound to 127.0.0.1 inside, neither would.
    assert SERVICES["hbase-thrift"]["environment"]["LABKIT_BIND_HOST"] == "0.0.0.0"
    assert SERVICES["api"]["environment"]["LABKIT_HBASE_HOST"] == "hbase"
