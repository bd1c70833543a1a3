"""Start, check and stop the lab's real servers as local processes: no Docker needed.

The servers are the published Apache jars, resolved by Maven from the recipes in
``services/`` into ``.lab/jars/<service>``:

* ``kafka``:  one Kafka node in KRaft combined mode (broker + controller);
* ``hbase``:  HBase standalone (master, region server and ZooKeeper in one JVM);
* ``thrift``: the HBase Thrift (v1) server that happybase talks to;
* ``jupyter``: JupyterLab on ``notebooks/`` (started by ``labkit lab``, not by ``up``).

Each process runs detached in its own session, logs into ``.lab/logs``, and has a pid file in
``.lab/run``. Every process carries ``LABKIT_SERVICE`` and ``LABKIT_HOME`` in its environment,
so that ``stop`` only ever signals processes this lab started.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

import psutil
import yaml

from labkit.config import PROJECT_ROOT, Settings

RECIPES_DIR = PROJECT_ROOT / "services"
NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"
MIN_JAVA = 17

Progress = Callable[[str], None]

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


class ServiceError(RuntimeError):
    """A service could not be prepared, started or stopped; the message says what to do."""


# --------------------------------------------------------------------------------------
# Preflight: Java, Maven, disk
# --------------------------------------------------------------------------------------


INSTALL_JAVA = (
    "The lab runs Kafka and HBase on Java 17 or newer: install it (Debian/Ubuntu: "
    "`sudo apt install openjdk-17-jdk`; conda: use environment.yml) or set JAVA_HOME to a JDK 17."
)


def java_executable() -> str:
    """The ``java`` to run the servers with: ``$JAVA_HOME/bin/java``, else the one on PATH."""
    java_home = os.environ.get("JAVA_HOME")
    candidate = Path(java_home) / "bin" / "java" if java_home else None
    if candidate and candidate.exists():
        return str(candidate)
    found = shutil.which("java")
    if not found:
        # A JAVA_HOME that points nowhere is the likely mistake: name it.
        wrong_home = f" (JAVA_HOME={java_home} has no bin/java)" if java_home else ""
        raise ServiceError(f"Java was not found{wrong_home}. {INSTALL_JAVA}")
    return found


def java_major_version(java: str) -> int:
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    except OSError as error:  # not executable, not a program (a half-unpacked JDK)
        raise ServiceError(f"{java} does not run ({error.strerror}). {INSTALL_JAVA}") from None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not match:
        raise ServiceError(f"Could not read the version of {java}: {out.stderr.strip()}")
    major = int(match.group(1))
    # Java 8 and older report themselves as 1.x.
    return int(match.group(2) or 0) if major == 1 else major


def check_java() -> str:
    java = java_executable()
    major = java_major_version(java)
    if major < MIN_JAVA:
        raise ServiceError(
            f"{java} is Java {major}; the lab needs Java {MIN_JAVA} or newer. "
            "Install OpenJDK 17 or point JAVA_HOME at one."
        )
    return java


def check_disk(settings: Settings) -> None:
    """Fail with what to do when the disk of LABKIT_HOME has less free space than wanted."""
    # Measure the nearest folder that exists: on a full disk LABKIT_HOME cannot even be created.
    existing = settings.home
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    free_mb = shutil.disk_usage(existing).free // (1024 * 1024)
    what_to_do = (
        "Free some space, run `labkit reset --yes` to wipe old lab data, or move the lab with "
        "LABKIT_HOME=/a/bigger/disk."
    )
    if free_mb < settings.min_free_disk_mb:
        raise ServiceError(
            f"Only {free_mb} MiB free on the disk of {settings.home}; the lab wants at least "
            f"{settings.min_free_disk_mb} MiB. {what_to_do}"
        )
    try:
        settings.home.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ServiceError(
            f"Cannot create the lab's folder {settings.home} ({error.strerror}; {free_mb} MiB "
            f"free on its disk). {what_to_do}"
        ) from None


# --------------------------------------------------------------------------------------
# Jars, resolved by Maven from services/*/pom.xml
# --------------------------------------------------------------------------------------

JAR_GROUPS = ("kafka", "hbase", "flink")


def _recipes_digest() -> str:
    digest = hashlib.sha256()
    for pom in sorted(RECIPES_DIR.glob("**/pom.xml")):
        digest.update(pom.relative_to(RECIPES_DIR).as_posix().encode())
        digest.update(pom.read_bytes())
    return digest.hexdigest()


def jars_resolved(settings: Settings) -> bool:
    stamp = settings.jars_dir / ".resolved"
    return stamp.exists() and stamp.read_text().strip() == _recipes_digest()


def ensure_jars(settings: Settings, progress: Progress = print) -> None:
    """Resolve the servers' jars with Maven, once: with the jars present this does nothing."""
    if jars_resolved(settings):
        return
    mvn = shutil.which("mvn")
    if not mvn:
        raise ServiceError(
            "Maven (`mvn`) was not found; the lab uses it once to download the Kafka, HBase and "
            "Flink connector jars. Install it (Debian/Ubuntu: `sudo apt install maven`; conda: "
            "environment.yml) and try again."
        )
    check_java()
    staging = settings.home / "jars.staging"
    shutil.rmtree(staging, ignore_errors=True)
    progress("Downloading the Kafka, HBase and Flink connector jars with Maven (first run only)...")
    started = time.monotonic()
    command = [
        mvn, "-q", "-B", "-Dstyle.color=never",
        "-f", str(RECIPES_DIR / "pom.xml"),
        "dependency:copy-dependencies",
        f"-Dlabkit.jars.dir={staging}",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise ServiceError(
            "Maven could not resolve the lab's jars (is Maven Central reachable?):\n"
            + _last_lines(result.stdout + result.stderr, 25)
        )
    settings.jars_dir.mkdir(parents=True, exist_ok=True)
    for group in JAR_GROUPS:
        target = settings.jars_dir / group
        shutil.rmtree(target, ignore_errors=True)
        (staging / group).rename(target)
    shutil.rmtree(staging, ignore_errors=True)
    (settings.jars_dir / ".resolved").write_text(_recipes_digest() + "\n")
    progress(f"Jars ready in {settings.jars_dir} ({time.monotonic() - started:.0f} s).")


def jar_group(settings: Settings, group: str) -> Path:
    folder = settings.jars_dir / group
    if not any(folder.glob("*.jar")):
        raise ServiceError(f"No jars in {folder}: run `labkit up` (or `make jars`) first.")
    return folder


# --------------------------------------------------------------------------------------
# The services
# --------------------------------------------------------------------------------------


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
        host = settings.kafka_host
        lines = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{host}:{settings.kafka_controller_port}",
            "listeners": (
                f"PLAINTEXT://{host}:{settings.kafka_port},"
                f"CONTROLLER://{host}:{settings.kafka_controller_port}"
            ),
            "advertised.listeners": f"PLAINTEXT://{host}:{settings.kafka_port}",
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
                + _last_lines(result.stdout + result.stderr, 20)
            )

    def is_ready(self, settings: Settings) -> bool:
        if not port_open(settings.kafka_host, settings.kafka_port):
            return False
        from confluent_kafka.admin import AdminClient

        quiet = logging.getLogger("labkit.services.probe")
        quiet.setLevel(logging.CRITICAL)
        admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap, "logger": quiet})
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
        # The local file system cannot hflush/hsync; HBase must be told to accept that.
        "hbase.unsafe.stream.capability.enforce": "false",
        # ZooKeeper runs inside the same JVM: when it is gone (at shutdown) retrying is useless
        # and only delays the stop.
        "zookeeper.recovery.retry": "1",
        "zookeeper.recovery.retry.intervalmill": "200",
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
        import happybase

        try:
            connection = happybase.Connection(
                settings.hbase_host, settings.hbase_thrift_port, timeout=5000
            )
            try:
                connection.tables()
                # Reading hbase:meta needs the region server online, not only the master.
                next(connection.table("hbase:meta").scan(limit=1), None)
            finally:
                connection.close()
        except Exception:  # noqa: BLE001 - any failure of the probe means "not ready yet"
            return False
        return True


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

    def url(self, settings: Settings) -> str:
        return f"http://127.0.0.1:{settings.jupyter_port}/lab?token={self.token(settings)}"

    def command(self, settings: Settings, console_logs: bool = False) -> list[str]:
        return [
            sys.executable, "-m", "jupyterlab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
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
        url = f"http://127.0.0.1:{settings.jupyter_port}/api/status?token={self.token(settings)}"
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
        local = {"bind-host": "localhost"}
        config = {
            "jobmanager": {
                **local,
                "rpc": {"address": "localhost", "port": 6123},
                "memory": {"process": {"size": settings.flink_jobmanager_memory}},
            },
            "taskmanager": {
                **local,
                "host": "localhost",
                "numberOfTaskSlots": 2,
                "memory": {"process": {"size": settings.flink_taskmanager_memory}},
            },
            "parallelism": {"default": settings.flink_parallelism},
            "rest": {
                "address": "localhost",
                "bind-address": "localhost",
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
        return {"rest": self.rest_port(settings), "rpc": 6123}

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
        return settings.api_host

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


# --------------------------------------------------------------------------------------
# Processes: which are ours, start, wait, stop
# --------------------------------------------------------------------------------------

# Popen handles of the processes this Python process started, so that their exit is reaped.
_children: dict[int, subprocess.Popen] = {}


def _owner(process: psutil.Process) -> tuple[str | None, str | None]:
    """(service, lab home) recorded in a process's environment, or (None, None)."""
    try:
        env = process.environ()
    except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess, OSError):
        return None, None
    return env.get("LABKIT_SERVICE"), env.get("LABKIT_HOME")


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False


def _reap() -> None:
    for pid, child in list(_children.items()):
        if child.poll() is not None:
            del _children[pid]


def running_pid(service: Service, settings: Settings) -> int | None:
    """The pid of the service's process when it is alive and was started by this lab."""
    _reap()
    path = service.pid_file(settings)
    try:
        pid = int(path.read_text().strip())
        process = psutil.Process(pid)
    except (OSError, ValueError, psutil.NoSuchProcess):
        return None
    if _alive(process) and _owner(process) == (service.name, str(settings.home)):
        return pid
    return None


def lab_processes(settings: Settings) -> list[psutil.Process]:
    """Every live process started by this lab (also those whose pid file was lost)."""
    _reap()
    found = []
    for process in psutil.process_iter():
        name, home = _owner(process)
        if name and home == str(settings.home) and _alive(process):
            found.append(process)
    return found


def _port_holder(port: int) -> str:
    """A description of the process listening on a local port, when the OS tells us."""
    with contextlib.suppress(psutil.AccessDenied, psutil.NoSuchProcess, OSError):
        for conn in psutil.net_connections(kind="tcp"):
            listening = conn.status == psutil.CONN_LISTEN
            if listening and conn.laddr and conn.laddr.port == port and conn.pid:
                return f" by pid {conn.pid} ({psutil.Process(conn.pid).name()})"
    return ""


def check_ports_free(service: Service, settings: Settings) -> None:
    for role, port in service.ports(settings).items():
        if port_open(service.host(settings), port) or port_open("127.0.0.1", port):
            env_name = _port_setting(service, role)
            raise ServiceError(
                f"Port {port} ({service.name} {role}) is already taken{_port_holder(port)}. "
                f"Stop whatever uses it (`labkit down` if it is an older lab), or give the lab "
                f"another port: {env_name}=<free port>."
            )


def _port_setting(service: Service, role: str) -> str:
    names = {
        ("kafka", "broker"): "LABKIT_KAFKA_PORT",
        ("kafka", "controller"): "LABKIT_KAFKA_CONTROLLER_PORT",
        ("hbase", "zookeeper"): "LABKIT_HBASE_ZOOKEEPER_PORT",
        ("hbase", "master"): "LABKIT_HBASE_MASTER_PORT",
        ("hbase", "regionserver"): "LABKIT_HBASE_REGIONSERVER_PORT",
        ("thrift", "thrift"): "LABKIT_HBASE_THRIFT_PORT",
        ("jupyter", "http"): "LABKIT_JUPYTER_PORT",
        ("api", "http"): "LABKIT_API_PORT",
    }
    return names.get((service.name, role), "the matching LABKIT_*_PORT")


def start(service: Service, settings: Settings) -> int:
    """Start the service detached (unless it already runs) and return its pid."""
    pid = running_pid(service, settings)
    if pid is not None:
        return pid
    service.pid_file(settings).unlink(missing_ok=True)
    check_disk(settings)
    check_ports_free(service, settings)
    service.prepare(settings)
    for folder in (settings.logs_dir, settings.run_dir):
        folder.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        **service.environment(settings),
        "LABKIT_SERVICE": service.name,
        "LABKIT_HOME": str(settings.home),
    }
    command = service.command(settings)
    console = service.console_file(settings)
    with console.open("ab") as out:
        out.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting {service.name}\n".encode())
        out.flush()
        child = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=settings.home,
            env=env,
            start_new_session=True,  # detached: survives the shell, gets its own group
        )
    _children[child.pid] = child
    service.pid_file(settings).write_text(f"{child.pid}\n")
    return child.pid


