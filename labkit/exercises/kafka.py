"""Notebook 02's Build-it checks: the student's producer, consumer and lag, against the broker.

Each check gives the student's code a topic of its own (three partitions, deleted afterwards)
and compares what the code did or says with what the broker holds: the messages, their keys,
partitions and timestamps, the delivery reports, and a consumer group's committed offsets.
"""

from __future__ import annotations

import contextlib
import functools
import json
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from datetime import timedelta
from typing import Any

from confluent_kafka import Message, TopicPartition

from labkit import kafka, sensors
from labkit.config import Settings
from labkit.exercises.feedback import Checker, Verdict
from labkit.notebook.kafka import fresh_topic

# One simulated day (685 messages): every sensor sends, and 13 readings are sent after they
# were measured (MOV1's, the meters', four W1 readings two days late), so a measurement time
# passed off as the send time shows.
SCENARIO = sensors.Scenario(days=1, seed=2)
PARTITIONS = 3
# A student's function that has not returned by then is stuck (waiting for a message that
# never comes, say); the check answers rather than hang the notebook.
PATIENCE_S = 60.0


def readings() -> list[sensors.Reading]:
    """The readings the checks send: one simulated day."""
    return list(sensors.simulate(SCENARIO))


@contextlib.contextmanager
def scratch_topic(settings: Settings, what: str) -> Iterator[str]:
    """A new topic with three partitions, deleted afterwards."""
    topic = f"exercise02_{what}_{uuid.uuid4().hex[:8]}"
    fresh_topic(settings, topic, PARTITIONS)
    try:
        yield topic
    finally:
        kafka.delete_topics(settings, [topic])


def bounded(function: Callable[..., Any], seconds: float = PATIENCE_S) -> Callable[..., Any]:
    """``function``, run in a thread that the caller waits for at most ``seconds``; what it
    raises is raised again here (so the check can point at the student's line)."""

    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> Any:
        outcome: dict[str, Any] = {}

        def target() -> None:
            try:
                outcome["result"] = function(*args, **kwargs)
            except BaseException as error:  # noqa: BLE001 - raised again in the caller
                outcome["error"] = error

        thread = threading.Thread(target=target, name="exercise", daemon=True)
        thread.start()
        thread.join(seconds)
        if thread.is_alive():
            raise TimeoutError(f"it did not return within {seconds:.0f} s")
        if "error" in outcome:
            raise outcome["error"]
        return outcome["result"]

    return call


def _per_partition(answer: object) -> dict[int, object] | None:
    """A student's ``{partition: number}`` keyed by int (None when it is no such dict)."""
    if not isinstance(answer, Mapping):
        return None
    try:
        return {int(partition): value for partition, value in answer.items()}
    except (TypeError, ValueError):
        return None


def _sensor_of(record: kafka.Record) -> str | None:
    """The sensor a record's value names, or None when the value is not a reading's JSON."""
    try:
        value = json.loads(record.value or b"")
    except ValueError:
        return None
    return value.get("m_name") if isinstance(value, dict) else None


def _when(ms: int) -> str:
    return f"{sensors.EPOCH + timedelta(milliseconds=ms):%Y-%m-%d %H:%M:%S}"


# --------------------------------------------------------------------------------------
# 02.producer
# --------------------------------------------------------------------------------------

PRODUCER_HINT = (
    "a message's value, key and timestamp are all given to produce(). produce() only queues the "
    "message in the client: the broker's answer for each one comes back as a delivery report, "
    "handed to your callback only when the client is given time to serve it."
)


def producer(send_readings: Callable[..., Any], settings: Settings) -> Verdict:
    """Check ``send_readings(settings, topic, readings) -> {partition: confirmed}``."""
    sent = readings()
    with (
        Checker("02.producer", PRODUCER_HINT) as check,
        scratch_topic(settings, "producer") as topic,
    ):
        confirmed = check.run(bounded(send_readings), settings, topic, list(sent))
        stored = kafka.offsets(settings, topic)
        held = sum(p.messages for p in stored)
        check.require(
            held == len(sent),
            f"all {len(sent):,} messages reached the broker",
            f"the broker holds {held:,} of the {len(sent):,} messages your function was given: "
            "were they all delivered before it returned?",
        )
        records = kafka.peek(settings, topic, last=held)
        check.require(len(records) == held, "they read back", "the messages could not be read back")
        _check_messages(check, sent, records)
        per_partition = {p.partition: p.messages for p in stored if p.messages}
        counted = _per_partition(confirmed)
        check.expect(
            counted is not None and {p: n for p, n in counted.items() if n} == per_partition,
            f"your delivery reports count {per_partition} messages per partition, as the broker "
            "holds them",
            f"your function returned {confirmed!r}; the broker holds {per_partition} messages per "
            "partition (expected a dict {partition: messages confirmed by delivery reports})",
        )
    return check.verdict


