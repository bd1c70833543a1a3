"""Unclean shutdowns and broken machines: `labkit up` recovers by itself, or says what to do.

The recovery tests kill and restart the real Kafka, HBase and Thrift JVMs, so they run on a lab
instance of their own (own ``LABKIT_HOME``, own ports, the jars shared by hard links): the lab
that the rest of the suite uses is never touched. The preflight tests (a taken port, no Java, a
full disk) run ``labkit up`` as a user would, in a subprocess, and check its exit code and words.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from labkit import config, hbase, jvm, kafka, services
from labkit.config import PROJECT_ROOT, Settings

# Ports of the test's own instance and of the preflight runs: apart from the main lab's defaults
# (9092, 9093, 9090, 2183, 16000, 16020, 5000, 8888) and from each other.
INSTANCE_PORTS = {
    "KAFKA_PORT": 29392,
    "KAFKA_CONTROLLER_PORT": 29393,
    "HBASE_THRIFT_PORT": 29390,
    "HBASE_ZOOKEEPER_PORT": 22383,
    "HBASE_MASTER_PORT": 26300,
    "HBASE_REGIONSERVER_PORT": 26320,
    "API_PORT": 25300,
    "JUPYTER_PORT": 28388,
}
PREFLIGHT_PORTS = {name: port + 100 for name, port in INSTANCE_PORTS.items()}

MESSAGES = 3000
ROWS = 500


def lab_environment(home: Path, ports: dict[str, int], **extra: str) -> dict[str, str]:
    """This process's environment with a lab of its own: its home and ports, nothing inherited."""
    environ = {key: value for key, value in os.environ.items() if not key.startswith("LABKIT_")}
    environ["LABKIT_HOME"] = str(home)
    environ.update({f"LABKIT_{name}": str(port) for name, port in ports.items()})
    # The optional Flink cluster is never started here, but keep its port off the main lab's too.
    environ["LABKIT_FLINK_JOBMANAGER"] = f"localhost:{ports['API_PORT'] + 3000}"
    environ.update({f"LABKIT_{name}": value for name, value in extra.items()})
    return environ