def serve(service: Service, settings: Settings) -> None:
    """Replace this process with the service, in the foreground (containers use this)."""
    check_disk(settings)
    service.prepare(settings)
    settings.logs_dir.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        **service.environment(settings),
        "LABKIT_SERVICE": service.name,
        "LABKIT_HOME": str(settings.home),
    }
    command = service.command(settings, console_logs=True)
    os.execvpe(command[0], command, env)


def wait_ready(service: Service, settings: Settings, timeout: float | None = None) -> None:
    """Block until the service answers through its real client, or fail with its last logs."""
    deadline = time.monotonic() + (settings.start_timeout if timeout is None else timeout)
    while True:
        if service.is_ready(settings):
            return
        if settings.mode == "embedded" and running_pid(service, settings) is None:
            raise ServiceError(
                f"{service.name} stopped while starting. Its last log lines:\n"
                + log_tail(service, settings, 30)
            )
        if time.monotonic() > deadline:
            raise ServiceError(
                f"{service.name} was not ready after {settings.start_timeout:.0f} s "
                f"(raise LABKIT_START_TIMEOUT on a slow machine). Its last log lines:\n"
                + log_tail(service, settings, 30)
            )
        time.sleep(0.5)


def _terminate(processes: Iterable[psutil.Process], timeout: float) -> None:
    """SIGTERM, wait, then SIGKILL what is left."""
    processes = [p for p in processes if _alive(p)]
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.send_signal(signal.SIGTERM)
    _gone, alive = psutil.wait_procs(processes, timeout=timeout)
    for process in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    psutil.wait_procs(alive, timeout=10)
    _reap()


