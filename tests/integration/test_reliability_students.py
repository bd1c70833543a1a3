"""A lab that survives its students: real Jupyter kernels (``jupyter_client``, as JupyterLab
drives them) run the notebooks and the ``labkit`` calls they make against the real services,
and are interrupted, restarted, run twice, run side by side, and have the lab taken down
under them. Each case must end in a working lab, with data that is exact or said to be
partial, and ``labkit status`` telling the truth (``docs/reliability.md``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest
from confluent_kafka import KafkaException
from jupyter_core.paths import jupyter_runtime_dir

from labkit import config, hbase, kafka, lock, services
from labkit.config import PROJECT_ROOT

from .kernels import Kernel, code_cells, wait_for
from .test_notebooks import QUICK

SETUP = """
import threading
import pandas as pd
from labkit import config, flink, kafka, lock, notebook, pipeline, sensors
settings = config.settings()
"""

# The threads of the lab's live runs (and of their stopping) in a kernel.
LAB_THREADS = "('live-simulation', 'hbase-writer-', 'flink-submit', 'flink-cancel', 'labkit-')"

SIMULATION = """
live = pipeline.LiveSimulation(settings, sensors.Scenario(), speed=86400.0).start()
notebook.watch(lambda: f"{{live.sent:,}} messages sent", seconds={seconds})
live.stop()
"""


def pipeline_cell(seconds: int) -> str:
    """Notebook 06's live cell: the whole pipeline, watched, then stopped."""
    return f"""
live = pipeline.LivePipeline(settings, sensors.Scenario(seed=6), speed=86400.0).start()
notebook.watch(lambda: pd.DataFrame([live.counts()]), seconds={seconds}, every=2)
final = live.stop()
"""


# Notebook 06 asserts that HBase equals the oracle; this reads the verdict it left.
EXACT_06 = "bool(check['match'].all() and losses['as the oracle'].all())"

EXACT = """
check = pipeline.oracle_check(settings, live.simulation.history)
outcome = (len(check), bool(check["match"].all()), final)
"""


def count(settings, topic: str) -> int:
    return kafka.message_count(settings, getattr(settings.topics, topic))


def output(settings) -> bool:
    """True once Flink has written to ``output_raw`` (False while a reset recreates it)."""
    try:
        return count(settings, "output_raw") > 0
    except KafkaException:
        return False


def classified(settings) -> int:
    return sum(count(settings, topic) for topic in ("output_raw", "input_late", "input_invalid"))


def lab_threads(kernel: Kernel, settle: float = 30.0) -> list[str]:
    """The lab's threads alive in the kernel, once those that are ending have ended (the
    watcher of the lab's servers ends within seconds of the last run)."""
    threads = "__import__('threading').enumerate()"
    names = f"[t.name for t in {threads} if t.name.startswith({LAB_THREADS})]"
    deadline = time.monotonic() + settle
    while (alive := kernel.value(names)) and time.monotonic() < deadline:
        time.sleep(1)
    return alive


def assert_exact(kernel: Kernel) -> None:
    """The last live pipeline of the kernel: every message classified once, HBase = oracle."""
    assert kernel.run(EXACT).status == "ok"
    days, match, final = kernel.value("outcome")
    assert final["raw"] + final["late"] == final["sent"] and final["invalid"] == 0, final
    assert days > 0 and match


