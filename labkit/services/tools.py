"""The servers around the data: JupyterLab, an optional standalone Flink cluster from PyFlink's
own distribution, and labkit's HTTP API."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import yaml

from labkit.config import LOOPBACK, PROJECT_ROOT, Settings, http_url, reachable
from labkit.jvm import check_java
from labkit.services.service import Service

NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"

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
