"""The API's tests share one sandbox of tables filled once, and one server in a thread."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from labkit import api, sandbox
from labkit.config import Settings

from .helpers import Data, fill


@pytest.fixture(scope="package")
def data(stack: Settings) -> Iterator[Data]:
    with sandbox.sandbox(stack, "t") as mine:
        yield fill(mine)


@pytest.fixture(scope="package")
def url(data: Data) -> Iterator[str]:
    with api.start_in_thread(data.settings, port=0) as running:
        yield running.url
