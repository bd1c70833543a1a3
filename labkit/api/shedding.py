"""Shedding load: over its capacity the API answers 503 with ``Retry-After`` at once, rather
than letting requests queue until the browsers time out.

waitress parses requests in one thread and queues them for a few worker threads. When the
workers cannot keep up, the queue grows and every request waits longer. ``TimedDispatcher``
notes when each request was queued; ``Shedding`` answers a request that waited longer than
``MAX_QUEUE_WAIT_S`` for a worker with 503 and ``Retry-After: 1`` without reading HBase. A
request that is served therefore never waited more than that, and a shed one is answered
within about that time: Grafana shows the panel's error and refreshes it on its next cycle.
The health check (``GET /``) is never shed: the API is busy, not down.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import falcon
from waitress.task import ThreadedTaskDispatcher

from labkit.api.errors import ApiError

# How long a request may wait for a worker thread before it is shed.
MAX_QUEUE_WAIT_S = 1.0
# A request that waited longer than this for a worker found every worker busy.
BUSY_WAIT_S = 0.01
RETRY_AFTER_S = 1

# What the worker thread serving a request knows of it: how long it waited for the thread.
_serving = threading.local()


class _Timed:
    """A waitress task (a channel with requests to serve), stamped when it was queued."""

    def __init__(self, task: Any) -> None:
        self.task = task
        self.queued_at = time.monotonic()

    def service(self) -> None:
        _serving.waited_s = time.monotonic() - self.queued_at
        try:
            self.task.service()
        finally:
            _serving.waited_s = 0.0

    def cancel(self) -> None:
        self.task.cancel()


def busy() -> bool:
    """True when the request being served had to wait for a worker: the API is busy."""
    return getattr(_serving, "waited_s", 0.0) > BUSY_WAIT_S


class TimedDispatcher(ThreadedTaskDispatcher):
    """waitress's dispatcher (a queue and worker threads), noting each task's wait."""

    def add_task(self, task: Any) -> None:
        super().add_task(_Timed(task))


class Shedding:
    """Falcon middleware: 503 with Retry-After for a request that waited too long."""

    def __init__(self, max_wait_s: float = MAX_QUEUE_WAIT_S) -> None:
        self.max_wait_s = max_wait_s

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        waited = getattr(_serving, "waited_s", 0.0)
        if waited <= self.max_wait_s or (req.path == "/" and req.method in ("GET", "HEAD")):
            return
        raise ApiError(
            falcon.HTTP_503,
            f"The API is busy: this request waited {waited:.1f} s for a worker. "
            f"Retry in {RETRY_AFTER_S} s (Grafana does so on its next refresh).",
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )
