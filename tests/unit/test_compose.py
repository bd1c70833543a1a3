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


def _published(service: dict) -> set[int]:
    return {int(str(mapping).split(":")[0]) for mapping in service.get("ports", [])}


@pytest.fixture(scope="module")
def defaults():
    return config.load({})


def test_the_stack_has_kafka_hbase_and_its_thrift_server():
    assert {"kafka", "kafka-topics", "hbase", "hbase-thrift"} <= set(SERVICES)


def test_ports_are_those_of_the_embedded_mode(defaults):
    assert _published(SERVICES["kafka"]) == {defaults.kafka_port}
    # The Thrift server shares the HBase container's network: both ports are published there.
    assert SERVICES["hbase-thrift"]["network_mode"] == "service:hbase"
    assert _published(SERVICES["hbase"]) == {
        defaults.hbase_zookeeper_port,
        defaults.hbase_thrift_port,
    }
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
