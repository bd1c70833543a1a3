"""The key under which the job's compiled plan is kept (no JVM): the same job over other
topics reuses the plan; another job, another start mode or other planner settings do not."""

import dataclasses

from labkit import config, sandbox
from labkit.flink import plans

SETTINGS = config.load({"LABKIT_KAFKA_PORT": "19092"})
PLANNER = {"table.local-time-zone": "UTC", "pipeline.name": "a job"}


def test_the_same_job_over_a_sandbox_or_another_broker_has_the_same_plan():
    key = plans.plan_key(PLANNER, SETTINGS, bounded=False)
    elsewhere = dataclasses.replace(sandbox.sandbox_settings(SETTINGS), kafka_port=29092)
    assert elsewhere.topics.input != SETTINGS.topics.input
    assert plans.plan_key(PLANNER, elsewhere, bounded=False) == key


def test_settings_outside_the_planner_do_not_change_the_plan():
    other = {**PLANNER, "pipeline.name": "another job", "parallelism.default": "2"}
    assert plans.plan_key(other, SETTINGS, False) == plans.plan_key(PLANNER, SETTINGS, False)


def test_a_bounded_job_planner_settings_and_other_sql_each_have_a_plan_of_their_own():
    key = plans.plan_key(PLANNER, SETTINGS, bounded=False)
    assert plans.plan_key(PLANNER, SETTINGS, bounded=True) != key
    utc_plus_one = {**PLANNER, "table.local-time-zone": "Europe/Paris"}
    assert plans.plan_key(utc_plus_one, SETTINGS, bounded=False) != key
    statements = plans.statements(SETTINGS, bounded=False)
    assert any("WATERMARK FOR ts" in statement for statement in statements)
    assert any(statement.startswith("INSERT INTO output_aggr") for statement in statements)


def test_only_the_place_of_the_data_is_left_out_of_the_key():
    source = plans.statements(SETTINGS, bounded=False)[0]
    masked = plans.without_places(source)
    assert "'topic' = '?'" in masked and "'properties.bootstrap.servers' = '?'" in masked
    assert "'scan.startup.mode' = 'group-offsets'" in masked
