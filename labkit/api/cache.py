"""Answers kept for a moment: a classroom's dashboards ask the same questions.

Thirty browsers on the provisioned dashboard over the same time range send the same panel
queries several times a second between them. An answer computed less than ``TTL_S`` ago for
the same metric, format, source, window and ``maxDataPoints`` is served again, and a query
being computed right now is waited for rather than computed a second time. HBase then reads
each panel at most about once per ``TTL_S``, however many dashboards are open; the price is
that a new reading may show up to ``TTL_S`` later. At most ``ENTRIES`` answers are kept, the
least recently used going first, so the memory it takes stays bounded.

Kept answers are reused only while the API is busy (``labkit.api.shedding.busy``: a request
had to wait for a worker): a lone user, or the benchmark's live-latency probe, always gets
answers computed after its request arrived.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable

TTL_S = 1.0
ENTRIES = 128
# How long a query waits for the same query computed by another thread before computing it
# itself (HBase may be slow, or that thread may fail).
WAIT_S = 30.0


class AnswerCache:
    """Answers by key for ``ttl_s`` seconds, computed once when asked for at the same time."""

    def __init__(self, ttl_s: float = TTL_S, entries: int = ENTRIES) -> None:
        self.ttl_s = ttl_s
        self.entries = entries
        self._answers: OrderedDict[Hashable, tuple[float, dict]] = OrderedDict()
        self._computing: dict[Hashable, threading.Event] = {}
        self._lock = threading.Lock()

    def _fresh(self, key: Hashable) -> dict | None:
        kept = self._answers.get(key)
        if kept is None or kept[0] < time.monotonic():
            return None
        self._answers.move_to_end(key)
        return kept[1]

    def get(self, key: Hashable, compute: Callable[[], dict], reuse: bool = True) -> dict:
        """``compute()``'s answer, kept for ``ttl_s``; with ``reuse``, the answer kept for
        ``key`` if there is one. Either way, a query being computed right now is waited for."""
        with self._lock:
            answer = self._fresh(key) if reuse else None
            if answer is not None:
                return answer
            other = self._computing.get(key)
            if other is None:
                done = self._computing[key] = threading.Event()
        if other is not None:
            other.wait(WAIT_S)
            with self._lock:
                answer = self._fresh(key)
            return answer if answer is not None else compute()
        try:
            answer = compute()
            with self._lock:
                self._answers[key] = (time.monotonic() + self.ttl_s, answer)
                self._answers.move_to_end(key)
                while len(self._answers) > self.entries:
                    self._answers.popitem(last=False)
            return answer
        finally:
            with self._lock:
                del self._computing[key]
            done.set()
