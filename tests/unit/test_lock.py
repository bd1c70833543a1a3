"""The lab's live-run lock: one process at a time, a stale lock never blocks, a cell run again
stops its earlier run. Real processes and a real lock file; no services."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from labkit import config, lock
from labkit.lock import LiveRun

HOLD = """
import sys, time
from labkit import config, lock
settings = config.settings()
claim = lock.claim(settings, lock.LiveRun.PIPELINE)
print("held", flush=True)
if sys.argv[1] == "exit-without-release":
    import os
    os._exit(0)
time.sleep(600)
"""


@pytest.fixture
def settings(tmp_path):
    return config.load({"LABKIT_HOME": str(tmp_path)})


@pytest.fixture
def other_process(settings) -> Iterator:
    """Start a process of its own that claims the lab's topics as notebook 06 would."""
    started: list[subprocess.Popen] = []

    def start(how: str = "hold") -> subprocess.Popen:
        env = {
            **os.environ,
            **config.to_environment(settings),
            "JPY_SESSION_NAME": "notebooks/06_end_to_end.ipynb",
        }
        process = subprocess.Popen(
            [sys.executable, "-c", HOLD, how], env=env, stdout=subprocess.PIPE, text=True
        )
        started.append(process)
        assert process.stdout is not None and process.stdout.readline().strip() == "held"
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(10)


def test_a_claim_names_its_holder_until_it_is_released(settings):
    assert lock.holder(settings) is None
    claim = lock.claim(settings, LiveRun.SENSORS)
    held = lock.holder(settings)
    assert held is not None
    assert (held.pid, held.runs) == (os.getpid(), (str(LiveRun.SENSORS),))
    claim.release()
    assert lock.holder(settings) is None and not lock.lock_path(settings).exists()


def test_a_second_process_is_refused_in_words_naming_the_holder(settings, other_process):
    holder = other_process()
    held = lock.holder(settings)
    assert held is not None and held.pid == holder.pid
    assert held.who == "notebook 06_end_to_end.ipynb"
    with pytest.raises(lock.LabInUseError) as refused:
        lock.claim(settings, LiveRun.SENSORS)
    message = str(refused.value)
    assert "notebook 06_end_to_end.ipynb" in message and f"pid {holder.pid}" in message
    assert str(LiveRun.PIPELINE) in message and "then run this again" in message
    # Another topic (a sandbox's) is not held.
    lock.claim(settings, LiveRun.SENSORS, topic="input_sandbox").release()


@pytest.mark.parametrize("how", ["killed", "exit-without-release"])
def test_a_lock_left_by_a_process_that_ended_blocks_nobody(settings, other_process, how):
    holder = other_process(how)
    if how == "killed":
        holder.send_signal(signal.SIGKILL)
    holder.wait(10)
    assert "06_end_to_end" in lock.lock_path(settings).read_text()  # its note is still there
    assert lock.holder(settings) is None
    claim = lock.claim(settings, LiveRun.PIPELINE)
    assert lock.holder(settings).pid == os.getpid()
    claim.release()


def test_a_released_lock_is_free_for_another_process(settings, other_process):
    lock.claim(settings, LiveRun.PIPELINE).release()
    holder = other_process()
    assert lock.holder(settings).pid == holder.pid


def _stopped_with(found: list) -> lock.Stop:
    return found.append


def test_a_new_run_stops_the_earlier_runs_of_this_process_it_collides_with(settings, capsys):
    stopped: dict[str, list] = {"sensors": [], "job": []}
    sensors = lock.claim(settings, LiveRun.SENSORS, _stopped_with(stopped["sensors"]))
    job = lock.claim(settings, LiveRun.FLINK_JOB, _stopped_with(stopped["job"]))
    assert stopped == {"sensors": [], "job": []}  # sensors and a job run side by side
    again = lock.claim(settings, LiveRun.SENSORS)  # the sensors' cell run again
    assert stopped == {"sensors": [None], "job": []} and sensors.released
    assert "Stopping the sensors (a live simulation)" in capsys.readouterr().out
    with lock.claimed(settings, LiveRun.RESET):  # a reset stops everything first
        assert stopped["job"] == [None] and job.released and again.released
    assert lock.holder(settings) is None


def test_a_lingering_claim_holds_until_its_work_is_done(settings, other_process):
    finish = threading.Event()
    claim = lock.claim(settings, LiveRun.FLINK_JOB)
    claim.linger(finish.wait, "test-linger")
    claim.release()
    assert lock.holder(settings) is not None  # released, but its work goes on
    waiter = threading.Thread(target=lambda: lock.claim(settings, LiveRun.FLINK_JOB).release())
    waiter.start()
    time.sleep(0.3)
    assert waiter.is_alive()  # the next job waits for it
    finish.set()
    waiter.join(5)
    assert not waiter.is_alive() and lock.holder(settings) is None


def test_the_lab_is_down_when_none_of_its_servers_runs(settings):
    assert lock.lab_down(settings)
    external = config.load({"LABKIT_HOME": str(settings.home), "LABKIT_MODE": "external"})
    assert not lock.lab_down(external)  # labkit does not run them: it cannot tell


def test_letting_go_after_a_reset_leaves_the_next_holders_lock_alone(settings, other_process):
    claim = lock.claim(settings, LiveRun.PIPELINE)
    lock.lock_path(settings).unlink()  # `labkit reset` wipes .lab/run
    holder = other_process()  # the lab is free: a new lock file
    claim.release()
    assert lock.holder(settings).pid == holder.pid
