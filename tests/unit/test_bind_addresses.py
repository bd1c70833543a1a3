"""Where each server the lab starts listens, as its generated configuration says (no server runs
here; tests/integration/test_listening_sockets.py lists the real sockets)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import yaml

from labkit import config, services
from labkit.services.kafka_hbase import hbase_site


def _settings(tmp_path: Path, **variables: str) -> config.Settings:
    environ = {"LABKIT_HOME": str(tmp_path), **{f"LABKIT_{k}": v for k, v in variables.items()}}
    return config.load(environ)


def _kafka(settings: config.Settings) -> dict[str, str]:
    lines = services.KAFKA.server_properties(settings).splitlines()
    return dict(line.split("=", 1) for line in lines)


def _hbase(settings: config.Settings) -> dict[str, str]:
    root = ET.fromstring(hbase_site(settings))
    return {prop.findtext("name"): prop.findtext("value") for prop in root}


def _flink(settings: config.Settings) -> dict:
    services.FLINK_JOBMANAGER.prepare(settings)
    return yaml.safe_load((settings.conf_dir / "flink" / "config.yaml").read_text())


def _jupyter_ip(settings: config.Settings) -> str:
    command = services.JUPYTER.command(settings)
    return next(arg for arg in command if arg.startswith("--ServerApp.ip=")).split("=", 1)[1]


def test_every_server_listens_on_the_loopback_by_default(tmp_path):
    settings = _settings(tmp_path, KAFKA_PORT="19092", KAFKA_CONTROLLER_PORT="19093")
    assert settings.bind_host == settings.api_host == "127.0.0.1"
    assert _kafka(settings)["listeners"] == (
        "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    )
    site = _hbase(settings)
    assert site["hbase.regionserver.thrift.ipaddress"] == "127.0.0.1"
    assert site["hbase.master.ipc.address"] == site["hbase.regionserver.ipc.address"]
    assert site["hbase.master.ipc.address"] == "127.0.0.1"
    assert _jupyter_ip(settings) == "127.0.0.1"
    flink = _flink(settings)
    assert flink["rest"]["bind-address"] == "127.0.0.1"
    assert flink["jobmanager"]["bind-host"] == flink["taskmanager"]["bind-host"] == "127.0.0.1"


def test_bind_host_opens_the_client_ports_and_keeps_the_internal_ones_on_the_loopback(tmp_path):
    settings = _settings(
        tmp_path, BIND_HOST="0.0.0.0", KAFKA_PORT="19092", KAFKA_CONTROLLER_PORT="19093"
    )
    kafka = _kafka(settings)
    assert kafka["listeners"] == "PLAINTEXT://0.0.0.0:19092,CONTROLLER://127.0.0.1:19093"
    # Clients are still told a name to connect to, never the wildcard.
    assert kafka["advertised.listeners"] == "PLAINTEXT://localhost:19092"
    assert kafka["controller.quorum.voters"] == "1@127.0.0.1:19093"
    site = _hbase(settings)
    assert site["hbase.regionserver.thrift.ipaddress"] == "0.0.0.0"
    assert site["hbase.master.ipc.address"] == site["hbase.regionserver.ipc.address"]
    assert site["hbase.master.ipc.address"] == "127.0.0.1"
    assert _jupyter_ip(settings) == "0.0.0.0"
    flink = _flink(settings)
    assert flink["rest"]["bind-address"] == "0.0.0.0"
    assert flink["jobmanager"]["bind-host"] == flink["taskmanager"]["bind-host"] == "127.0.0.1"
    assert flink["jobmanager"]["rpc"] == {"address": "127.0.0.1", "port": 6123}
    # The API follows, and this machine's clients reach it through the loopback.
    assert settings.api_host == "0.0.0.0"
    assert settings.api_url == f"http://127.0.0.1:{settings.api_port}"
    assert services.JUPYTER.url(settings).startswith(f"http://127.0.0.1:{settings.jupyter_port}/")


def test_the_api_host_can_differ_from_the_bind_host(tmp_path):
    settings = _settings(tmp_path, BIND_HOST="0.0.0.0", API_HOST="127.0.0.1")
    assert (settings.bind_host, settings.api_host) == ("0.0.0.0", "127.0.0.1")
    assert _settings(tmp_path, API_HOST="::1").api_url == "http://[::1]:5000"


def test_the_flink_rpc_port_is_a_setting(tmp_path):
    settings = _settings(tmp_path, FLINK_RPC_PORT="16123")
    assert services.FLINK_JOBMANAGER.ports(settings)["rpc"] == 16123
    assert _flink(settings)["jobmanager"]["rpc"]["port"] == 16123