def stop(service: Service, settings: Settings, timeout: float = 30.0) -> bool:
    """Stop the service if it runs; True when a process was stopped."""
    pid = running_pid(service, settings)
    stopped = False
    if pid is not None:
        _terminate([psutil.Process(pid)], timeout)
        stopped = True
    service.pid_file(settings).unlink(missing_ok=True)
    return stopped


# --------------------------------------------------------------------------------------
# The whole stack
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Status:
    service: str
    pid: int | None
    ports: dict[str, int]
    ready: bool

    @property
    def state(self) -> str:
        if self.ready:
            return "ready"
        return "starting" if self.pid else "stopped"


def status(settings: Settings, services: Iterable[Service] = ALL) -> list[Status]:
    result = []
    for service in services:
        pid = running_pid(service, settings)
        ready = (pid is not None or settings.mode == "external") and service.is_ready(settings)
        result.append(Status(service.name, pid, service.ports(settings), ready))
    return result


def up(settings: Settings, progress: Progress = print, flink_cluster: bool = False) -> None:
    """Start Kafka, HBase and its Thrift server (idempotent) and wait until all are ready;
    with ``flink_cluster``, a standalone Flink cluster too.

    In the external mode (docker compose) nothing is started: this only waits for them.
    """
    wanted = STACK + (FLINK_CLUSTER if flink_cluster else ())
    if settings.mode == "embedded":
        check_java()
        check_disk(settings)
        ensure_jars(settings, progress)
        missing = [service for service in wanted if running_pid(service, settings) is None]
        # Every port before any start: a taken port must not leave the services started
        # before it running in the background.
        for service in missing:
            check_ports_free(service, settings)
        for service in missing:
            progress(f"Starting {service.name}: {service.description}...")
            start(service, settings)
    for service in wanted:
        started = time.monotonic()
        wait_ready(service, settings)
        ports = ", ".join(str(p) for p in service.ports(settings).values()) or "-"
        waited = time.monotonic() - started
        progress(f"  {service.name:<8} ready on port {ports} (waited {waited:.0f} s)")