def labkit(settings, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **config.to_environment(settings)}
    return subprocess.run(
        [sys.executable, "-m", "labkit", *args],
        env=env, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip


def status(settings) -> dict:
    result = labkit(settings, "status", "--json")
    return json.loads(result.stdout)


@pytest.fixture
def kernels():
    started: list[Kernel] = []

    def start(settings, notebook: str) -> Kernel:
        started.append(Kernel(settings, notebook))
        return started[-1]

    yield start
    for kernel in started:
        kernel.shutdown()


# --------------------------------------------------------------------------------------
# Interrupted, then the same cell again
# --------------------------------------------------------------------------------------


def test_an_interrupted_live_simulation_stops_and_its_cell_runs_again(isolated, kernels):
    kernel = kernels(isolated, "01_sensors.ipynb")
    assert kernel.run(SETUP).status == "ok"
    running = kernel.submit(SIMULATION.format(seconds=600))
    wait_for(lambda: count(isolated, "input") > 0, "the sensors' first messages")
    held = lock.holder(isolated)
    assert held is not None and (held.pid, held.who) == (kernel.pid, "notebook 01_sensors.ipynb")

    kernel.interrupt()
    interrupted = kernel.collect(running)
    assert interrupted.ename == "KeyboardInterrupt"
    assert "Interrupted: stopping the sensors (a live simulation)" in interrupted.stdout
    assert "partial" in interrupted.stdout
    assert lock.holder(isolated) is None
    sent, still_running = kernel.value("(live.sent, live.running)")
    assert not still_running and lab_threads(kernel) == []
    # Every message it counted is in Kafka, and no more come.
    assert count(isolated, "input") == sent
    time.sleep(3)
    assert count(isolated, "input") == sent

    again = kernel.run(SIMULATION.format(seconds=5))
    assert again.status == "ok", again.shown
    assert count(isolated, "input") == sent + kernel.value("live.sent")
    assert lock.holder(isolated) is None


# Watches the job's submission in the kernel: a file appears when it begins, and each
# cancelled job is noted, with whether it had ended.
SUBMISSION_PROBE = """
import pathlib
from labkit.flink import job as flink_job
submit, cancel, cancelled = flink_job._submit, flink_job.RunningJob.cancel, []
def probed_submit(statement_set, claim):
    pathlib.Path({marker!r}).touch()
    return submit(statement_set, claim)
def probed_cancel(job, *args, **kwargs):
    cancel(job, *args, **kwargs)
    cancelled.append(job.ended)
flink_job._submit, flink_job.RunningJob.cancel = probed_submit, probed_cancel
"""


@pytest.mark.slow
def test_an_interrupted_live_pipeline_stops_and_its_cell_run_again_is_exact(
    isolated, kernels, tmp_path
):
    kernel = kernels(isolated, "06_end_to_end.ipynb")
    assert kernel.run(SETUP).status == "ok"
    marker = tmp_path / "submitting"
    assert kernel.run(SUBMISSION_PROBE.format(marker=str(marker))).status == "ok"

    # 1. Interrupted while Flink takes the job (the writers already run).
    starting = kernel.submit(pipeline_cell(600))
    wait_for(marker.exists, "the job's submission", timeout=600)
    kernel.interrupt()
    reply = kernel.collect(starting)
    assert reply.ename == "KeyboardInterrupt", reply.shown
    assert "Interrupted while starting: what had started is stopped." in reply.stdout
    # The submission went on, and its job was cancelled once it existed; the lab held till then.
    wait_for(lambda: lock.holder(isolated) is None, "the job's cancellation", timeout=600)
    assert kernel.value("cancelled") == [True]
    restore = "flink_job._submit, flink_job.RunningJob.cancel = submit, cancel"
    assert kernel.run(restore).status == "ok"

    # 2. The same cell again, interrupted while the pipeline runs.
    running = kernel.submit(pipeline_cell(600))
    wait_for(lambda: output(isolated), "Flink's first output", timeout=600)
    kernel.interrupt()
    reply = kernel.collect(running)
    assert reply.ename == "KeyboardInterrupt"
    assert "Interrupted: stopping the live pipeline" in reply.stdout and "partial" in reply.stdout
    assert lock.holder(isolated) is None
    assert kernel.value("(live.partial, live.job.ended, live.simulation.running)") == (
        True, True, False,
    )  # fmt: skip
    assert lab_threads(kernel) == []
    stopped_at = classified(isolated)
    time.sleep(5)
    assert classified(isolated) == stopped_at  # no job goes on behind the student's back

    # 3. The same cell again, to its end: exact.
    reply = kernel.run(pipeline_cell(25), timeout=900)
    assert reply.status == "ok", reply.shown
    assert_exact(kernel)
    assert lock.holder(isolated) is None


JOB_CELL = """
pipeline.reset_data(settings)
job = flink.start_pipeline(settings, bounded=False)
live = pipeline.LiveSimulation(settings, sensors.Scenario(), speed=86400.0).start(seconds=4)
live.wait()
"""


@pytest.mark.slow
def test_notebook_03s_job_cell_run_again_replaces_its_running_job(isolated, kernels):
    kernel = kernels(isolated, "03_flink_sql.ipynb")
    assert kernel.run(SETUP).status == "ok"
    assert kernel.run(JOB_CELL, timeout=900).status == "ok"
    assert kernel.run("first_job = job").status == "ok"

    again = kernel.run(JOB_CELL, timeout=900)  # without job.cancel() in between
    assert again.status == "ok", again.shown
    assert "Stopping a live Flink job, which this notebook started earlier, first." in again.stdout
    assert kernel.value("(first_job.ended, job.ended)") == (True, False)
    sent = kernel.value("live.sent")
    wait_for(lambda: classified(isolated) >= sent, "Flink to classify every message")
    time.sleep(5)
    assert classified(isolated) == count(isolated, "input") == sent  # one job, not two

    assert kernel.run("job.cancel(); job.cancel()").status == "ok"  # twice is harmless
    assert lock.holder(isolated) is None


# --------------------------------------------------------------------------------------
# Restarted: nothing left behind
# --------------------------------------------------------------------------------------


def members(settings) -> dict[str, int]:
    """Members of the writers' and Flink's consumer groups, as Kafka describes them."""
    groups = [hbase.Writer(settings, kind).group for kind in hbase.TableKind] + ["labkit-flink"]
    client = kafka.admin(settings)  # kept while its futures are pending
    described = client.describe_consumer_groups(groups, request_timeout=30)
    return {group: len(future.result(timeout=60).members) for group, future in described.items()}


@pytest.mark.slow
def test_a_kernel_restarted_while_the_pipeline_runs_leaves_nothing_behind(isolated, kernels):
    kernel = kernels(isolated, "06_end_to_end.ipynb")
    assert kernel.run(SETUP).status == "ok"
    start = "live = pipeline.LivePipeline(settings, sensors.Scenario(seed=6), speed=86400.0)"
    assert kernel.run(f"{start}.start()", timeout=900).status == "ok"
    wait_for(lambda: output(isolated), "Flink's first output", timeout=600)
    old = psutil.Process(kernel.pid)
    jvms = kernel.jvms()  # PyFlink's gateway, which hosts Flink's mini-cluster
    assert jvms
    threads = lab_threads(kernel, settle=0)
    assert "live-simulation" in threads and "hbase-writer-raw" in threads
    assert lock.holder(isolated).pid == kernel.pid

    restarted = time.monotonic()
    kernel.restart()
    _gone, alive = psutil.wait_procs([old, *jvms], timeout=120)
    print(f"\nkernel and JVM gone {time.monotonic() - restarted:.1f} s after the restart began")
    assert alive == []
    assert lock.holder(isolated) is None
    assert set(members(isolated).values()) == {0}
    assert kernel.pid != old.pid and lab_threads(kernel) == []
    # The lab is free at once for the new kernel.
    assert kernel.run(SETUP).status == "ok"
    assert kernel.run("lock.claim(settings, lock.LiveRun.PIPELINE).release()").status == "ok"


# --------------------------------------------------------------------------------------
# Run twice, and side by side
# --------------------------------------------------------------------------------------


def notebook_cells(name: str, **changes) -> list[str]:
    return code_cells(name, {**QUICK[name], "solutions": True, **changes})


@pytest.mark.slow
def test_the_same_notebook_run_twice_in_a_row_is_exact_both_times(isolated, kernels):
    kernel = kernels(isolated, "06_end_to_end.ipynb")
    for _run in range(2):  # "Run All", twice, in the same kernel
        replies = kernel.run_cells(notebook_cells("06_end_to_end.ipynb"))
        failed = [reply.shown for reply in replies if reply.status != "ok"]
        assert failed == []  # the notebook asserts that HBase equals the oracle
        assert kernel.value(EXACT_06) is True
    assert lock.holder(isolated) is None


@pytest.mark.slow
def test_two_notebooks_at_once_each_on_topics_of_its_own_both_exact(isolated, kernels):
    # 03 and 06 run their live jobs on sandboxes of their own: they share the lab.
    first = kernels(isolated, "06_end_to_end.ipynb")
    queued = [first.submit(cell) for cell in notebook_cells("06_end_to_end.ipynb")]
    second = kernels(isolated, "03_flink_sql.ipynb")
    replies = second.run_cells(notebook_cells("03_flink_sql.ipynb"))
    assert [reply.shown for reply in replies if reply.status != "ok"] == []
    finished = [first.collect(msg_id, timeout=900) for msg_id in queued]
    assert [reply.shown for reply in finished if reply.status != "ok"] == []
    assert first.value(EXACT_06) is True
    assert lock.holder(isolated) is None


def test_two_notebooks_live_on_the_same_topics_the_second_says_so(isolated, kernels):
    first = kernels(isolated, "01_sensors.ipynb")
    assert first.run(SETUP).status == "ok"
    running = first.submit(SIMULATION.format(seconds=30))
    held = wait_for(lambda: lock.holder(isolated), "notebook 01's live simulation")
    assert held.pid == first.pid

    second = kernels(isolated, "02_kafka.ipynb")
    assert second.run(SETUP).status == "ok"
    refused = second.run(SIMULATION.format(seconds=5))
    assert refused.ename == "LabInUseError", refused.shown
    message = refused.error["evalue"]
    assert f"notebook 01_sensors.ipynb (pid {first.pid})" in message
    assert "then run this again" in message
    assert "File " not in refused.shown  # words, not a traceback
    # The first goes on undisturbed: every message it counted is in Kafka.
    assert first.collect(running).status == "ok"
    assert count(isolated, "input") == first.value("live.sent")

    # As the message says: once the first has finished, the second runs.
    again = second.run(SIMULATION.format(seconds=5))
    assert again.status == "ok", again.shown
    assert lock.holder(isolated) is None


# --------------------------------------------------------------------------------------
# `make lab` again, and `labkit down` under a running notebook
# --------------------------------------------------------------------------------------


def make_lab(settings) -> subprocess.CompletedProcess:
    env = {**os.environ, **config.to_environment(settings)}
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(PROJECT_ROOT), "lab"],
        env=env, capture_output=True, text=True, timeout=1800, check=False,
    )  # fmt: skip