def _check_messages(
    check: Checker, sent: list[sensors.Reading], records: list[kafka.Record]
) -> None:
    """Values, keys, partitions and timestamps of what arrived, against what was sent."""
    arrived: dict[str | None, list[kafka.Record]] = defaultdict(list)
    for record in records:  # in (partition, offset) order: each partition's order is kept
        arrived[_sensor_of(record)].append(record)
    unreadable = arrived.get(None, [])
    check.require(
        not unreadable,
        "every value is a reading's JSON",
        f"{len(unreadable):,} messages' values are not a reading's JSON "
        f"(e.g. {(unreadable[0].value or b'')[:80]!r}); send `reading.message()`"
        if unreadable
        else "",
    )
    expected: dict[str, list[sensors.Reading]] = defaultdict(list)
    for reading in sent:
        expected[reading.sensor].append(reading)

    wrong_keys = [r for name, mine in arrived.items() for r in mine if r.key != str(name).encode()]
    check.expect(
        not wrong_keys,
        "every message is keyed by its sensor's name",
        f"{len(wrong_keys):,} of {len(records):,} messages are not keyed by their sensor's name "
        f"(e.g. a {_sensor_of(wrong_keys[0])} reading has key {wrong_keys[0].key!r})"
        if wrong_keys
        else "",
    )
    spread = {name: sorted({r.partition for r in mine}) for name, mine in arrived.items()}
    scattered = {name: parts for name, parts in spread.items() if len(parts) > 1}
    homes = ", ".join(f"{name}→{parts[0]}" for name, parts in sorted(spread.items()) if name)
    check.expect(
        not scattered,
        f"each sensor's messages all landed in one partition ({homes})",
        f"some sensors' messages are spread over several partitions: {scattered}; Kafka keeps "
        "order only within a partition",
    )
    in_order = all(
        [json.loads(r.value or b"") for r in arrived.get(name, [])]
        == [json.loads(reading.message()) for reading in mine]
        for name, mine in expected.items()
    )
    check.expect(
        in_order,
        "each sensor's readings arrived complete, in the order they were sent",
        "some sensor's readings arrived incomplete or out of order (compare each sensor's "
        "messages, partition by partition, with the readings you were given)",
    )
    if not in_order:
        return
    stamps = [
        (reading, record)
        for name, mine in expected.items()
        for reading, record in zip(mine, arrived[name], strict=True)
        if record.timestamp_ms != reading.sent_at_ms
    ]
    # The most telling example: the reading sent longest after it was measured.
    example = max(stamps, key=lambda pair: pair[0].sent_at - pair[0].timestamp, default=None)
    check.expect(
        example is None,
        "every message carries the simulated time its sensor sent it as its timestamp",
        f"{len(stamps):,} of {len(records):,} messages carry another timestamp than the time "
        f"their sensor sent them: e.g. the {example[0].sensor} reading measured at "
        f"{example[0].timestamp} and sent at {example[0].sent_at} carries "
        f"{_when(example[1].timestamp_ms)}"
        if example
        else "",
    )


# --------------------------------------------------------------------------------------
# 02.consumer
# --------------------------------------------------------------------------------------

CONSUMER_HINT = (
    "a group remembers only what its members commit; and a group that has committed nothing "
    "starts where `auto.offset.reset` says."
)


