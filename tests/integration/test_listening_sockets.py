"""No server of the lab answers the network unless the user asks for it: every listening socket
of every process the lab starts (and of their children: JupyterLab's kernels, the JVMs of the
Flink scripts and of PyFlink) is on the loopback, with ``labkit up``, with the Flink cluster,
JupyterLab and the API, and while a local Flink job runs. ``LABKIT_BIND_HOST`` opens the ports
clients use, and only those."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import psutil
import pytest

from labkit import config, flink, kafka, sensors, services
from labkit.config import PROJECT_ROOT, Settings

from .test_reliability_services import INSTANCE_PORTS, lab_environment, share_jars


@dataclass(frozen=True)
class Listening:
    service: str  # the LABKIT_SERVICE of the process, or "" for a process of this test
    pid: int
    name: str
    address: str
    port: int

    @property
    def loopback(self) -> bool:
        address = ipaddress.ip_address(self.address.split("%")[0])
        mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1
        return (mapped or address).is_loopback


def _sockets(processes: list[psutil.Process]) -> list[Listening]:
    """The listening TCP sockets of the processes and of all their children."""
    seen: dict[int, psutil.Process] = {}
    for process in processes:
        with contextlib.suppress(psutil.Error):
            for member in [process, *process.children(recursive=True)]:
                seen[member.pid] = member
    found = []
    for process in seen.values():
        with contextlib.suppress(psutil.NoSuchProcess, psutil.ZombieProcess):
            service = process.environ().get("LABKIT_SERVICE", "")
            for conn in process.net_connections(kind="tcp"):
                if conn.status == psutil.CONN_LISTEN:
                    address, port = conn.laddr
                    found.append(Listening(service, process.pid, process.name(), address, port))
    return found


def lab_sockets(settings: Settings) -> list[Listening]:
    return _sockets(services.lab_processes(settings))


def _open_to_the_network(sockets: list[Listening]) -> list[Listening]:
    return [socket for socket in sockets if not socket.loopback]


def labkit(*arguments: str, environ: dict[str, str] | None = None) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "labkit", *arguments],
        env=environ or dict(os.environ),
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _start_a_kernel(settings: Settings) -> None:
    request = urllib.request.Request(
        f"{services.JUPYTER.address(settings)}/api/kernels",
        method="POST",
        headers={"Authorization": f"token {services.JUPYTER.token(settings)}"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.status == 201


def test_the_stack_listens_on_the_loopback_only(stack):
    labkit("up")
    sockets = lab_sockets(stack)
    ports = {(s.service, s.port) for s in sockets}
    expected = {
        ("kafka", stack.kafka_port),
        ("kafka", stack.kafka_controller_port),
        ("hbase", stack.hbase_zookeeper_port),
        ("hbase", stack.hbase_master_port),
        ("hbase", stack.hbase_regionserver_port),
        ("thrift", stack.hbase_thrift_port),
    }
    assert expected <= ports, sockets
    assert not _open_to_the_network(sockets)


@contextlib.contextmanager
def started_here(settings: Settings, wanted: tuple[services.Service, ...]) -> Iterator[None]:
    """Stop afterwards those of ``wanted`` that were not running before."""
    before = {s.name for s in wanted if services.running_pid(s, settings) is not None}
    try:
        yield
    finally:
        for service in wanted:
            if service.name not in before:
                services.stop(service, settings)


def test_with_the_flink_cluster_jupyterlab_and_the_api_too(stack):
    extra = (*services.FLINK_CLUSTER, services.JUPYTER, services.API)
    with started_here(stack, extra):
        labkit("up", "--flink-cluster")
        labkit("lab")
        labkit("api", "--background")
        _start_a_kernel(stack)
        jupyter = services.running_pid(services.JUPYTER, stack)
        deadline = time.monotonic() + 120
        while True:  # the kernel opens its ZeroMQ channels once it has started
            sockets = lab_sockets(stack)
            kernels = [s for s in sockets if s.service == "jupyter" and s.pid != jupyter]
            if len(kernels) >= 5 or time.monotonic() > deadline:
                break
            time.sleep(1)
    ports = {(s.service, s.port) for s in sockets}
    expected = {
        ("thrift", stack.hbase_thrift_port),
        ("flink-jm", services.FLINK_JOBMANAGER.rest_port(stack)),
        ("flink-jm", stack.flink_rpc_port),
        ("jupyter", stack.jupyter_port),
        ("api", stack.api_port),
    }
    assert expected <= ports, sockets
    # The TaskManager's own RPC and data ports, and the kernel's ZeroMQ channels, count too.
    assert any(s.service == "flink-tm" for s in sockets), sockets
    assert len(kernels) >= 5, sockets
    assert not _open_to_the_network(sockets)


def test_a_local_flink_job_listens_on_the_loopback_only(isolated):
    kafka.produce_readings(isolated, sensors.simulate(sensors.Scenario(days=1 / 24)))
    job = flink.start_pipeline(isolated, bounded=False)
    try:
        deadline = time.monotonic() + 120
        while kafka.message_count(isolated, isolated.topics.output_raw) == 0:
            assert time.monotonic() < deadline, "the job never wrote output_raw"
            time.sleep(0.5)
        sockets = _sockets([psutil.Process()])
    finally:
        job.cancel()
    jvm = [s for s in sockets if s.name == "java"]
    # PyFlink's gateway and the mini-cluster's servers, in the JVM PyFlink started.
    assert len(jvm) >= 2, sockets
    assert not _open_to_the_network(sockets)


# Ports of this test's own lab instance: apart from the main lab's and those of
# test_reliability_services.py.
BIND_PORTS = {name: port + 200 for name, port in INSTANCE_PORTS.items()}


@pytest.mark.slow
def test_bind_host_opens_the_client_ports_only(tmp_path, settings):
    share_jars(settings, tmp_path)
    environ = lab_environment(tmp_path, BIND_PORTS, BIND_HOST="0.0.0.0")
    own = config.load(environ)
    try:
        labkit("up", environ=environ)
        sockets = lab_sockets(own)
        # The API keeps its rule: beyond the loopback only with a token.
        refused = subprocess.run(
            [sys.executable, "-m", "labkit", "api", "--background"],
            env=environ, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    finally:
        services.down(own, progress=lambda message: None)
    wildcard = {(s.service, s.port) for s in sockets if s.address in ("0.0.0.0", "::")}
    assert wildcard == {("kafka", own.kafka_port), ("thrift", own.hbase_thrift_port)}, sockets
    internal = {(s.service, s.port) for s in sockets if s.loopback}
    assert {
        ("kafka", own.kafka_controller_port),
        ("hbase", own.hbase_zookeeper_port),
        ("hbase", own.hbase_master_port),
        ("hbase", own.hbase_regionserver_port),
    } <= internal, sockets
    assert refused.returncode == 1
    assert "without a token" in refused.stderr and "LABKIT_API_TOKEN" in refused.stderr