def labkit(
    environ: dict[str, str], *arguments: str, timeout: float = 600
) -> subprocess.CompletedProcess:
    """Run the ``labkit`` command as a user would, in a process of its own."""
    return subprocess.run(
        [sys.executable, "-m", "labkit", *arguments],
        env=environ,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def assert_clear_failure(result: subprocess.CompletedProcess, *phrases: str) -> str:
    """`labkit` failed with exit code 1 and one message holding ``phrases``, not a traceback."""
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Traceback" not in output, output
    assert result.stderr.startswith("labkit: "), output
    for phrase in phrases:
        assert phrase in result.stderr, f"{phrase!r} missing from: {result.stderr}"
    return result.stderr


def share_jars(source: Settings, home: Path) -> None:
    """Give a new lab home the jars of ``source`` as hard links: no copy, no Maven run."""
    if not jvm.jars_resolved(source):
        return  # `labkit up` resolves them with Maven then, as on a first run
    try:
        shutil.copytree(source.jars_dir, home / "jars", copy_function=os.link)
    except OSError:  # another file system: hard links are impossible, copy instead
        shutil.rmtree(home / "jars", ignore_errors=True)
        shutil.copytree(source.jars_dir, home / "jars")


@contextlib.contextmanager
def stopped_afterwards(settings: Settings) -> Iterator[Settings]:
    """Whatever a test started in this lab home is stopped when it ends, pass or fail."""
    try:
        yield settings
    finally:
        services.down(settings, progress=lambda message: None)


@dataclass(frozen=True)
class OwnLab:
    settings: Settings  # for calls in this process (kafka, hbase, services helpers)
    environ: dict[str, str]  # for `labkit` subprocesses


@pytest.fixture(scope="module")
def own_lab(tmp_path_factory: pytest.TempPathFactory, settings: Settings) -> Iterator[OwnLab]:
    """A lab instance of these tests alone, always stopped at the end."""
    home = tmp_path_factory.mktemp("own_lab")
    share_jars(settings, home)
    environ = lab_environment(home, INSTANCE_PORTS)
    with stopped_afterwards(config.load(environ)) as own:
        yield OwnLab(own, environ)


def up_via_cli(lab: OwnLab) -> float:
    """`labkit up` on the own instance; the seconds it took."""
    started = time.monotonic()
    result = labkit(lab.environ, "up")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert "The lab is up" in result.stdout
    return time.monotonic() - started


def kill_hard(settings: Settings, chosen: tuple[services.Service, ...]) -> dict[str, int]:
    """SIGKILL the chosen services, as a crash or the OOM killer would; their killed pids."""
    processes = {}
    for service in chosen:
        pid = services.running_pid(service, settings)
        assert pid is not None, f"{service.name} is not running"
        processes[service.name] = psutil.Process(pid)
    for process in processes.values():
        process.send_signal(signal.SIGKILL)
    _gone, alive = psutil.wait_procs(list(processes.values()), timeout=30)
    assert not alive, alive
    return {name: process.pid for name, process in processes.items()}


@dataclass(frozen=True)
class Written:
    settings: Settings  # the lab's settings with a topic and tables of this write alone
    topic: str
    messages: set[bytes]
    rows: dict[bytes, bytes]


def write_data(settings: Settings) -> Written:
    """Messages into a Kafka topic and rows into an HBase table, both new; what was written."""
    tag = uuid.uuid4().hex[:8]
    mine = dataclasses.replace(settings, hbase_table_prefix=f"crash_{tag}")
    topic = f"crash_{tag}"
    kafka.ensure_topics(mine, [topic], partitions=3)
    producer = kafka.BatchProducer(mine)
    messages = {f"{tag}-message-{i}".encode() for i in range(MESSAGES)}
    for value in messages:
        producer.send(topic, value)
    producer.flush()  # every message acknowledged by the broker before the crash
    hbase.ensure_tables(mine)
    rows = {f"TH1#2024-01-05 {i:08d}".encode(): f"{tag}-{i}".encode() for i in range(ROWS)}
    connection = hbase.connect(mine)
    try:
        with connection.table(hbase.table_name(mine, "raw")).batch() as batch:
            for key, value in rows.items():
                batch.put(key, {hbase.FAMILY + b":value": value})
    finally:
        connection.close()
    return Written(mine, topic, messages, rows)


def stored_rows(written: Written) -> dict[bytes, bytes]:
    connection = hbase.connect(written.settings)
    try:
        table = connection.table(hbase.table_name(written.settings, "raw"))
        return {key: columns[hbase.FAMILY + b":value"] for key, columns in table.scan()}
    finally:
        connection.close()


def stored_messages(written: Written) -> set[bytes]:
    # A generous idle time: the first consumer group of a fresh broker waits for Kafka to
    # create its offsets topic, and a short idle would return nothing rather than wait.
    records = kafka.read(written.settings, written.topic, limit=MESSAGES, idle=60, timeout=180)
    values = [record.value for record in records]
    assert len(values) == len(set(values)), "a message came back twice"
    return set(values)


def assert_stack_ready(settings: Settings, not_pids: set[int]) -> None:
    for row in services.status(settings, services.STACK):
        assert row.state == "ready", row
        assert row.pid not in not_pids, f"{row.service} still reports the old pid {row.pid}"


# --------------------------------------------------------------------------------------
# Recovery after an unclean shutdown
# --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_up_ignores_pid_files_of_dead_unrelated_and_foreign_processes(
    own_lab: OwnLab, tmp_path: Path
) -> None:
    """Pid files left by a crash may name a dead pid, a reused pid or garbage: `up` must start
    the servers anyway, and neither `up` nor `down` may signal a process that is not ours."""
    own = own_lab.settings
    services.down(own, progress=lambda message: None)
    finished = subprocess.Popen(["true"])
    finished.wait()
    # A live process that claims to be the hbase of another lab home: the pid file of ours
    # names it, as after a reboot that handed the old pid to someone else's server.
    foreign = subprocess.Popen(
        ["sleep", "600"],
        env={**os.environ, "LABKIT_SERVICE": "hbase", "LABKIT_HOME": str(tmp_path / "other")},
        start_new_session=True,
    )
    try:
        own.run_dir.mkdir(parents=True, exist_ok=True)
        services.KAFKA.pid_file(own).write_text(f"{finished.pid}\n")
        services.HBASE.pid_file(own).write_text(f"{foreign.pid}\n")
        services.THRIFT.pid_file(own).write_text("half-written\n")
        services.API.pid_file(own).write_text(f"{os.getpid()}\n")

        seconds = up_via_cli(own_lab)
        print(f"`labkit up` over stale pid files: ready in {seconds:.0f} s")
        assert_stack_ready(own, not_pids={finished.pid, foreign.pid, os.getpid()})
        assert foreign.poll() is None, "`labkit up` signalled another lab's process"

        result = labkit(own_lab.environ, "down")
        assert result.returncode == 0, result.stdout + result.stderr
        assert services.lab_processes(own) == []
        assert foreign.poll() is None, "`labkit down` signalled another lab's process"
    finally:
        foreign.kill()
        foreign.wait()


