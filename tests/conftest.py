"""Every test is marked by where it lives: ``tests/unit`` (no services, no JVM: ``make check``)
or ``tests/integration`` (the real Kafka, HBase and Flink of the lab: ``make test``)."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        kind = Path(item.fspath).relative_to(HERE).parts[0]
        if kind in ("unit", "integration"):
            item.add_marker(kind)
