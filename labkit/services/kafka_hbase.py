"""The Apache servers the data lives in: Kafka in KRaft mode, HBase standalone and its Thrift
server, each a JVM started from Maven-resolved jars."""

from __future__ import annotations

import base64
import logging
import os
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from labkit.config import LOOPBACK, Settings
from labkit.errors import ServiceError
from labkit.jvm import RECIPES_DIR, check_java, last_lines
from labkit.services.service import JavaService, port_open

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
