"""The same job on a standalone Flink cluster (`labkit up --flink-cluster`, `flink run -py`)."""

import dataclasses

import pytest

from labkit import config, oracle, pipeline, sandbox, sensors, services


@pytest.fixture(scope="module")
def flink_cluster(stack):
    """A JobManager and a TaskManager from PyFlink's own distribution, stopped afterwards."""
    services.up(stack, progress=lambda message: None, flink_cluster=True)
    yield dataclasses.replace(stack, flink_mode=config.FlinkMode.REMOTE)
    for service in services.FLINK_CLUSTER:
        services.stop(service, stack)


def test_the_job_submitted_to_a_flink_cluster_gives_the_oracles_counts(flink_cluster):
    scenario = sensors.Scenario(days=3, seed=5)
    expected = oracle.expected(oracle.messages_frame(sensors.simulate(scenario)))
    with sandbox.sandbox(flink_cluster, "t") as settings:
        summary = pipeline.run(settings, scenario, show=False)
    assert (summary.raw_rows, summary.late_rows, summary.daily_rows) == (
        len(expected.raw),
        len(expected.late),
        len(expected.daily),
    )
    assert summary.invalid_rows == 0
