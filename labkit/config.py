"""One settings object for the whole lab, read from ``LABKIT_*`` environment variables.

Every field has a default that works on a laptop; set ``LABKIT_<FIELD>`` (upper case) to
change one, e.g. ``LABKIT_KAFKA_PORT=19092`` or ``LABKIT_HOME=/data/lab``.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from labkit.errors import LabkitError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ENV_PREFIX = "LABKIT_"
LOOPBACK = "127.0.0.1"
# Addresses that listen on every interface of the machine.
WILDCARDS = ("0.0.0.0", "::")


class SettingsError(LabkitError, ValueError):
    """A ``LABKIT_*`` variable holds a value that cannot be used."""


class Mode(StrEnum):
    """Who runs the servers."""

    EMBEDDED = "embedded"  # labkit runs them as local processes
    EXTERNAL = "external"  # they run elsewhere (docker compose, a lab server); labkit connects


class FlinkMode(StrEnum):
    """Where the pipeline job runs."""

    LOCAL = "local"  # Flink's mini-cluster, inside the JVM PyFlink starts for this process
    REMOTE = "remote"  # a Flink cluster, with `flink run -py`


@dataclass(frozen=True)
class Topics:
    """The Kafka topics, under the names users of the original system know."""

    input: str = "input"
    input_late: str = "input_late"
    output_raw: str = "output_raw"
    output_aggr: str = "output_aggr"
    input_invalid: str = "input_invalid"
    # Per sensor, sums and counts over 1 h, 6 h, 12 h and 1 d: what dashboards read for long ranges.
    output_rollup: str = "output_rollup"

    def all(self) -> list[str]:
        return [getattr(self, f.name) for f in dataclasses.fields(self)]


@dataclass(frozen=True)
class Settings:
    # Where the lab keeps its state: jars, data, logs, pid files (git-ignored).
    home: Path = PROJECT_ROOT / ".lab"
    mode: Mode = Mode.EMBEDDED
    # The address the servers labkit starts listen on for their clients: Kafka's broker, the
    # HBase Thrift server, JupyterLab, the API (unless API_HOST says otherwise) and the Flink
    # dashboard. 127.0.0.1 keeps them on this machine; 0.0.0.0 opens them to every network
    # the machine is on, where Kafka and Thrift answer anyone (docs/reliability.md). The ports
    # only the lab itself uses (Kafka's controller, HBase's master, region server and
    # ZooKeeper, Flink's RPC, blob and data ports) stay on 127.0.0.1 whatever it says.
    bind_host: str = LOOPBACK

    kafka_host: str = "localhost"
    kafka_port: int = 9092
    kafka_controller_port: int = 9093
    kafka_partitions: int = 3
    kafka_heap: str = "512m"

    hbase_host: str = "localhost"
    hbase_thrift_port: int = 9090
    # 2183, not 2181: the original kept HBase's ZooKeeper apart from Kafka's.
    hbase_zookeeper_port: int = 2183
    hbase_master_port: int = 16000
    hbase_regionserver_port: int = 16020
    hbase_heap: str = "768m"
    hbase_thrift_heap: str = "256m"
    hbase_table_prefix: str = "iot"

    flink_heap: str = "1024m"
    flink_parallelism: int = 1
    # REMOTE submits the job to the JobManager below.
    flink_mode: FlinkMode = FlinkMode.LOCAL
    flink_jobmanager: str = "localhost:8081"
    # The JobManager's RPC port of the optional standalone cluster (on 127.0.0.1).
    flink_rpc_port: int = 6123
    # Process sizes of the optional standalone cluster (`labkit up --flink-cluster`).
    flink_jobmanager_memory: str = "768m"
    flink_taskmanager_memory: str = "1024m"

    # Where the API listens: BIND_HOST unless LABKIT_API_HOST is set.
    api_host: str = LOOPBACK
    api_port: int = 5000
    # Clients of the API must send "Authorization: Bearer <token>" when it is set; without
    # one the API only binds to a loopback address.
    api_token: str = field(default="", repr=False)

    jupyter_port: int = 8888

    # Seconds a service may take to become ready before `labkit up` gives up.
    start_timeout: float = 240.0
    # Free disk space (MiB) the lab wants before it starts its servers.
    min_free_disk_mb: int = 1024

    topics: Topics = field(default_factory=Topics)

    # --- derived paths -------------------------------------------------------------
    @property
    def jars_dir(self) -> Path:
        return self.home / "jars"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def run_dir(self) -> Path:
        return self.home / "run"

    @property
    def conf_dir(self) -> Path:
        return self.home / "conf"

    @property
    def kafka_bootstrap(self) -> str:
        return f"{self.kafka_host}:{self.kafka_port}"

    @property
    def api_url(self) -> str:
        return http_url(self.api_host, self.api_port)


def reachable(host: str) -> str:
    """The address through which this machine reaches a server listening on ``host``: one on
    every interface (a wildcard address) listens on the loopback too."""
    return LOOPBACK if host in WILDCARDS else host


def http_url(host: str, port: int) -> str:
    """The URL of an HTTP server of this machine listening on ``host:port``."""
    address = reachable(host)
    return f"http://{f'[{address}]' if ':' in address else address}:{port}"


def _convert(name: str, raw: str, target: type) -> object:
    if issubclass(target, StrEnum):
        try:
            return target(raw)
        except ValueError:
            choices = ", ".join(member.value for member in target)
            raise SettingsError(
                f"{ENV_PREFIX}{name.upper()}={raw!r}: use one of {choices}"
            ) from None
    try:
        if target is Path:
            return Path(raw).expanduser().resolve()
        if target is int:
            return int(raw)
        if target is float:
            return float(raw)
    except ValueError:
        raise SettingsError(
            f"{ENV_PREFIX}{name.upper()}={raw!r} is not a valid {target.__name__}"
        ) from None
    return raw


def _field_types() -> dict[str, type]:
    hints = {
        "Path": Path,
        "str": str,
        "int": int,
        "float": float,
        "Mode": Mode,
        "FlinkMode": FlinkMode,
    }
    return {f.name: hints[f.type] for f in dataclasses.fields(Settings) if f.type in hints}


def load(environ: dict[str, str] | None = None) -> Settings:
    """Build the settings from ``environ`` (default: ``os.environ``)."""
    environ = dict(os.environ if environ is None else environ)
    values: dict[str, Any] = {}
    for name, target in _field_types().items():
        raw = environ.get(f"{ENV_PREFIX}{name.upper()}")
        if raw is not None and raw != "":
            values[name] = _convert(name, raw, target)
    topic_values = {}
    for topic_field in dataclasses.fields(Topics):
        raw = environ.get(f"{ENV_PREFIX}TOPIC_{topic_field.name.upper()}")
        if raw:
            topic_values[topic_field.name] = raw
    values.setdefault("api_host", values.get("bind_host", LOOPBACK))
    settings = Settings(**values, topics=Topics(**topic_values))
    _validate(settings)
    return settings


def _validate(settings: Settings) -> None:
    ports = {
        "kafka_port": settings.kafka_port,
        "kafka_controller_port": settings.kafka_controller_port,
        "hbase_thrift_port": settings.hbase_thrift_port,
        "hbase_zookeeper_port": settings.hbase_zookeeper_port,
        "hbase_master_port": settings.hbase_master_port,
        "hbase_regionserver_port": settings.hbase_regionserver_port,
        "api_port": settings.api_port,
        "jupyter_port": settings.jupyter_port,
        "flink_rpc_port": settings.flink_rpc_port,
    }
    for name, port in ports.items():
        if not 0 < port < 65536:
            raise SettingsError(f"{ENV_PREFIX}{name.upper()}={port} is not a TCP port (1-65535)")
    seen: dict[int, str] = {}
    for name, port in ports.items():
        if port in seen:
            raise SettingsError(
                f"{ENV_PREFIX}{name.upper()} and {ENV_PREFIX}{seen[port].upper()} "
                f"both use port {port}"
            )
        seen[port] = name
    if settings.kafka_partitions < 1:
        raise SettingsError(f"{ENV_PREFIX}KAFKA_PARTITIONS must be at least 1")


def to_environment(settings: Settings) -> dict[str, str]:
    """The ``LABKIT_*`` variables that make ``load()`` rebuild these settings in another process."""
    environ = {
        f"{ENV_PREFIX}{name.upper()}": str(getattr(settings, name)) for name in _field_types()
    }
    for topic_field in dataclasses.fields(Topics):
        value = getattr(settings.topics, topic_field.name)
        environ[f"{ENV_PREFIX}TOPIC_{topic_field.name.upper()}"] = value
    return environ


@functools.cache
def settings() -> Settings:
    """The settings of this process (read once from the environment)."""
    return load()
