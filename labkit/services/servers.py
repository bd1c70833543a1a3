"""The lab's servers: what each one runs, on which ports, and how to tell it is ready.

* ``kafka``:  one Kafka node in KRaft combined mode (broker + controller);
* ``hbase``:  HBase standalone (master, region server and ZooKeeper in one JVM);
* ``thrift``: the HBase Thrift (v1) server that happybase talks to;
* ``jupyter``: JupyterLab on ``notebooks/`` (started by ``labkit lab``, not by ``up``);
* ``api``: labkit's HTTP API for Grafana (``labkit api --background``);
* ``flink-jm``, ``flink-tm``: an optional standalone Flink cluster (``labkit up --flink-cluster``).

``labkit.services.processes`` starts and stops them.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import secrets
import shutil
import socket
import subprocess
import sys
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import yaml

from labkit.config import LOOPBACK, PROJECT_ROOT, Settings, http_url, reachable
from labkit.errors import ServiceError
from labkit.jvm import RECIPES_DIR, check_java, jar_group, last_lines

NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"

# The flags HBase's own launcher (bin/hbase) adds on Java 11 and later.
HBASE_JDK17_FLAGS = [
    "-Dorg.apache.hbase.thirdparty.io.netty.tryReflectionSetAccessible=true",
    "--add-modules", "jdk.unsupported",
    "--add-opens", "java.base/java.nio=ALL-UNNAMED",
    "--add-opens", "java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens", "java.base/java.lang=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.ref=ALL-UNNAMED",
    "--add-opens", "java.base/java.lang.reflect=ALL-UNNAMED",
    "--add-exports", "java.base/jdk.internal.misc=ALL-UNNAMED",
    "--add-exports", "java.security.jgss/sun.security.krb5=ALL-UNNAMED",
    "--add-exports", "java.base/sun.net.dns=ALL-UNNAMED",
    "--add-exports", "java.base/sun.net.util=ALL-UNNAMED",
]  # fmt: skip


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on host:port."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


@dataclass(frozen=True)
class Service:
    """A server process of the lab; subclasses say how to prepare, run and probe it."""

    name: str
    description: str

    def ports(self, settings: Settings) -> dict[str, int]:
        raise NotImplementedError

    def command(self, settings: Settings, console_logs: bool = False) -> list[str]:
        """The command line; ``console_logs`` sends the log to stdout instead of a file."""
        raise NotImplementedError

    def prepare(self, settings: Settings) -> None:
        """Write configuration and initialise storage before a start."""

    def environment(self, settings: Settings) -> dict[str, str]:
        """Extra environment variables for the process."""
        return {}

    def is_ready(self, settings: Settings) -> bool:
        raise NotImplementedError

    def host(self, settings: Settings) -> str:
        return "localhost"

    def log_file(self, settings: Settings) -> Path:
        return settings.logs_dir / f"{self.name}.log"

    def console_file(self, settings: Settings) -> Path:
        """Where the process's own stdout/stderr go (JVM crashes, launcher errors)."""
        return settings.logs_dir / f"{self.name}.out"

    def pid_file(self, settings: Settings) -> Path:
        return settings.run_dir / f"{self.name}.pid"


@dataclass(frozen=True)
class JavaService(Service):
    jars: str = ""
    main_class: str = ""

    def heap(self, settings: Settings) -> str:
        raise NotImplementedError

    def jvm_flags(self, settings: Settings) -> list[str]:
        return []

    def classpath(self, settings: Settings) -> str:
        return str(jar_group(settings, self.jars) / "*")

    def arguments(self, settings: Settings) -> list[str]:
        return []

    def command(self, settings: Settings, console_logs: bool = False) -> list[str]:
        heap = self.heap(settings)
        return [
            check_java(),
            f"-Xmx{heap}",
            f"-Xms{heap}",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dlabkit.service={self.name}",
            f"-Dlabkit.log.file={self.log_file(settings)}",
            f"-Dlabkit.log.appender={'CONSOLE' if console_logs else 'FILE'}",
            *self.jvm_flags(settings),
            "-cp",
            self.classpath(settings),
            self.main_class,
            *self.arguments(settings),
        ]