def snapshot(settings) -> dict:
    """The lab's processes and data: what `make lab` must leave as it found it."""
    return {
        "pids": {row.service: row.pid for row in services.status(settings)},
        "messages": {
            topic: kafka.message_count(settings, topic) for topic in settings.topics.all()
        },
        "rows": {kind: hbase.count_rows(settings, kind) for kind in hbase.TableKind},
    }


SERVED = (services.API, services.JUPYTER)


def test_make_lab_again_while_the_lab_is_up_changes_nothing(stack):
    already = {service: services.running_pid(service, stack) for service in SERVED}
    try:
        first = make_lab(stack)  # on an empty lab, this one fills it, as a first `make lab` does
        assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
        before = snapshot(stack)
        assert before["pids"]["api"] and before["pids"]["jupyter"] and before["rows"]["raw"]

        again = make_lab(stack)
        assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
        assert "no new run" in again.stdout
        assert services.JUPYTER.url(stack) in again.stdout
        assert snapshot(stack) == before

        with lock.claimed(stack, lock.LiveRun.PIPELINE):  # a notebook's live run, say
            during = make_lab(stack)
        assert during.returncode == 0 and "Live on the lab:" in during.stdout
        assert snapshot(stack) == before
    finally:
        for service, pid in already.items():
            if pid is None:
                services.stop(service, stack)