@pytest.mark.slow
def test_up_after_every_server_was_killed_brings_the_data_back(own_lab: OwnLab) -> None:
    """SIGKILL Kafka, HBase and Thrift after data was written; `labkit up`, with no cleaning
    in between, brings every server back and every message and row written before the crash."""
    own = own_lab.settings
    up_via_cli(own_lab)
    written = write_data(own)

    killed = kill_hard(own, services.STACK)
    # The crash leaves its traces: pid files of dead processes, data never closed cleanly.
    for service in services.STACK:
        assert service.pid_file(own).exists()
        assert services.running_pid(service, own) is None

    seconds = up_via_cli(own_lab)
    assert_stack_ready(own, not_pids=set(killed.values()))
    messages, rows = stored_messages(written), stored_rows(written)
    print(
        f"after SIGKILL of {', '.join(killed)}: ready again in {seconds:.0f} s; "
        f"{len(messages)}/{len(written.messages)} messages, {len(rows)}/{len(written.rows)} rows"
    )
    assert messages == written.messages
    assert rows == written.rows
    result = labkit(own_lab.environ, "status")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_up_after_hbase_alone_was_killed_keeps_thrift_and_the_rows(own_lab: OwnLab) -> None:
    """The HBase JVM dies (an OOM kill) while Thrift lives on: `labkit up` restarts HBase only,
    and the surviving Thrift server serves the rows again."""
    own = own_lab.settings
    up_via_cli(own_lab)
    written = write_data(own)
    thrift_pid = services.running_pid(services.THRIFT, own)

    killed = kill_hard(own, (services.HBASE,))
    seconds = up_via_cli(own_lab)
    assert_stack_ready(own, not_pids=set(killed.values()))
    assert services.running_pid(services.THRIFT, own) == thrift_pid
    rows = stored_rows(written)
    print(f"after SIGKILL of hbase: ready again in {seconds:.0f} s; {len(rows)}/{ROWS} rows")
    assert rows == written.rows


# --------------------------------------------------------------------------------------
# Preflight: what `labkit up` says when the machine is not fit to run the lab
# --------------------------------------------------------------------------------------


@contextlib.contextmanager
def socket_listening(port: int) -> Iterator[None]:
    """Something else listening on ``port``, as a forgotten server would."""
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        yield


@pytest.mark.parametrize(
    ("port_name", "service_and_role"),
    [("KAFKA_PORT", "kafka broker"), ("HBASE_THRIFT_PORT", "thrift thrift")],
)
def test_a_taken_port_stops_up_before_anything_starts(
    tmp_path: Path, settings: Settings, port_name: str, service_and_role: str
) -> None:
    """The message names the port, who holds it and the setting to change; and `up` leaves
    nothing half-started behind (no Kafka and HBase running when Thrift's port is taken)."""
    environ = lab_environment(tmp_path, PREFLIGHT_PORTS)
    port = PREFLIGHT_PORTS[port_name]
    with stopped_afterwards(config.load(environ)) as mine, socket_listening(port):
        share_jars(settings, tmp_path)  # so that a wrong start would really start servers
        message = assert_clear_failure(
            labkit(environ, "up"),
            f"Port {port} ({service_and_role}) is already taken by pid {os.getpid()}",
            f"LABKIT_{port_name}=<free port>",
            "`labkit down`",
        )
        assert services.lab_processes(mine) == [], f"left running after: {message}"


def _no_java_on_path(tmp_path: Path) -> dict[str, str]:
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    environ = lab_environment(tmp_path / "lab", PREFLIGHT_PORTS)
    environ["PATH"] = str(empty_bin)
    environ.pop("JAVA_HOME", None)
    return environ