@dataclass(frozen=True)
class Kafka(JavaService):
    def ports(self, settings: Settings) -> dict[str, int]:
        return {"broker": settings.kafka_port, "controller": settings.kafka_controller_port}

    def host(self, settings: Settings) -> str:
        return settings.kafka_host

    def heap(self, settings: Settings) -> str:
        return settings.kafka_heap

    def config_file(self, settings: Settings) -> Path:
        return settings.conf_dir / "kafka" / "server.properties"

    def data_dir(self, settings: Settings) -> Path:
        return settings.data_dir / "kafka"

    def jvm_flags(self, settings: Settings) -> list[str]:
        return [
            # Kafka's own launcher defaults (kafka-run-class.sh).
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:InitiatingHeapOccupancyPercent=35",
            f"-Dlog4j2.configurationFile={RECIPES_DIR / 'kafka' / 'log4j2.properties'}",
        ]

    def arguments(self, settings: Settings) -> list[str]:
        return [str(self.config_file(settings))]

    def server_properties(self, settings: Settings) -> str:
        # Clients reach the broker on BIND_HOST; only the node itself uses its controller.
        controller = f"{LOOPBACK}:{settings.kafka_controller_port}"
        lines = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{controller}",
            "listeners": (
                f"PLAINTEXT://{settings.bind_host}:{settings.kafka_port},CONTROLLER://{controller}"
            ),
            # What the broker tells its clients to connect to.
            "advertised.listeners": f"PLAINTEXT://{settings.kafka_host}:{settings.kafka_port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.data_dir(settings)),
            "num.partitions": str(settings.kafka_partitions),
            # One node: every internal topic has one replica.
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "false",
        }
        return "".join(f"{key}={value}\n" for key, value in lines.items())

    def prepare(self, settings: Settings) -> None:
        config = self.config_file(settings)
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(self.server_properties(settings))
        data = self.data_dir(settings)
        if (data / "meta.properties").exists():
            return
        data.mkdir(parents=True, exist_ok=True)
        # A KRaft node's storage is formatted once, with a new cluster id.
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        format_command = [
            check_java(), "-Xmx256m",
            f"-Dlog4j2.configurationFile={RECIPES_DIR / 'kafka' / 'log4j2.properties'}",
            f"-Dlabkit.log.file={self.log_file(settings)}",
            "-cp", self.classpath(settings),
            "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(config),
        ]  # fmt: skip
        result = subprocess.run(format_command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise ServiceError(
                f"Formatting Kafka's storage in {data} failed:\n"
                + last_lines(result.stdout + result.stderr, 20)
            )

    def is_ready(self, settings: Settings) -> bool:
        if not port_open(settings.kafka_host, settings.kafka_port):
            return False
        from confluent_kafka.admin import AdminClient

        quiet = logging.getLogger("labkit.services.probe")
        quiet.setLevel(logging.CRITICAL)
        client: dict[str, Any] = {"bootstrap.servers": settings.kafka_bootstrap, "logger": quiet}
        admin = AdminClient(client)
        try:
            metadata = admin.list_topics(timeout=3)
        except Exception:  # noqa: BLE001 - any failure of the probe means "not ready yet"
            return False
        return bool(metadata.brokers) and metadata.controller_id >= 0


def hbase_site(settings: Settings) -> str:
    """hbase-site.xml for standalone HBase, its ZooKeeper and its Thrift server."""
    root = settings.data_dir / "hbase"
    properties = {
        "hbase.cluster.distributed": "false",
        "hbase.rootdir": (root / "root").as_uri(),
        "hbase.tmp.dir": str(root / "tmp"),
        "hbase.zookeeper.quorum": settings.hbase_host,
        "hbase.zookeeper.property.clientPort": str(settings.hbase_zookeeper_port),
        "hbase.zookeeper.property.dataDir": str(root / "zookeeper"),
        "hbase.master.port": str(settings.hbase_master_port),
        "hbase.regionserver.port": str(settings.hbase_regionserver_port),
        # Only the Thrift server talks to the master and the region server: loopback. (The
        # standalone ZooKeeper listens on the loopback by itself.) Thrift, which answers
        # happybase, listens on BIND_HOST; by default HBase would open it to every interface.
        "hbase.master.ipc.address": LOOPBACK,
        "hbase.regionserver.ipc.address": LOOPBACK,
        "hbase.regionserver.thrift.ipaddress": settings.bind_host,
        # The local file system cannot hflush/hsync; HBase must be told to accept that.
        "hbase.unsafe.stream.capability.enforce": "false",
        # ZooKeeper runs inside the same JVM: when it is gone (at shutdown) retrying is useless
        # and only delays the stop.
        "zookeeper.recovery.retry": "1",
        "zookeeper.recovery.retry.intervalmill": "200",
        # For the Thrift server's HBase client: a writer's batch (5,000 rows, well under the
        # 4 MiB per request) goes to the region server in one request, not in three of 2,048
        # rows one after the other, and the writers' tables write side by side
        # instead of one request per region and two per server at a time (docs/benchmarks.md).
        "hbase.client.max.perrequest.rows": "10000",
        "hbase.client.max.perregion.tasks": "4",
        "hbase.client.max.perserver.tasks": "16",
        # No web UIs: fewer ports to collide with, less memory.
        "hbase.master.info.port": "-1",
        "hbase.regionserver.info.port": "-1",
        "hbase.thrift.info.port": "-1",
    }
    body = "".join(
        f"  <property><name>{escape(k)}</name><value>{escape(v)}</value></property>\n"
        for k, v in properties.items()
    )
    return f'<?xml version="1.0"?>\n<configuration>\n{body}</configuration>\n'


@dataclass(frozen=True)
class HBaseProcess(JavaService):
    """A JVM that runs HBase code: the standalone master or the Thrift server."""

    jars: str = "hbase"

    def conf_dir(self, settings: Settings) -> Path:
        return settings.conf_dir / "hbase"

    def classpath(self, settings: Settings) -> str:
        # HBase reads hbase-site.xml from the classpath, so the conf dir comes first.
        return f"{self.conf_dir(settings)}{os.pathsep}{super().classpath(settings)}"

    def jvm_flags(self, settings: Settings) -> list[str]:
        return [
            *HBASE_JDK17_FLAGS,
            f"-Dlog4j2.configurationFile={RECIPES_DIR / 'hbase' / 'log4j2.properties'}",
            f"-Dhbase.log.dir={settings.logs_dir}",
        ]

    def host(self, settings: Settings) -> str:
        return settings.hbase_host

    def prepare(self, settings: Settings) -> None:
        conf = self.conf_dir(settings)
        conf.mkdir(parents=True, exist_ok=True)
        (conf / "hbase-site.xml").write_text(hbase_site(settings))
        (settings.data_dir / "hbase").mkdir(parents=True, exist_ok=True)


@dataclass(frozen=True)
class HBaseMaster(HBaseProcess):
    main_class: str = "org.apache.hadoop.hbase.master.HMaster"

    def ports(self, settings: Settings) -> dict[str, int]:
        return {
            "zookeeper": settings.hbase_zookeeper_port,
            "master": settings.hbase_master_port,
            "regionserver": settings.hbase_regionserver_port,
        }

    def heap(self, settings: Settings) -> str:
        return settings.hbase_heap

    def arguments(self, settings: Settings) -> list[str]:
        return ["start"]

    def is_ready(self, settings: Settings) -> bool:
        host = settings.hbase_host
        return all(port_open(host, port) for port in self.ports(settings).values())


@dataclass(frozen=True)
class HBaseThrift(HBaseProcess):
    main_class: str = "org.apache.hadoop.hbase.thrift.ThriftServer"

    def ports(self, settings: Settings) -> dict[str, int]:
        return {"thrift": settings.hbase_thrift_port}

    def heap(self, settings: Settings) -> str:
        return settings.hbase_thrift_heap

    def arguments(self, settings: Settings) -> list[str]:
        return ["start", "-p", str(settings.hbase_thrift_port)]

    def is_ready(self, settings: Settings) -> bool:
        """Ready when happybase can list the tables: the master has finished initialising."""
        if not port_open(settings.hbase_host, settings.hbase_thrift_port):
            return False
        from labkit.hbase import layout

        try:
            connection = layout.connect(settings, timeout_ms=5000)
            try:
                connection.tables()
                # Reading hbase:meta needs the region server online, not only the master.
                next(connection.table("hbase:meta").scan(limit=1), None)
            finally:
                connection.close()
        except Exception:  # noqa: BLE001 - any failure of the probe means "not ready yet"
            return False
        return True


# The JupyterLab plugin that fetches Jupyter news (after asking, in a pop-up) and checks for
# newer versions.
ANNOUNCEMENTS = "@jupyterlab/apputils-extension:announcements"


@dataclass(frozen=True)
class JupyterLab(Service):
    def ports(self, settings: Settings) -> dict[str, int]:
        return {"http": settings.jupyter_port}

    def token_file(self, settings: Settings) -> Path:
        return settings.run_dir / "jupyter.token"

    def token(self, settings: Settings) -> str:
        path = self.token_file(settings)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_hex(24))
            path.chmod(0o600)
        return path.read_text().strip()

    def address(self, settings: Settings) -> str:
        return http_url(settings.bind_host, settings.jupyter_port)

    def url(self, settings: Settings) -> str:
        return f"{self.address(settings)}/lab?token={self.token(settings)}"

    def config_dir(self, settings: Settings) -> Path:
        """A Jupyter config directory of the lab's own, searched before the user's."""
        return settings.conf_dir / "jupyter"

    def prepare(self, settings: Settings) -> None:
        # JupyterLab's announcements plugin asks, over the first notebook a student opens,
        # whether to fetch Jupyter news, and checks for updates (network traffic a lab on a
        # closed network cannot make). Disabled as `jupyter labextension disable` would, but
        # for the lab's JupyterLab only.
        page_config = self.config_dir(settings) / "labconfig" / "page_config.json"
        page_config.parent.mkdir(parents=True, exist_ok=True)
        page_config.write_text(json.dumps({"disabledExtensions": {ANNOUNCEMENTS: True}}))

    def environment(self, settings: Settings) -> dict[str, str]:
        searched = [str(self.config_dir(settings)), os.environ.get("JUPYTER_CONFIG_PATH", "")]
        return {"JUPYTER_CONFIG_PATH": os.pathsep.join(path for path in searched if path)}

    def command(self, settings: Settings, console_logs: bool = False) -> list[str]:
        return [
            sys.executable, "-m", "jupyterlab",
            "--no-browser",
            f"--ServerApp.ip={settings.bind_host}",
            f"--ServerApp.port={settings.jupyter_port}",
            "--ServerApp.port_retries=0",
            f"--ServerApp.root_dir={NOTEBOOKS_DIR}",
            f"--IdentityProvider.token={self.token(settings)}",
            # Containers and CI machines often run as root; JupyterLab refuses that by default.
            *(["--allow-root"] if os.geteuid() == 0 else []),
        ]  # fmt: skip

    def log_file(self, settings: Settings) -> Path:
        return self.console_file(settings)

    def is_ready(self, settings: Settings) -> bool:
        url = f"{self.address(settings)}/api/status?token={self.token(settings)}"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status == 200
        except OSError:
            return False