@pytest.mark.slow
def test_labkit_down_under_a_running_pipeline_stops_it_in_words_then_up_works(isolated, kernels):
    kernel = kernels(isolated, "06_end_to_end.ipynb")
    assert kernel.run(SETUP).status == "ok"
    running = kernel.submit(pipeline_cell(900))
    wait_for(lambda: output(isolated), "Flink's first output", timeout=600)
    try:
        down = labkit(isolated, "down")
        downed = time.monotonic()
        assert down.returncode == 0, down.stderr
        assert f"Live on the lab: notebook 06_end_to_end.ipynb (pid {kernel.pid})" in down.stdout
        between = status(isolated)
        assert {row["state"] for row in between["services"]} == {"stopped"}
        # The run notices, stops by itself, and lets the lab go.
        wait_for(lambda: status(isolated)["live_run"] is None, "the live run to stop", 60)
        print(f"\nthe run let the lab go {time.monotonic() - downed:.1f} s after `labkit down`")

        reply = kernel.collect(running)
        assert reply.ename == "LabDownError", reply.shown
        assert "`labkit up`" in reply.error["evalue"] and "partial" in reply.error["evalue"]
        assert "Traceback" not in reply.shown and "File " not in reply.shown
        print(f"the cell's output: {reply.shown}")
        assert kernel.value("(live.partial, live.job.ended)") == (True, True)
        assert lab_threads(kernel) == []
    finally:
        up = labkit(isolated, "up")
    assert up.returncode == 0, up.stdout + up.stderr
    stack = {service.name for service in services.STACK}
    after = status(isolated)["services"]
    assert {row["state"] for row in after if row["service"] in stack} == {"ready"}

    reply = kernel.run(pipeline_cell(25), timeout=900)  # the same cell again
    assert reply.status == "ok", reply.shown
    assert_exact(kernel)


