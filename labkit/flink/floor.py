"""The floor the job is measured against: a plain copy of ``input`` to a topic of its own,
through the same Kafka source and sink connector as the job, with no logic.

``labkit bench`` runs it over the same input as the job and reports the job's time as a
multiple of the copy's: what parsing, validation, lateness and the windows cost on top of
reading and writing every message.
"""

from __future__ import annotations

from labkit.config import Settings
from labkit.flink import job, tables


def statements(settings: Settings, sink_topic: str) -> list[str]:
    """The copy, bounded: every message's key and value, unchanged."""
    source = tables.kafka_table(
        settings,
        "input_copy",
        settings.topics.input,
        ["k BYTES", "body BYTES"],
        value_format="raw",
        key="k",
        options={"scan.startup.mode": "earliest-offset", "scan.bounded.mode": "latest-offset"},
    )
    sink = tables.kafka_table(
        settings,
        "copied",
        sink_topic,
        ["k BYTES", "body BYTES"],
        value_format="raw",
        key="k",
        options=tables.SINK_OPTIONS,
    )
    return [source, sink, "INSERT INTO copied SELECT k, body FROM input_copy"]


def start_copy(settings: Settings, sink_topic: str) -> job.RunningJob:
    """Submit the copy to the local mini-cluster (wait for it with ``.wait()``)."""
    env = job.table_environment(settings)
    env.get_config().set("pipeline.name", "labkit copy floor")
    *tables_ddl, insert = statements(settings, sink_topic)
    for ddl in tables_ddl:
        env.execute_sql(ddl)
    return job.RunningJob(env.execute_sql(insert))
