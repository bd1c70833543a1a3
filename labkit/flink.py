"""The stream layer: PyFlink SQL jobs on Flink's local mini-cluster, reading and writing Kafka."""

from __future__ import annotations

import os
from pathlib import Path

from labkit.config import Settings
from labkit.services import ServiceError, check_java, jar_group


def flink_version() -> str:
    from pyflink.version import __version__

    return __version__


def connector_jar(settings: Settings) -> Path:
    """The Flink Kafka SQL connector jar that matches the installed PyFlink."""
    jars = sorted(jar_group(settings, "flink").glob("flink-sql-connector-kafka-*.jar"))
    if not jars:
        raise ServiceError(
            f"The Flink Kafka SQL connector is missing from {settings.jars_dir / 'flink'}: "
            "run `labkit up` (or `make jars`)."
        )
    jar = jars[-1]
    # Connector versions end in the Flink minor version they are built for: 5.0.0-2.2.
    built_for = jar.stem.rsplit("-", 1)[-1]
    installed = ".".join(flink_version().split(".")[:2])
    if built_for != installed:
        raise ServiceError(
            f"{jar.name} is built for Flink {built_for}, but PyFlink {flink_version()} is "
            "installed. Align flink.kafka.connector.version in services/pom.xml with the "
            "apache-flink pin in pyproject.toml."
        )
    return jar


def _prepare_gateway(settings: Settings) -> None:
    """Settings for the JVM that PyFlink starts on first use (it hosts the mini-cluster)."""
    check_java()
    log_dir = settings.logs_dir / "flink"
    log_dir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("FLINK_LOG_DIR", str(log_dir))
    os.environ.setdefault("JVM_ARGS", f"-Xmx{settings.flink_heap}")


def table_environment(settings: Settings, streaming: bool = True):
    """A TableEnvironment with the Kafka connector on its classpath."""
    _prepare_gateway(settings)
    from pyflink.table import EnvironmentSettings, TableEnvironment

    mode = (
        EnvironmentSettings.in_streaming_mode()
        if streaming
        else EnvironmentSettings.in_batch_mode()
    )
    env = TableEnvironment.create(mode)
    config = env.get_config()
    config.set("pipeline.jars", connector_jar(settings).as_uri())
    config.set("parallelism.default", str(settings.flink_parallelism))
    return env