def _flink_home() -> Path:
    import pyflink

    return Path(pyflink.__file__).parent


@dataclass(frozen=True)
class FlinkProcess(Service):
    """A process of a standalone Flink cluster, run from PyFlink's own Flink distribution.

    Optional (``labkit up --flink-cluster``): with LABKIT_FLINK_MODE=remote the pipeline is
    submitted to it with ``flink run -py``, and its dashboard shows the running job.
    """

    script: str = ""  # jobmanager.sh or taskmanager.sh

    def conf_dir(self, settings: Settings) -> Path:
        return settings.conf_dir / "flink"

    def rest_port(self, settings: Settings) -> int:
        return int(settings.flink_jobmanager.rsplit(":", 1)[1])

    def environment(self, settings: Settings) -> dict[str, str]:
        return {
            "FLINK_CONF_DIR": str(self.conf_dir(settings)),
            "FLINK_LOG_DIR": str(settings.logs_dir / "flink-cluster"),
            "JAVA_HOME": str(Path(check_java()).resolve().parent.parent),
        }

    def command(self, settings: Settings, console_logs: bool = False) -> list[str]:
        return ["bash", str(_flink_home() / "bin" / self.script), "start-foreground"]

    def prepare(self, settings: Settings) -> None:
        conf = self.conf_dir(settings)
        conf.mkdir(parents=True, exist_ok=True)
        (settings.logs_dir / "flink-cluster").mkdir(parents=True, exist_ok=True)
        for name in ("log4j-console.properties", "log4j.properties"):
            shutil.copy(_flink_home() / "conf" / name, conf / name)
        # RPC, blob and data ports: loopback, only the cluster itself uses them. The dashboard
        # and REST port (job submission) on BIND_HOST.
        config = {
            "jobmanager": {
                "bind-host": LOOPBACK,
                "rpc": {"address": LOOPBACK, "port": settings.flink_rpc_port},
                "memory": {"process": {"size": settings.flink_jobmanager_memory}},
            },
            "taskmanager": {
                "bind-host": LOOPBACK,
                "host": LOOPBACK,
                "numberOfTaskSlots": 2,
                "memory": {"process": {"size": settings.flink_taskmanager_memory}},
            },
            "parallelism": {"default": settings.flink_parallelism},
            "rest": {
                "address": "localhost",
                "bind-address": settings.bind_host,
                "port": self.rest_port(settings),
            },
        }
        (conf / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))

    def log_file(self, settings: Settings) -> Path:
        role = "standalonesession" if self.script == "jobmanager.sh" else "taskexecutor"
        matches = sorted((settings.logs_dir / "flink-cluster").glob(f"flink-*-{role}-*.log"))
        return matches[-1] if matches else self.console_file(settings)

    def overview(self, settings: Settings) -> dict | None:
        url = f"http://{settings.flink_jobmanager}/overview"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return json.loads(response.read())
        except (OSError, ValueError):
            return None


