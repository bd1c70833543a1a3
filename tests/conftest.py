"""Shared fixtures: the tests run against the real Kafka, HBase and Flink of the lab."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import pytest

from labkit import config, hbase, kafka, sandbox, services
from labkit.config import Settings


@pytest.fixture(scope="session")
def settings() -> Settings:
    return config.settings()


@pytest.fixture(scope="session")
def stack(settings: Settings) -> Settings:
    """The lab's services, up and ready (started here when `make test` did not)."""
    services.up(settings, progress=lambda message: None)
    kafka.ensure_topics(settings)
    return settings


@pytest.fixture
def unique() -> str:
    """A short unique suffix, so that tests never share a topic, table or consumer group."""
    return uuid.uuid4().hex[:10]


@contextlib.contextmanager
def own_topics_and_tables(settings: Settings) -> Iterator[Settings]:
    """The lab's settings with topics and tables of a test's own, removed afterwards."""
    with sandbox.sandbox(settings, "t") as mine:
        yield mine


@pytest.fixture
def isolated(stack: Settings) -> Iterator[Settings]:
    """Settings whose topics and tables belong to this test alone."""
    with own_topics_and_tables(stack) as mine:
        yield mine


def table_rows(settings: Settings, kind: str) -> dict[bytes, dict[bytes, bytes]]:
    """Every row of one of the lab's tables (tests only: a full scan)."""
    connection = hbase.connect(settings)
    try:
        return dict(connection.table(hbase.table_name(settings, kind)).scan())
    finally:
        connection.close()
