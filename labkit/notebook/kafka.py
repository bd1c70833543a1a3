"""Notebook 02: topics, partitions, offsets and consumer groups, as tables."""

from __future__ import annotations

import json
from collections.abc import Iterable

import pandas as pd

from labkit import kafka
from labkit.config import Settings


def offsets_table(settings: Settings, topic: str, group: str | None = None) -> pd.DataFrame:
    """Per partition: the offsets a topic holds, and a consumer group's commit and lag."""
    rows = [
        {
            "partition": p.partition,
            "first offset": p.low,
            "next offset": p.high,
            "messages": p.messages,
            **({"committed": p.committed, "lag": p.lag} if group else {}),
        }
        for p in kafka.offsets(settings, topic, group)
    ]
    return pd.DataFrame(rows).set_index("partition")


def records_table(records: Iterable[kafka.Record]) -> pd.DataFrame:
    """Kafka records as a table, values decoded as text."""
    return pd.DataFrame(
        [
            {
                "partition": r.partition,
                "offset": r.offset,
                "key": r.key.decode(errors="replace") if r.key else None,
                "timestamp": pd.to_datetime(r.timestamp_ms, unit="ms"),
                "value": r.value.decode(errors="replace") if r.value else None,
            }
            for r in records
        ]
    )


def records_frame(records: Iterable[kafka.Record]) -> pd.DataFrame:
    """Kafka records whose values are JSON objects, one column per field."""
    return pd.DataFrame([json.loads(r.value) for r in records if r.value])


def topic_counts(settings: Settings) -> pd.DataFrame:
    """How many messages each of the lab's topics holds."""
    counts = {topic: kafka.message_count(settings, topic) for topic in settings.topics.all()}
    return pd.DataFrame([counts], index=["messages"])