def test_no_java_says_to_install_java_17_or_set_java_home(tmp_path: Path) -> None:
    result = labkit(_no_java_on_path(tmp_path), "up")
    assert_clear_failure(result, "Java was not found", "Java 17", "JAVA_HOME")


def test_a_java_home_without_java_is_named(tmp_path: Path) -> None:
    environ = _no_java_on_path(tmp_path)
    environ["JAVA_HOME"] = str(tmp_path / "not-a-jdk")
    result = labkit(environ, "up")
    assert_clear_failure(result, f"JAVA_HOME={tmp_path / 'not-a-jdk'}", "Java 17")


def test_a_broken_java_in_java_home_is_named(tmp_path: Path) -> None:
    """A JDK half unpacked: bin/java is there but cannot run (no execute permission)."""
    environ = _no_java_on_path(tmp_path)
    broken = tmp_path / "broken-jdk"
    (broken / "bin").mkdir(parents=True)
    (broken / "bin" / "java").write_text("")
    environ["JAVA_HOME"] = str(broken)
    result = labkit(environ, "up")
    assert_clear_failure(result, str(broken / "bin" / "java"), "Java 17", "JAVA_HOME")


def test_too_little_free_disk_says_what_to_do(tmp_path: Path) -> None:
    """Driven by the setting: ask for more free space than any disk has."""
    environ = lab_environment(tmp_path, PREFLIGHT_PORTS, MIN_FREE_DISK_MB=str(10**12))
    with stopped_afterwards(config.load(environ)) as mine:
        assert_clear_failure(
            labkit(environ, "up"), "MiB free on the disk", "`labkit reset --yes`", "LABKIT_HOME="
        )
        assert services.lab_processes(mine) == []


@contextlib.contextmanager
def small_file_system(folder: Path, megabytes: int) -> Iterator[Path]:
    """A real ext4 file system of a few MiB, loop-mounted at ``folder`` (needs root)."""
    if os.geteuid() != 0 or not shutil.which("mkfs.ext4"):
        pytest.skip("a loop mount needs root and mkfs.ext4; the setting-driven test covers it")
    image = folder.with_suffix(".img")
    with image.open("wb") as handle:
        handle.truncate(megabytes * 1024 * 1024)
    # -m 0: no blocks reserved for root, so that root too sees the disk full.
    subprocess.run(["mkfs.ext4", "-q", "-F", "-m", "0", str(image)], check=True)
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-o", "loop", str(image), str(folder)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"mount is not allowed here ({mounted.stderr.strip()})")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False)
        image.unlink()


def fill(folder: Path) -> Path:
    """Write into ``folder`` until the file system is full; the filler file."""
    filler = folder / "filler"
    chunk = b"\0" * (1024 * 1024)
    with filler.open("wb", buffering=0) as handle, contextlib.suppress(OSError):
        while True:
            handle.write(chunk)
    with filler.open("ab", buffering=0) as handle, contextlib.suppress(OSError):
        while True:  # the last, partial block
            handle.write(b"\0" * 1024)
    return filler


def test_a_really_full_disk_says_what_to_do(tmp_path: Path) -> None:
    """LABKIT_HOME on a file system that is 100 % full: not even its folder can be created."""
    with small_file_system(tmp_path / "small", megabytes=32) as disk:
        filler = fill(disk)
        assert shutil.disk_usage(disk).free < 1024 * 1024
        home = disk / "lab" / "home"
        environ = lab_environment(home, PREFLIGHT_PORTS, MIN_FREE_DISK_MB="16")
        assert_clear_failure(
            labkit(environ, "up"), f"free on the disk of {home}", "`labkit reset --yes`"
        )
        # With the check switched off, creating LABKIT_HOME is what fails: said just as clearly.
        environ["LABKIT_MIN_FREE_DISK_MB"] = "0"
        assert_clear_failure(
            labkit(environ, "up"),
            f"Cannot create the lab's folder {home} (No space left on device",
            "free on its disk",
            "LABKIT_HOME=",
        )
        # Space freed, the same check passes: it measured the real file system.
        filler.unlink()
        services.check_disk(config.load(environ))
        assert home.is_dir()
