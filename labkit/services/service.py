"""What a server of the lab is: a process with a command, ports and a readiness probe.

``Service`` runs anything; ``JavaService`` runs a main class from Maven-resolved jars.
"""

from __future__ import annotations

import contextlib
import socket
from dataclasses import dataclass
from pathlib import Path

from labkit.config import Settings
from labkit.jvm import check_java, jar_group


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