@dataclass(frozen=True)
class FlinkJobManager(FlinkProcess):
    script: str = "jobmanager.sh"

    def ports(self, settings: Settings) -> dict[str, int]:
        return {"rest": self.rest_port(settings), "rpc": settings.flink_rpc_port}

    def is_ready(self, settings: Settings) -> bool:
        return self.overview(settings) is not None


@dataclass(frozen=True)
class FlinkTaskManager(FlinkProcess):
    script: str = "taskmanager.sh"

    def ports(self, settings: Settings) -> dict[str, int]:
        return {}

    def is_ready(self, settings: Settings) -> bool:
        overview = self.overview(settings)
        return bool(overview and overview.get("taskmanagers", 0) >= 1)


@dataclass(frozen=True)
class ApiServer(Service):
    """labkit's HTTP API for Grafana (labkit.api), served by waitress."""

    def ports(self, settings: Settings) -> dict[str, int]:
        return {"http": settings.api_port}

    def host(self, settings: Settings) -> str:
        return reachable(settings.api_host)

    def command(self, settings: Settings, console_logs: bool = False) -> list[str]:
        return [sys.executable, "-m", "labkit", "api"]

    def log_file(self, settings: Settings) -> Path:
        return self.console_file(settings)

    def is_ready(self, settings: Settings) -> bool:
        request = urllib.request.Request(f"{settings.api_url}/")
        if settings.api_token:
            request.add_header("Authorization", f"Bearer {settings.api_token}")
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                return response.status == 200
        except OSError:
            return False


KAFKA = Kafka("kafka", "Kafka broker + KRaft controller", jars="kafka", main_class="kafka.Kafka")
HBASE = HBaseMaster("hbase", "HBase standalone: master, region server, ZooKeeper")
THRIFT = HBaseThrift("thrift", "HBase Thrift server (happybase)")
JUPYTER = JupyterLab("jupyter", "JupyterLab on notebooks/")
API = ApiServer("api", "labkit's HTTP API for Grafana (labkit.api)")

FLINK_JOBMANAGER = FlinkJobManager("flink-jm", "Flink JobManager (dashboard, job submission)")
FLINK_TASKMANAGER = FlinkTaskManager("flink-tm", "Flink TaskManager")

STACK: tuple[Service, ...] = (KAFKA, HBASE, THRIFT)
FLINK_CLUSTER: tuple[Service, ...] = (FLINK_JOBMANAGER, FLINK_TASKMANAGER)
ALL: tuple[Service, ...] = (*STACK, *FLINK_CLUSTER, JUPYTER, API)


def by_name(name: str) -> Service:
    for service in ALL:
        if service.name == name:
            return service
    raise ServiceError(f"No service called {name!r}; the services are: {names()}")


def names() -> str:
    return ", ".join(service.name for service in ALL)
