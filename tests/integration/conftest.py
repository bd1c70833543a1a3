"""Shared fixtures: the tests run against the real Kafka, HBase and Flink of the lab."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from labkit import config, kafka, sandbox, services
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


@pytest.fixture
def isolated(stack: Settings) -> Iterator[Settings]:
    """Settings whose topics and tables belong to this test alone."""
    with sandbox.sandbox(stack, "t") as mine:
        yield mine