@pytest.mark.slow
def test_labkit_down_stops_a_notebook_of_the_labs_jupyterlab_and_leaves_nothing(isolated):
    services.start(services.JUPYTER, isolated)
    services.wait_ready(services.JUPYTER, isolated, timeout=120)
    body = {"path": "06_end_to_end.ipynb", "name": "06_end_to_end.ipynb", "type": "notebook",
            "kernel": {"name": "python3"}}  # fmt: skip
    request = urllib.request.Request(
        f"http://127.0.0.1:{isolated.jupyter_port}/api/sessions",
        data=json.dumps(body).encode(), method="POST",
        headers={"Authorization": f"token {services.JUPYTER.token(isolated)}"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=60) as response:
        kernel_id = json.loads(response.read())["kernel"]["id"]
    connection = Path(jupyter_runtime_dir()) / f"kernel-{kernel_id}.json"
    kernel = Kernel.attach(wait_for(lambda: connection.exists() and connection, "its connection"))
    try:
        # The notebook works on this test's topics and tables.
        environ = config.to_environment(isolated)
        assert kernel.run(f"import os; os.environ.update({environ!r})\n{SETUP}").status == "ok"
        kernel.submit(pipeline_cell(900))
        wait_for(lambda: output(isolated), "Flink's first output", timeout=600)
        notebook = [psutil.Process(kernel.pid), *kernel.jvms()]
        assert len(notebook) > 1 and lock.holder(isolated).pid == kernel.pid

        down = labkit(isolated, "down")
        assert f"Live on the lab: notebook 06_end_to_end.ipynb (pid {kernel.pid})" in down.stdout
        _gone, alive = psutil.wait_procs(notebook, timeout=60)
        assert alive == [] and services.lab_processes(isolated) == []
        text = labkit(isolated, "status").stdout
        assert "live run: none" in text
        assert all(" stopped " in line for line in text.splitlines()[1:-1]), text
    finally:
        kernel.client.stop_channels()
        labkit(isolated, "up")
    assert lock.holder(isolated) is None
    lock.claim(isolated, lock.LiveRun.PIPELINE).release()  # nothing stale blocks the next run
