"""Notebook 03's live view against the real Kafka and Flink: a slider moved while the job runs
changes the number of late readings the view counts; the runtime views read the job's REST
API."""

import shutil
import time

from labkit import flink, notebook, pipeline, sensors
from labkit.flink import runtime
from labkit.notebook import stream


def wait_for(condition, what: str, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


def test_a_late_event_slider_changes_the_late_readings_of_the_live_view(isolated):
    # No late events at first: W1 sends nothing stamped days ago, and nothing else is late.
    scenario = sensors.Scenario(seed=4, late_2d_every=0, late_10d_every=0)
    job = flink.start_pipeline(isolated, bounded=False)
    live = pipeline.LiveSimulation(isolated, scenario, speed=43200)
    panel = notebook.sensors.knob_panel(live)
    view = stream.LateView(isolated, live, panel, every=0.5).start(seconds=600)
    try:
        # Two simulated days through Flink, all on time.
        wait_for(lambda: view.samples and view.samples[-1].on_time > 2 * 96 * 7, "on-time rows")
        assert view.late == 0
        stream.knob(panel, "2-day").value = 1  # a 2-day-late W1 reading every tick
        wait_for(lambda: view.late > 0, "late readings after the slider moved")
        assert len(view.moves) == 1
        # The job graph and the task table come from the job's own REST API.
        tasks = runtime.running_job_graph(job)
        assert tasks[0].name.startswith("Source") and len(tasks) > 1
        assert any(task.window.startswith("TUMBLE 1 d") for task in tasks)
        assert set(runtime.task_table(job)["state"]) == {"RUNNING"}
        assert (runtime.wait_for_checkpoint(job)["status"] == "COMPLETED").any()
    finally:
        view.stop()
        job.cancel()
        shutil.rmtree(flink.checkpoint_dir(isolated), ignore_errors=True)
    assert all(control.disabled for control in stream.controls(panel))
    assert not live.running
