"""The answer cache, directly: kept for its time, computed once when asked for at once,
bounded in size."""

from __future__ import annotations

import threading
import time

import pytest

from labkit.api.cache import AnswerCache


def test_an_answer_is_kept_for_its_time_then_computed_again():
    cache = AnswerCache(ttl_s=0.2)
    computed = []

    def compute() -> dict:
        computed.append(1)
        return {"n": len(computed)}

    assert cache.get("q", compute) == {"n": 1}
    assert cache.get("q", compute) == {"n": 1}
    assert cache.get("other", compute) == {"n": 2}
    time.sleep(0.3)
    assert cache.get("q", compute) == {"n": 3}


def test_the_same_query_asked_at_once_is_computed_once():
    cache = AnswerCache(ttl_s=60)
    started, release = threading.Event(), threading.Event()
    calls = []

    def slow() -> dict:
        calls.append(1)
        started.set()
        release.wait(10)
        return {"answer": 42}

    answers: list[dict] = []
    first = threading.Thread(target=lambda: answers.append(cache.get("q", slow)))
    first.start()
    started.wait(10)
    others = [threading.Thread(target=lambda: answers.append(cache.get("q", slow)))
              for _ in range(5)]  # fmt: skip
    for thread in others:
        thread.start()
    release.set()
    for thread in [first, *others]:
        thread.join(10)
    assert answers == [{"answer": 42}] * 6 and len(calls) == 1


def test_a_failed_computation_is_not_kept_and_its_waiters_compute_themselves():
    cache = AnswerCache(ttl_s=60)

    def fails() -> dict:
        raise RuntimeError("HBase away")

    with pytest.raises(RuntimeError):
        cache.get("q", fails)
    assert cache.get("q", lambda: {"ok": True}) == {"ok": True}


def test_the_least_recently_used_answers_go_first():
    cache = AnswerCache(ttl_s=60, entries=2)
    cache.get("a", lambda: {"v": "a"})
    cache.get("b", lambda: {"v": "b"})
    cache.get("a", lambda: {"v": "new a"})  # a hit: "a" is now the most recently used
    cache.get("c", lambda: {"v": "c"})  # "b" goes
    assert cache.get("a", lambda: {"v": "new a"}) == {"v": "a"}
    assert cache.get("b", lambda: {"v": "new b"}) == {"v": "new b"}


def test_without_reuse_a_kept_answer_is_computed_again():
    cache = AnswerCache(ttl_s=60)
    count = iter(range(1, 100))
    assert cache.get("q", lambda: {"n": next(count)}) == {"n": 1}
    assert cache.get("q", lambda: {"n": next(count)}, reuse=False) == {"n": 2}
    # ... and what it computed is kept for the next busy moment.
    assert cache.get("q", lambda: {"n": next(count)}) == {"n": 2}