def down(settings: Settings, progress: Progress = print, timeout: float = 30.0) -> None:
    """Stop every process of this lab, also strays whose pid file was lost.

    All get SIGTERM at once (each shuts down on its own), then SIGKILL after ``timeout``.
    """
    processes = {process.pid: process for process in lab_processes(settings)}
    names = []
    for service in ALL:
        pid = running_pid(service, settings)
        if pid is not None:
            names.append(service.name)
        service.pid_file(settings).unlink(missing_ok=True)
    if processes:
        progress(f"Stopping {', '.join(names) or 'stray lab processes'}...")
        _terminate(processes.values(), timeout)
        progress(f"Stopped {len(processes)} process(es).")


def reset(settings: Settings, progress: Progress = print) -> None:
    """Stop everything and wipe the lab's data, logs and configuration (the jars stay)."""
    down(settings, progress)
    for folder in (settings.data_dir, settings.logs_dir, settings.conf_dir, settings.run_dir):
        if folder.exists():
            shutil.rmtree(folder)
            progress(f"Removed {folder}")


def log_tail(service: Service, settings: Settings, lines: int = 40) -> str:
    """The last lines of the service's log and of its console output."""
    parts = []
    for path in dict.fromkeys((service.log_file(settings), service.console_file(settings))):
        if path.exists() and path.stat().st_size:
            parts.append(f"==> {path} <==\n{_last_lines(_read_end(path), lines)}")
    return "\n".join(parts) or f"(no log yet in {settings.logs_dir})"


def _read_end(path: Path, max_bytes: int = 256 * 1024) -> str:
    with path.open("rb") as handle:
        handle.seek(max(0, path.stat().st_size - max_bytes))
        return handle.read().decode("utf-8", errors="replace")


def _last_lines(text: str, lines: int) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])
