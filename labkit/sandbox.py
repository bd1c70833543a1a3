"""Topics and tables of one's own: a sandbox beside the lab's data.

The tests, the benchmark and the notebooks' demos run the real pipeline on copies of the
lab's topics and tables under a unique suffix, so that the lab's own data stays untouched
and two of them never share anything.
"""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from collections.abc import Iterator

from labkit import hbase, kafka
from labkit.config import Settings, Topics


def sandbox_settings(settings: Settings, name: str = "demo") -> Settings:
    """The settings with topics and tables of a sandbox's own: ``pipeline.run`` fills them,
    ``remove`` deletes them; the lab's own data stays untouched."""
    suffix = f"{name}{uuid.uuid4().hex[:6]}"
    topics = Topics(*(f"{topic}_{suffix}" for topic in settings.topics.all()))
    prefix = f"{settings.hbase_table_prefix}_{suffix}"
    return dataclasses.replace(settings, topics=topics, hbase_table_prefix=prefix)


def remove(settings: Settings) -> None:
    """Delete the topics and tables of ``sandbox_settings``."""
    kafka.delete_topics(settings, settings.topics.all())
    hbase.drop_tables(settings)


@contextlib.contextmanager
def sandbox(settings: Settings, name: str = "demo") -> Iterator[Settings]:
    """``sandbox_settings`` with their topics and tables created, and removed afterwards."""
    mine = sandbox_settings(settings, name)
    kafka.ensure_topics(mine)
    hbase.ensure_tables(mine)
    try:
        yield mine
    finally:
        remove(mine)
