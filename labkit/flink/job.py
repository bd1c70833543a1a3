"""Running the job: its TableEnvironment, start, wait, cancel, checkpoints, and submission
to a Flink cluster.

The job runs on Flink's local mini-cluster (inside the JVM PyFlink starts) or, with
``LABKIT_FLINK_MODE=remote``, is submitted to a Flink cluster with ``flink run -py``, which
executes ``labkit/flink/__main__.py`` in a client process.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labkit import lock
from labkit.config import FlinkMode, Settings
from labkit.errors import ServiceError
from labkit.flink import job_sql, plans, tables
from labkit.jvm import check_java, jar_group


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
    # The client compiler only (C1): the lab's jobs run for seconds to minutes, too short for
    # the optimising compiler's work to pay back on two shared cores. It halves the CPU of a
    # start and is faster even for a simulated year (docs/benchmarks.md). JVM_ARGS overrides.
    os.environ.setdefault("JVM_ARGS", f"-Xmx{settings.flink_heap} -XX:TieredStopAtLevel=1")
    # The job is SQL: it never runs Python functions. Without this, PyFlink serves a pool of
    # Python workers for the mini-cluster over gRPC, unauthenticated, on every interface.
    os.environ.setdefault("_python_worker_execution_mode", "process")


def table_environment(settings: Settings, streaming: bool = True) -> Any:
    """A TableEnvironment with the Kafka connector on its classpath, in UTC."""
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
    # m_timestamp carries no zone; the lab reads it, and Kafka's record timestamps, as UTC.
    config.set("table.local-time-zone", "UTC")
    # A cancelled job's Kafka client threads outlive its class loader; Flink's check for that
    # only prints a scary stack trace.
    config.set("classloader.check-leaked-classloader", "false")
    # A view that several statements read is computed once, not once per statement: without
    # this, each INSERT would parse every message's JSON again.
    config.set("table.optimizer.reuse-optimize-block-with-digest-enabled", "true")
    # Operators chained in one task pass rows on without copying them (SQL operators do not
    # keep the rows they are given).
    config.set("pipeline.object-reuse", "true")
    if settings.flink_mode is FlinkMode.LOCAL:
        # The mini-cluster's servers on the loopback interface only (its blob server listens on
        # every interface otherwise), and its REST API (job graph, checkpoints, metrics:
        # labkit.flink.runtime) on a free port.
        for bind_host in ("jobmanager.bind-host", "taskmanager.bind-host", "rest.bind-address"):
            config.set(bind_host, "127.0.0.1")
        config.set("rest.address", "127.0.0.1")
        config.set("rest.bind-port", str(_free_port()))
    return env


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def rest_url(env: Any) -> str:
    """Where the REST API of a job started from ``env`` on the mini-cluster answers."""
    config = env.get_config()
    return f"http://{config.get('rest.address', '')}:{config.get('rest.bind-port', '')}"


def declare(env: Any, settings: Settings, bounded: bool) -> None:
    """Create the job's tables and views in a TableEnvironment.

    Each view is registered from its query (``create_temporary_view``) rather than with
    CREATE VIEW: every statement then reads one and the same plan node, which Flink runs once.
    """
    _declare_tables(env, settings, bounded)
    _declare_views(env)


def _declare_tables(env: Any, settings: Settings, bounded: bool) -> None:
    for table in (tables.source_table(settings, bounded), *tables.sink_tables(settings)):
        env.execute_sql(table)


def _declare_views(env: Any) -> None:
    for name, select in job_sql.views().items():
        env.create_temporary_view(name, env.sql_query(select))


@dataclass
class RunningJob:
    """A submitted pipeline job: wait for it (bounded) or cancel it (live)."""

    result: Any  # pyflink's TableResult
    rest: str = ""  # the base URL of the REST API of the cluster that runs it
    claim: lock.Claim | None = None  # a live job started on its own claims the lab's topics

    @property
    def job_id(self) -> str:
        return str(self.result.get_job_client().get_job_id())

    def status(self) -> str:
        return str(self.result.get_job_client().get_job_status().result())

    @property
    def ended(self) -> bool:
        """True once the job has finished, failed or been cancelled (its result is known even
        after its mini-cluster has shut down)."""
        return bool(self.result.get_job_client().get_job_execution_result().done())

    def wait(self, poll: Callable[[], None] | None = None, interval: float = 1.0) -> None:
        """Block until the job ends (raising if it failed); ``poll()`` runs meanwhile."""
        finished = self.result.get_job_client().get_job_execution_result()
        while poll is not None and not finished.done():
            poll()
            time.sleep(interval)
        self.result.wait()
        if poll is not None:
            poll()

    def cancel(self, timeout: float = 60.0) -> None:
        """Cancel the job and wait until it has ended, so that it writes nothing more; a job
        that has ended already is left as it is (cancelling twice is harmless)."""
        try:
            if not self.ended:
                self.result.get_job_client().cancel().result()
        except Exception:
            if not self.ended:  # it did not end in the meantime: the cancel itself failed
                raise
        deadline = time.monotonic() + timeout
        while not self.ended:
            if time.monotonic() > deadline:
                raise ServiceError(
                    f"Flink did not cancel job {self.job_id} within {timeout:.0f} s: restart the "
                    "notebook's kernel (Kernel > Restart) to stop its Flink for sure."
                )
            time.sleep(0.1)
        if self.claim is not None:
            self.claim.release()


def checkpoint_dir(settings: Settings) -> Path:
    """Where the live job over this input topic keeps its checkpoints."""
    return settings.data_dir / "flink" / "checkpoints" / settings.topics.input


def latest_checkpoint(settings: Settings) -> Path | None:
    """The newest complete checkpoint a live job left behind (a ``chk-N`` with metadata)."""
    complete = checkpoint_dir(settings).glob("*/chk-*/_metadata")
    newest = max(complete, key=lambda metadata: metadata.stat().st_mtime, default=None)
    return None if newest is None else newest.parent


def start_pipeline(
    settings: Settings, bounded: bool, restore: bool = False, under: lock.Claim | None = None
) -> RunningJob:
    """Submit the pipeline job to the local mini-cluster.

    A live job checkpoints every 10 s (its windows and its Kafka offsets) and keeps its last
    checkpoint when cancelled; ``restore=True`` starts it again from there.

    ``under`` is the claim on the lab's topics of the run the job is part of (``labkit.lock``);
    a live job without one claims them for itself until ``cancel()`` (refused while another
    process runs live on them; a live job this process started earlier on them is cancelled).
    """
    own = None if bounded or under is not None else lock.claim(settings, lock.LiveRun.FLINK_JOB)
    try:
        execute, rest = _prepared(settings, bounded, restore)
        job = RunningJob(_submit(execute, own or under), rest=rest, claim=own)
    except BaseException:
        if own is not None:
            own.release()
        raise
    if own is not None:
        own.stop = lambda reason: job.cancel()
    return job


def _prepared(settings: Settings, bounded: bool, restore: bool) -> tuple[Callable[[], Any], str]:
    """The job, ready to execute (a call that returns its TableResult), and the base URL of
    the REST API of the cluster that will run it."""
    env = table_environment(settings)
    config = env.get_config()
    config.set("pipeline.name", f"labkit pipeline ({'bounded' if bounded else 'live'})")
    if not bounded:
        config.set("execution.checkpointing.interval", "10 s")
        config.set("execution.checkpointing.dir", checkpoint_dir(settings).as_uri())
        config.set(
            "execution.checkpointing.externalized-checkpoint-retention", "RETAIN_ON_CANCELLATION"
        )
    if restore:
        checkpoint = latest_checkpoint(settings)
        if checkpoint is None:
            raise ServiceError(
                f"No checkpoint to restore from in {checkpoint_dir(settings)}: start the live "
                "job without restore=True first."
            )
        config.set("execution.state-recovery.path", checkpoint.as_uri())
    local = settings.flink_mode is FlinkMode.LOCAL
    rest = rest_url(env) if local else f"http://{settings.flink_jobmanager}"
    _declare_tables(env, settings, bounded)
    # The optimiser's work is kept as a compiled plan between starts (labkit.flink.plans).
    key = plans.plan_key(config.get_configuration().to_dict(), settings, bounded)
    plan = plans.stored_plan(settings, key)

    def execute() -> Any:
        if plan is not None:
            try:
                return plans.execute_stored(env, plan)
            except Exception as error:  # noqa: BLE001 - a plan this Flink cannot run: compile anew
                plans.discard(plan, error)
        _declare_views(env)
        statement_set = env.create_statement_set()
        for insert in job_sql.inserts().values():
            statement_set.add_insert_sql(insert)
        return plans.compile_and_execute(statement_set, settings, key)

    return execute, rest


def _submit(execute: Callable[[], Any], claim: lock.Claim | None) -> Any:
    """``execute()``, which an interrupt (Ctrl-C, the stop button) cannot cut in two.

    Cut short, the call would still start the job in the JVM, and nobody could cancel it: it
    would read the lab's topics beside the next run. Interrupted, the submission goes on in
    the background and the job is cancelled as soon as it exists; ``claim`` is kept until then,
    so that the next run on these topics waits for it.
    """
    outcome: dict[str, Any] = {}
    submitted = threading.Event()

    def submit() -> None:
        try:
            outcome["result"] = execute()
        except BaseException as error:  # noqa: BLE001 - raised again in the caller's thread
            outcome["error"] = error
        finally:
            submitted.set()

    threading.Thread(target=submit, name="flink-submit", daemon=True).start()
    try:
        while not submitted.wait(0.2):
            pass
    except KeyboardInterrupt:

        def cancel_once_submitted() -> None:
            submitted.wait()
            if "result" in outcome:
                RunningJob(outcome["result"]).cancel()

        if claim is not None:
            claim.linger(cancel_once_submitted, "flink-cancel")
        else:
            threading.Thread(target=cancel_once_submitted, name="flink-cancel", daemon=True).start()
        raise
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


def run_bounded(
    settings: Settings, poll: Callable[[], None] | None = None, under: lock.Claim | None = None
) -> None:
    """Run the job over what ``input`` holds now, on the mini-cluster or the remote cluster
    (LABKIT_FLINK_MODE); ``poll()`` is called about once a second until it ends. ``under``: the
    claim of the run it is part of (``start_pipeline``)."""
    if settings.flink_mode is FlinkMode.LOCAL:
        job = start_pipeline(settings, bounded=True, under=under)
        try:
            job.wait(poll)
        except BaseException:
            job.cancel()  # interrupted (or failed): no job may go on reading the topics
            raise
        return
    outcome: list[BaseException | None] = []

    def submit() -> None:
        try:
            submit_remote(settings, bounded=True)
            outcome.append(None)
        except BaseException as error:  # noqa: BLE001 - raised again below
            outcome.append(error)

    worker = threading.Thread(target=submit, name="flink-run", daemon=True)
    worker.start()
    while worker.is_alive():
        if poll is not None:
            poll()
        worker.join(1.0)
    if poll is not None:
        poll()
    if outcome and outcome[0] is not None:
        raise outcome[0]


def flink_cli() -> Path:
    import pyflink

    return Path(pyflink.__file__).parent / "bin" / "flink"


def submit_remote(settings: Settings, bounded: bool) -> subprocess.CompletedProcess:
    """Submit the pipeline to a Flink cluster with ``flink run -py`` (LABKIT_FLINK_MODE=remote).

    The job is built by ``labkit/flink/__main__.py`` in a client process, from the same
    settings, passed on as LABKIT_* variables. A bounded job is waited for; a live one detached.
    """
    from labkit import config

    command = [
        str(flink_cli()), "run",
        "-m", settings.flink_jobmanager,
        *([] if bounded else ["--detached"]),
        "--jarfile", str(connector_jar(settings)),
        "-pyclientexec", sys.executable,
        "-pyexec", sys.executable,
        "-py", str(Path(__file__).with_name("__main__.py")),
        *(["--bounded"] if bounded else []),
    ]  # fmt: skip
    env = {
        **os.environ,
        **config.to_environment(settings),
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ServiceError(
            f"`flink run` against {settings.flink_jobmanager} failed:\n"
            + "\n".join((result.stdout + result.stderr).strip().splitlines()[-25:])
        )
    return result
