"""The stream layer: one PyFlink job, in SQL only, built from the sensor catalogue.

The job reads every message of ``input`` as raw bytes and, in SQL:

1. parses and validates it (``parsing``, ``validation``): anything wrong goes to
   ``input_invalid`` with the first ``Reason`` it fails;
2. compares its event time with the watermark (``job_sql``): a valid reading behind the
   watermark goes to ``input_late``, with how late it was;
3. passes every valid on-time reading, unchanged, to ``output_raw``;
4. computes the daily aggregates and the roll-ups in event-time windows (``windows``).

``tables`` declares the Kafka tables it reads and writes; ``job`` runs it, on Flink's local
mini-cluster or on a Flink cluster (``LABKIT_FLINK_MODE=remote``).
"""

from labkit.flink.job import (
    RunningJob,
    checkpoint_dir,
    connector_jar,
    declare,
    flink_version,
    latest_checkpoint,
    run_bounded,
    start_pipeline,
    submit_remote,
    table_environment,
)
from labkit.flink.job_sql import inserts, views
from labkit.flink.tables import WATERMARK_DELAY_MINUTES, kafka_table, sink_tables, source_table
from labkit.flink.validation import MAX_MESSAGE_CHARS, Reason, range_reason, reasons

__all__ = [
    "MAX_MESSAGE_CHARS", "WATERMARK_DELAY_MINUTES", "Reason", "RunningJob", "checkpoint_dir",
    "connector_jar", "declare", "flink_version", "inserts", "kafka_table", "latest_checkpoint",
    "range_reason", "reasons", "run_bounded", "sink_tables", "source_table", "start_pipeline",
    "submit_remote", "table_environment", "views",
]  # fmt: skip
