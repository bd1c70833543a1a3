"""Start, check and stop the lab's servers as local processes: no Docker needed.

Each process runs detached in its own session, logs into ``.lab/logs``, and has a pid file in
``.lab/run``. Every process carries ``LABKIT_SERVICE`` and ``LABKIT_HOME`` in its environment,
so that ``stop`` only ever signals processes this lab started.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import psutil

from labkit import logs
from labkit.config import Mode, Settings
from labkit.errors import ServiceError
from labkit.jvm import Progress, check_java, ensure_jars, last_lines
from labkit.services.servers import ALL, FLINK_CLUSTER, STACK
from labkit.services.service import Service, port_open

log = logging.getLogger(__name__)


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
        ("flink-jm", "rest"): "LABKIT_FLINK_JOBMANAGER",
        ("flink-jm", "rpc"): "LABKIT_FLINK_RPC_PORT",
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
        if settings.mode is Mode.EMBEDDED and running_pid(service, settings) is None:
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
        ready = (pid is not None or settings.mode is Mode.EXTERNAL) and service.is_ready(settings)
        result.append(Status(service.name, pid, service.ports(settings), ready))
    return result


def up(settings: Settings, progress: Progress = print, flink_cluster: bool = False) -> None:
    """Start Kafka, HBase and its Thrift server (idempotent) and wait until all are ready;
    with ``flink_cluster``, a standalone Flink cluster too.

    In the external mode (docker compose) nothing is started: this only waits for them.
    """
    wanted = STACK + (FLINK_CLUSTER if flink_cluster else ())
    if settings.mode is Mode.EMBEDDED:
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
        # Who stopped the lab, for whoever finds it stopped (.lab/logs/labkit.log).
        logs.to_file(settings)
        log.info("down: stopping %d process(es), asked by pid %d (%s)", len(processes),
                 os.getpid(), " ".join(sys.argv))  # fmt: skip
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
            parts.append(f"==> {path} <==\n{last_lines(_read_end(path), lines)}")
    return "\n".join(parts) or f"(no log yet in {settings.logs_dir})"


def _read_end(path: Path, max_bytes: int = 256 * 1024) -> str:
    with path.open("rb") as handle:
        handle.seek(max(0, path.stat().st_size - max_bytes))
        return handle.read().decode("utf-8", errors="replace")