def consumer(read_readings: Callable[..., Any], settings: Settings) -> Verdict:
    """Check ``read_readings(settings, topic, group, limit) -> [Message]``, called twice in
    one group: the second call must carry on where the first one's commit left off."""
    with (
        Checker("02.consumer", CONSUMER_HINT) as check,
        scratch_topic(settings, "consumer") as topic,
    ):
        kafka.produce_readings(settings, readings(), topic)
        low = {p.partition: p.low for p in kafka.offsets(settings, topic)}
        total = sum(p.messages for p in kafka.offsets(settings, topic))
        group = f"exercise02-consumer-{uuid.uuid4().hex[:8]}"
        read = bounded(read_readings)
        first_limit = total // 3

        first = _positions(check, "first", check.run(read, settings, topic, group, first_limit))
        check.require(
            len(first) == first_limit,
            f"the first call read {first_limit:,} messages, as asked",
            f"the first call returned {len(first):,} messages; it was asked for {first_limit:,} "
            f"(the topic holds {total:,})",
        )
        per_partition: dict[int, list[int]] = defaultdict(list)
        for partition, offset in first:
            per_partition[partition].append(offset)
        check.require(
            all(
                sorted(o) == list(range(low[p], low[p] + len(o))) for p, o in per_partition.items()
            ),
            "it started at the beginning of each partition, without gaps",
            "in some partition the messages read do not start at its first offset, or skip some: "
            f"offsets read per partition {_ranges(per_partition)}",
        )
        expected = {p: low[p] + len(o) for p, o in per_partition.items()}
        committed = {p.partition: p.committed for p in kafka.offsets(settings, topic, group)}
        committed = {p: offset for p, offset in committed.items() if offset is not None}
        check.require(
            committed == expected,
            f"the group committed what it read: next offsets {expected}",
            f"after the first call the broker holds the group's committed offsets "
            f"{committed or 'none'}; having read {_ranges(per_partition)}, it should have "
            f"committed {expected}",
        )

        second = _positions(
            check, "second", check.run(read, settings, topic, group, total - first_limit)
        )
        again = set(first) & set(second)
        check.require(
            not again,
            "the second call did not read again what the first one had committed",
            f"the second call read {len(again):,} messages the first one had already read and "
            "committed",
        )
        lag = sum(p.lag or 0 for p in kafka.offsets(settings, topic, group))
        check.expect(
            len(second) == total - first_limit and lag == 0,
            f"it carried on where the first stopped: together they read all {total:,} messages, "
            "and the group's lag is 0",
            f"the second call read {len(second):,} of the {total - first_limit:,} messages left; "
            f"the group's lag is {lag:,}",
        )
    return check.verdict


def _positions(check: Checker, call: str, messages: object) -> list[tuple[int, int]]:
    """(partition, offset) of each message the student's consumer returned."""
    check.require(
        isinstance(messages, list) and all(isinstance(m, Message) for m in messages),
        f"the {call} call returned a list of messages",
        f"expected the list of messages that consume() returned, got {str(messages)[:80]}",
    )
    return [(m.partition(), m.offset()) for m in messages]  # type: ignore[attr-defined]


def _ranges(offsets: Mapping[int, list[int]]) -> str:
    return (
        ", ".join(f"partition {p}: {min(o)}..{max(o)}" for p, o in sorted(offsets.items()) if o)
        or "nothing"
    )


# --------------------------------------------------------------------------------------
# 02.lag
# --------------------------------------------------------------------------------------

LAG_HINT = (
    "the lag of a partition is what the group still has to read there: from where it will "
    "start next time to the offset the next message will get. Where does it start in a "
    "partition in which it has committed nothing?"
)


def lag(lag_per_partition: Callable[..., Any], settings: Settings) -> Verdict:
    """Check ``lag_per_partition(settings, topic, group) -> {partition: lag}`` against the
    broker, for a group that has committed nothing, then a little, all and nothing in its
    three partitions."""
    with Checker("02.lag", LAG_HINT) as check, scratch_topic(settings, "lag") as topic:
        kafka.produce_readings(settings, readings(), topic)
        group = f"exercise02-lag-{uuid.uuid4().hex[:8]}"
        compute = bounded(lag_per_partition)
        answer = check.run(compute, settings, topic, group)
        _compare(check, answer, settings, topic, group, "a group that has committed nothing")

        partitions = kafka.offsets(settings, topic)
        halfway, complete = partitions[0], partitions[-1]
        _commit(
            settings,
            group,
            [
                TopicPartition(topic, halfway.partition, halfway.low + halfway.messages // 2),
                TopicPartition(topic, complete.partition, complete.high),
            ],
        )
        answer = check.run(compute, settings, topic, group)
        _compare(
            check,
            answer,
            settings,
            topic,
            group,
            f"a group that has read half of partition {halfway.partition}, all of partition "
            f"{complete.partition} and nothing of the others",
        )
    return check.verdict


def _commit(settings: Settings, group: str, offsets: list[TopicPartition]) -> None:
    """Commit ``offsets`` for ``group`` from outside it (the group has no members)."""
    committer = kafka.consumer(settings, group)
    try:
        committer.commit(offsets=offsets, asynchronous=False)
    finally:
        committer.close()


def _compare(
    check: Checker, answer: object, settings: Settings, topic: str, group: str, case: str
) -> None:
    broker = {p.partition: p.lag for p in kafka.offsets(settings, topic, group)}
    check.require(
        _per_partition(answer) == broker,
        f"for {case}, your lag per partition {broker} is the broker's",
        f"for {case}, your function returned {answer!r}; the broker's lag is {broker}",
    )
