"""Bad input on ``input`` never stops the pipeline and is never dropped silently.

A corpus of junk, of every kind the job's validation names, is mixed into simulated traffic in
one ordered stream, run through the real bounded pipeline (Kafka, the Flink job, the HBase
writers) and compared with the oracle over the valid messages alone. Each junk message's
expected reason follows from the order of the checks in ``labkit.flink.validation``;
junk whose time the source trusts moves the watermark, which the oracle follows through
``oracle.trusted_time``, itself compared here with the real Flink source on tricky examples.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest

from labkit import flink, hbase, kafka, oracle, sandbox, sensors
from labkit.flink import Reason

from .tables import table_rows

pytestmark = pytest.mark.slow

EPOCH = datetime(1970, 1, 1)
# Four days over a leap day: February 30 exists as junk, and Java reads it as the 29th.
SCENARIO = sensors.Scenario(days=4, start=datetime(2024, 2, 27), seed=11)
MAX_CHARS = flink.MAX_MESSAGE_CHARS


def _ms(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(milliseconds=1)


def _stamp(moment: datetime) -> str:
    """YYYY-MM-DD HH:MM:SS, also for years before 1000 (which strftime writes short)."""
    return moment.isoformat(sep=" ", timespec="seconds")


def _message(**fields: object) -> bytes:
    """A sensor-like message; a field given as ... is left out."""
    return json.dumps({k: v for k, v in fields.items() if v is not ...}).encode()


def _reading(at: datetime, **changes: object) -> bytes:
    """TH1's reading at ``at``, with some fields changed or (given as ...) left out."""
    fields = {"m_name": "TH1", "m_value": 21.5, "m_timestamp": _stamp(at)}
    return _message(**{**fields, **changes})


def _latin1(at: datetime) -> bytes:
    """A reading with its unit, "°C", encoded in Latin-1 rather than UTF-8."""
    fields = {"m_name": "TH1", "m_value": 21.5, "unit": "°C", "m_timestamp": _stamp(at)}
    return json.dumps(fields, ensure_ascii=False).encode("latin-1")


def _padded(at: datetime, pad: str, chars: int, sensor: str = "TH1") -> bytes:
    """TH1's reading with a ``note`` of ``pad`` characters, ``chars`` characters in all."""
    empty = json.dumps({**json.loads(_reading(at, m_name=sensor)), "note": ""})
    text = json.dumps({**json.loads(empty), "note": pad * (chars - len(empty))}, ensure_ascii=False)
    assert len(text) == chars
    return text.encode()


def _outside(sensor: sensors.Sensor) -> list[tuple[float, str]]:
    """Values just outside a sensor's physical range, with the reason the job gives them."""
    reason = flink.range_reason(sensor)
    values = []
    if math.isfinite(sensor.valid_min):
        values.append(sensor.valid_min - 0.5)
    if math.isfinite(sensor.valid_max):
        values.append(sensor.valid_max + 0.5)
    return [(value, reason) for value in values]


@dataclass(frozen=True)
class Junk:
    kind: str
    reason: str  # the reason the job must give it
    body: Callable[[datetime], bytes | None]  # the message, from its send time
    ahead: timedelta = timedelta(0)  # sent this far ahead of the traffic around it

    def sent(self, traffic_at: datetime) -> oracle.Sent:
        sent_at = traffic_at + self.ahead
        return oracle.Sent(self.body(sent_at), sent_at)


NOT_JSON = Reason.NOT_JSON_OBJECT
NOT_TIME = Reason.TIMESTAMP_MALFORMED
NAN = Reason.NAN_OR_INFINITY
UNKNOWN = Reason.UNKNOWN_SENSOR


def corpus() -> list[Junk]:
    """The junk, kind by kind: each message has exactly one thing wrong with it, and its reason
    is the first check of ``input_checked`` that it fails."""
    nan_value = "NaN", "Infinity", "-Infinity"
    junk = [
        # Empty, oversized, not UTF-8: checked first, whatever the rest.
        Junk("empty", Reason.EMPTY, lambda at: b""),
        Junk("spaces", Reason.EMPTY, lambda at: b"     "),
        Junk("tombstone (null value)", Reason.EMPTY, lambda at: None),
        Junk(
            "oversized reading",
            Reason.TOO_LONG,
            lambda at: _reading(at, note="x" * 5000),
        ),
        Junk("1,025 characters", Reason.TOO_LONG, lambda at: _padded(at, "x", 1025)),
        # Characters, not bytes (nor Java's UTF-16 units): 1,025 of them, 4 bytes each.
        Junk("1,025 characters in emoji", Reason.TOO_LONG, lambda at: _padded(at, "😀", 1025)),
        Junk(
            "100 kB of text",
            Reason.TOO_LONG,
            lambda at: b"a" * 100_000,
        ),
        Junk("Latin-1 text", Reason.NOT_UTF8, lambda at: _latin1(at)),
        Junk("a stray 0xFF", Reason.NOT_UTF8, lambda at: _reading(at).replace(b"TH1", b"TH\xff1")),
        Junk("cut UTF-8 sequence", Reason.NOT_UTF8, lambda at: b'{"m_name": "\xe2\x82"}'),
        Junk("UTF-16 surrogate", Reason.NOT_UTF8, lambda at: b'{"m_name": "\xed\xa0\x80"}'),
        Junk("binary", Reason.NOT_UTF8, lambda at: bytes(range(256))),
        # NaN and Infinity make the message invalid JSON: named before "not a JSON object".
        *(
            Junk(
                f"m_value {word}", NAN, lambda at, w=word: _reading(at).replace(b"21.5", w.encode())
            )
            for word in nan_value
        ),
        Junk("+Infinity", NAN, lambda at: _reading(at).replace(b"21.5", b"+Infinity")),
        Junk("NaN in another field", NAN, lambda at: _reading(at, spare=float("nan"))),
        # The reason is the parser's: these are cut short, whatever words they contain.
        Junk(
            "cut short, Infinity in the name",
            NOT_JSON,
            lambda at: _reading(at, m_name="Infinity")[:-1],
        ),
        Junk("cut short, NaN in a note", NOT_JSON, lambda at: _reading(at, note="NaN")[:-1]),
        Junk("malformed JSON", NOT_JSON, lambda at: _reading(at)[:-1]),
        Junk("single quotes", NOT_JSON, lambda at: _reading(at).replace(b'"', b"'")),
        Junk("trailing comma", NOT_JSON, lambda at: _reading(at)[:-1] + b", }"),
        Junk("byte order mark", NOT_JSON, lambda at: b"\xef\xbb\xbf" + _reading(at)),
        Junk("JSON array", NOT_JSON, lambda at: b"[" + _reading(at) + b"]"),
        Junk("JSON null", NOT_JSON, lambda at: b"null"),
        Junk("plain text", NOT_JSON, lambda at: b"TH1 21.5 at noon"),
        Junk("control characters", NOT_JSON, lambda at: b"\x00\x01\x02"),
        # TRIM removes spaces only: other white space is not empty, and not JSON either.
        Junk("tabs and newlines", NOT_JSON, lambda at: b" \t\n\r "),
        # Missing and mistyped fields, in the order of the checks.
        Junk("empty object", Reason.MISSING_NAME, lambda at: b"{}"),
        Junk("missing m_name", Reason.MISSING_NAME, lambda at: _reading(at, m_name=...)),
        # JSON_QUERY reads a JSON null as no value at all.
        Junk("null m_name", Reason.MISSING_NAME, lambda at: _reading(at, m_name=None)),
        Junk(
            "nested reading",
            Reason.MISSING_NAME,
            lambda at: _message(reading=json.loads(_reading(at))),
        ),
        Junk("missing m_value", Reason.MISSING_VALUE, lambda at: _reading(at, m_value=...)),
        Junk(
            "missing m_timestamp",
            Reason.MISSING_TIMESTAMP,
            lambda at: _reading(at, m_timestamp=...),
        ),
        Junk("m_name a number", Reason.NAME_NOT_STRING, lambda at: _reading(at, m_name=7)),
        Junk("unknown sensor", UNKNOWN, lambda at: _reading(at, m_name="TH9")),
        Junk("name in lower case", UNKNOWN, lambda at: _reading(at, m_name="th1")),
        Junk("SQL in the name", UNKNOWN, lambda at: _reading(at, m_name="TH1' OR '1'='1")),
        Junk("long name", UNKNOWN, lambda at: _reading(at, m_name="TH1" * 200)),
        Junk("m_value a string", Reason.VALUE_NOT_NUMBER, lambda at: _reading(at, m_value="21.5")),
        Junk("m_value a boolean", Reason.VALUE_NOT_NUMBER, lambda at: _reading(at, m_value=True)),
        Junk("m_value an object", Reason.VALUE_NOT_NUMBER, lambda at: _reading(at, m_value={})),
        # Not JSON numbers, so not JSON: the parser's verdict, even in the sensors' shape.
        Junk("m_value 1.2.3", NOT_JSON, lambda at: _reading(at).replace(b"21.5", b"1.2.3")),
        Junk("m_value 021.5", NOT_JSON, lambda at: _reading(at).replace(b"21.5", b"021.5")),
        Junk("m_value +21.5", NOT_JSON, lambda at: _reading(at).replace(b"21.5", b"+21.5")),
        # A control character must be escaped in a JSON string.
        Junk("a tab in the name", NOT_JSON, lambda at: _reading(at).replace(b"TH1", b"TH\t1")),
        Junk(
            "m_value 1e400",
            Reason.VALUE_NOT_FINITE,
            lambda at: _reading(at).replace(b"21.5", b"1e400"),
        ),
        Junk(
            "m_timestamp in epoch seconds",
            Reason.TIMESTAMP_NOT_STRING,
            lambda at: _reading(at, m_timestamp=_ms(at) // 1000),
        ),
        # Unparsable times: never trusted by the source, never moving the watermark.
        Junk("time in words", NOT_TIME, lambda at: _reading(at, m_timestamp="yesterday")),
        Junk("ISO time", NOT_TIME, lambda at: _reading(at, m_timestamp=at.isoformat())),
        Junk("time with a zone", NOT_TIME, lambda at: _reading(at, m_timestamp=_stamp(at) + "Z")),
        Junk("year 0", NOT_TIME, lambda at: _reading(at, m_timestamp="0000-06-01 00:00:00")),
        Junk("month 13", NOT_TIME, lambda at: _reading(at, m_timestamp=f"{at:%Y}-13-01 00:00:00")),
        Junk("day 32", NOT_TIME, lambda at: _reading(at, m_timestamp=f"{at:%Y-%m}-32 00:00:00")),
        Junk(
            "far in the future",
            Reason.TIMESTAMP_AFTER_SENDING,
            lambda at: _reading(at, m_timestamp="2099-01-01 00:00:00"),
        ),
        Junk(
            "a second after it was sent",
            Reason.TIMESTAMP_AFTER_SENDING,
            lambda at: _reading(at, m_timestamp=_stamp(at + timedelta(seconds=1))),
        ),
    ]
    for sensor in sensors.CATALOGUE:
        for value, reason in _outside(sensor):
            junk.append(
                Junk(f"{sensor.name} = {value:g}", reason,
                     lambda at, s=sensor.name, v=value: _reading(at, m_name=s, m_value=v))
            )  # fmt: skip
    return junk


@dataclass(frozen=True)
class Odd:
    """A valid reading in unusual text: the job must store it as the oracle expects."""

    kind: str
    sensor: str
    value: float
    body: Callable[[datetime], bytes]  # the message, from the time it was measured
    # When it was measured, from the time it is sent and the watermark then.
    measured: Callable[[datetime, datetime], datetime] = lambda at, _: at - timedelta(seconds=7)

    def sent(self, traffic_at: datetime, watermark: datetime) -> oracle.Sent:
        moment = self.measured(traffic_at, watermark)
        reading = sensors.Reading(self.sensor, self.value, moment, traffic_at)
        return oracle.Sent(self.body(moment), traffic_at, reading)


def _as_sent(sensor: str, value: float) -> Callable[[datetime], bytes]:
    """The message exactly as the sensors write it."""
    return lambda at: sensors.Reading(sensor, value, at, at).message()


def _odd_readings() -> list[Odd]:
    """Valid readings whose text or time is unusual. Each is measured 7 seconds before it is
    sent (on time), unless it was measured long ago (late)."""
    return [
        # -0.0 is 0: inside ranges that start at 0.
        Odd("W1 = -0.0", "W1", -0.0, _as_sent("W1", -0.0)),
        Odd("HVAC1 = -0", "HVAC1", -0.0,
            lambda at: _as_sent("HVAC1", 0.0)(at).replace(b"0.0", b"-0")),
        Odd("TH1 = 2.15e1", "TH1", 21.5,
            lambda at: _as_sent("TH1", 21.5)(at).replace(b"21.5", b"2.15e1")),
        Odd("no spaces", "TH2", 20.25,
            lambda at: _as_sent("TH2", 20.25)(at).replace(b": ", b":").replace(b", ", b",")),
        Odd("fields in another order", "MiAC1", 12.5,
            lambda at: _message(m_timestamp=_stamp(at), m_value=12.5, m_name="MiAC1")),
        Odd("name with a Unicode escape", "MiAC2", 7.0,
            lambda at: _as_sent("MiAC2", 7.0)(at).replace(b"MiAC2", b"MiAC\\u0032")),
        Odd("1,024 characters", "TH1", 21.5, lambda at: _padded(at, "x", 1024)),
        Odd("1,024 characters in emoji", "TH2", 21.5,
            lambda at: _padded(at, "😀", 1024, sensor="TH2")),
        # Measured long ago: late, and seconds behind the watermark beyond 32 bits.
        Odd("measured in 1969", "HVAC2", 50.0, _as_sent("HVAC2", 50.0),
            measured=lambda at, _: datetime(1969, 12, 31, 23, 59, 59)),
        Odd("measured in 1900", "TH1", 20.0, _as_sent("TH1", 20.0),
            measured=lambda at, _: datetime(1900, 1, 1)),
        Odd("measured in the year 1", "TH2", 20.0, _as_sent("TH2", 20.0),
            measured=lambda at, _: datetime(1, 1, 1)),
        # At the watermark: late; a second after it: on time.
        Odd("at the watermark", "MOV1", 1.0, _as_sent("MOV1", 1.0),
            measured=lambda at, watermark: watermark),
        Odd("a second after the watermark", "MOV1", 1.0, _as_sent("MOV1", 1.0),
            measured=lambda at, watermark: watermark + timedelta(seconds=1)),
    ]  # fmt: skip


# Junk whose time the source trusts, sent hours ahead of the traffic: each moves the watermark
# and makes the valid readings of the following hours late. (stream position, junk)
MOVERS = [
    (
        datetime(2024, 2, 28, 12, 0),
        Junk("unknown sensor, 3 h ahead", UNKNOWN,
             lambda at: _reading(at, m_name="TH0"), ahead=timedelta(hours=3)),
    ),
    (
        # Java reads February 30 as the month's last day: 06:00 on the 29th, before it was sent.
        datetime(2024, 2, 29, 4, 0),
        Junk("February 30, 3 h ahead", NOT_TIME,
             lambda at: _reading(at, m_timestamp="2024-02-30 06:00:00"), ahead=timedelta(hours=3)),
    ),
    (
        # Hour 29 of February 29 is, leniently, 05:00 on March 1.
        datetime(2024, 3, 1, 2, 0),
        Junk("hour 29, 4 h ahead", NOT_TIME,
             lambda at: _reading(at, m_timestamp="2024-02-29 29:00:00"), ahead=timedelta(hours=4)),
    ),
]  # fmt: skip


def mixed_stream() -> tuple[list[oracle.Sent], dict[int, Junk], dict[int, Odd]]:
    """Simulated readings with the corpus and the odd readings spread evenly among them and
    the movers at their times; each is sent at the time of the reading before it (junk plus
    its ``ahead``). Returns the stream in offset order, the junk and the odd readings by
    offset."""
    readings = list(sensors.simulate(SCENARIO))
    spread: list[Junk | Odd] = [*corpus(), *_odd_readings()]
    every = len(readings) // (len(spread) + 1)
    at_index = {(i + 1) * every: extra for i, extra in enumerate(spread)}
    for moment, junk in MOVERS:
        index = next(i for i, r in enumerate(readings) if r.sent_at > moment)
        at_index[index] = junk
    stream: list[oracle.Sent] = []
    junk_at: dict[int, Junk] = {}
    odd_at: dict[int, Odd] = {}
    newest = EPOCH  # the largest event time the source trusts so far

    def append(sent: oracle.Sent) -> None:
        nonlocal newest
        stream.append(sent)
        newest = max(newest, oracle.trusted_time(sent.body, sent.sent_at) or EPOCH)

    for index, reading in enumerate(readings):
        append(oracle.Sent(reading.message(), reading.sent_at, reading))
        extra = at_index.get(index)
        if isinstance(extra, Junk):
            junk_at[len(stream)] = extra
            append(extra.sent(reading.sent_at))
        elif isinstance(extra, Odd):
            odd_at[len(stream)] = extra
            append(extra.sent(reading.sent_at, newest - oracle.WATERMARK_DELAY))
    return stream, junk_at, odd_at


def produce(settings, stream: list[oracle.Sent]) -> int:
    """Send the stream to ``input`` in its order, stamped with the send times, as the
    simulator sends (readings keyed by their sensor)."""
    producer = kafka.BatchProducer(settings)
    for sent in stream:
        key = sent.reading.sensor.encode() if sent.reading else b"junk"
        producer.send(settings.topics.input, sent.body, key, _ms(sent.sent_at))
    producer.flush()
    return producer.sent


@dataclass
class Outcome:
    settings: object
    stream: list[oracle.Sent]
    junk_at: dict[int, Junk]
    odd_at: dict[int, Odd]
    produced: int
    expected: oracle.Expected


def run_mutated(settings, old: str, new: str) -> None:
    """The job, bounded, with one piece of its SQL (found exactly once in its source and
    views) replaced: a wrong rule, which the comparisons with the oracle must catch."""
    source, views = flink.source_table(settings, bounded=True), flink.views()
    assert sum(text.count(old) for text in (source, *views.values())) == 1, old
    env = flink.table_environment(settings)
    for table in (source.replace(old, new), *flink.sink_tables(settings)):
        env.execute_sql(table)
    for name, select in views.items():
        env.create_temporary_view(name, env.sql_query(select.replace(old, new)))
    statements = env.create_statement_set()
    for insert in flink.inserts().values():
        statements.add_insert_sql(insert)
    flink.RunningJob(statements.execute()).wait()


@contextlib.contextmanager
def run_stream(stack, mutation: tuple[str, str] | None = None) -> Iterator[Outcome]:
    """One bounded run of the mixed stream: produce, the Flink job (as it is, or with a
    mutation), the writers drained."""
    with sandbox.sandbox(stack, "t") as settings:
        stream, junk_at, odd_at = mixed_stream()
        produced = produce(settings, stream)
        writers = hbase.Writers(settings).start()
        try:
            if mutation is None:
                flink.run_bounded(settings)
            else:
                run_mutated(settings, *mutation)
            writers.finish()
        finally:
            writers.shutdown()
        expected = oracle.expected(oracle.sent_frame(stream))
        yield Outcome(settings, stream, junk_at, odd_at, produced, expected)


@pytest.fixture(scope="module")
def outcome(stack):
    with run_stream(stack) as ran:
        yield ran


# The comparisons with the oracle: what differs ({} when nothing does).


def raw_differences(outcome: Outcome) -> dict:
    wanted = {
        f"{r.sensor}#{_stamp(r.timestamp)}".encode(): repr(r.value).encode()
        for r in outcome.expected.raw.itertuples()
    }
    got = {key: row[b"d:value"] for key, row in table_rows(outcome.settings, "raw").items()}
    return {key: (got.get(key), wanted.get(key)) for key in got.keys() | wanted.keys()
            if got.get(key) != wanted.get(key)}  # fmt: skip


def late_differences(outcome: Outcome) -> dict:
    # Seconds behind the watermark and of delay too: from 1900 or the year 1, more than 32
    # bits hold.
    wanted = {
        f"{r.sensor}#{_stamp(r.timestamp)}#0-{r.offset:012d}".encode(): (
            repr(r.value), _stamp(r.watermark), str(r.behind_watermark_s), str(r.delay_s)
        )
        for r in outcome.expected.late.itertuples()
    }  # fmt: skip
    columns = (b"d:value", b"d:watermark", b"d:behind_watermark_s", b"d:delay_s")
    got = {
        key: tuple(row[column].decode() for column in columns)
        for key, row in table_rows(outcome.settings, "late").items()
    }
    return {key: (got.get(key), wanted.get(key)) for key in got.keys() | wanted.keys()
            if got.get(key) != wanted.get(key)}  # fmt: skip


def rollup_differences(outcome: Outcome) -> dict:
    wanted = {
        f"{r.sensor}#{r.resolution}#{_stamp(r.period_start)}".encode():
            (r.count, r.offset_sum, r.sum)
        for r in outcome.expected.rollups.itertuples()
    }  # fmt: skip
    got = {
        key: (int(row[b"d:count"]), int(row[b"d:offset_sum"]), float(row[b"d:sum"]))
        for key, row in table_rows(outcome.settings, "rollup").items()
    }
    return {
        key: (got.get(key), wanted.get(key))
        for key in got.keys() | wanted.keys()
        if got.get(key) is None or wanted.get(key) is None
        or got[key][:2] != wanted[key][:2]
        or not math.isclose(got[key][2], wanted[key][2], rel_tol=1e-9)
    }  # fmt: skip


def test_the_corpus_covers_every_reason_the_job_can_give():
    junk = corpus() + [junk for _, junk in MOVERS]
    assert len({j.kind for j in junk}) == len(junk) >= 12
    # The reasons are the texts the job's validation can give, each rule's Reason.
    assert {j.reason for j in junk} == set(flink.reasons())


def test_valid_plus_invalid_is_what_was_produced(outcome):
    junk = len(outcome.junk_at)
    valid = outcome.produced - junk
    counts = {kind: hbase.count_rows(outcome.settings, kind) for kind in ("raw", "late", "invalid")}
    assert outcome.produced == len(outcome.stream)
    assert (
        counts["raw"] + counts["late"]
        == valid
        == len(outcome.expected.raw) + len(outcome.expected.late)
    )
    assert counts["invalid"] == junk


def test_every_invalid_message_is_stored_with_its_reason(outcome):
    stored = table_rows(outcome.settings, "invalid")
    wanted = {}
    for offset, junk in outcome.junk_at.items():
        sent = outcome.stream[offset]
        wanted[f"input#{_stamp(sent.sent_at)}#0-{offset:012d}".encode()] = junk.reason
    got = {key: columns[b"d:reason"].decode() for key, columns in stored.items()}
    mismatched = {
        outcome.junk_at[int(key.rsplit(b"-", 1)[1])].kind: (got.get(key), reason)
        for key, reason in wanted.items()
        if got.get(key) != reason
    }
    assert not mismatched
    assert got.keys() == wanted.keys()


def test_invalid_rows_keep_the_message_and_its_length(outcome):
    stored = table_rows(outcome.settings, "invalid")
    for offset, junk in outcome.junk_at.items():
        sent = outcome.stream[offset]
        columns = stored[f"input#{_stamp(sent.sent_at)}#0-{offset:012d}".encode()]
        if sent.body is None:
            assert columns[b"d:message"] == b"", junk.kind
            assert columns[b"d:chars"] == b"0", junk.kind  # a number, as for any message
            continue
        try:
            text = sent.body.decode()
        except UnicodeDecodeError:
            # Java and Python replace bad bytes with different numbers of U+FFFD: compare the
            # rest, which must all be kept.
            kept = columns[b"d:message"].decode().replace("\ufffd", "")
            assert kept == sent.body.decode(errors="replace").replace("\ufffd", ""), junk.kind
            continue
        assert int(columns[b"d:chars"]) == len(text), junk.kind
        assert columns[b"d:message"].decode() == text[:MAX_CHARS], junk.kind


def test_raw_table_equals_the_oracle_over_the_valid_messages(outcome):
    assert not raw_differences(outcome)
    assert len(outcome.expected.raw) > 2000


def test_late_table_equals_the_oracle_over_the_valid_messages(outcome):
    assert not late_differences(outcome)
    assert len(outcome.expected.late) > 100


def test_odd_readings_are_stored_where_the_oracle_expects_them(outcome):
    raw = table_rows(outcome.settings, "raw")
    late = {key.rsplit(b"#", 1)[0]: columns for key, columns in table_rows(
        outcome.settings, "late").items()}  # fmt: skip
    misplaced = {}
    for offset, odd in outcome.odd_at.items():
        reading = outcome.stream[offset].reading
        key = f"{reading.sensor}#{_stamp(reading.timestamp)}".encode()
        where = "raw" if key in raw else "late" if key in late else "nowhere"
        stored = {"raw": raw, "late": late}.get(where, {}).get(key, {}).get(b"d:value")
        if where == "nowhere" or stored != repr(odd.value).encode():
            misplaced[odd.kind] = (where, stored)
    assert not misplaced
    # Those measured long ago are late, by more seconds than 32 bits hold.
    old = [o for o in outcome.odd_at.values() if o.measured(SCENARIO.start, EPOCH).year < 1970]
    assert len(old) == 3
    assert outcome.expected.late["delay_s"].max() > 2**31


def test_daily_aggregates_equal_the_oracle_over_the_valid_messages(outcome):
    stored = table_rows(outcome.settings, "daily")
    expected = outcome.expected.daily
    assert len(stored) == len(expected)
    for row in expected.itertuples():
        columns = stored[f"{row.metric}#{row.day}".encode()]
        assert columns[b"d:kind"].decode() == row.kind
        assert int(columns[b"d:readings"]) == row.readings, (row.metric, row.day)
        assert math.isclose(float(columns[b"d:value"]), row.value, rel_tol=1e-9), row


def test_rollups_equal_the_oracle_over_the_valid_messages(outcome):
    assert not rollup_differences(outcome)
    assert len(outcome.expected.rollups) > 500


# A wrong verdict on lateness is caught: the job run with one rule changed, the comparisons
# above find the difference. (Each runs the whole stream through the job again.)
MUTATIONS = {
    # On time at the watermark: the reading "at the watermark" goes to iot_raw.
    "the watermark itself on time": ("ts <= newest -", "ts < newest -"),
    # A verdict 14 minutes behind the newest time: MOV1 events 14-15 minutes behind are late.
    "a verdict of 14 minutes": (
        f"ts <= newest - INTERVAL '{flink.WATERMARK_DELAY_MINUTES}' MINUTE",
        "ts <= newest - INTERVAL '14' MINUTE",
    ),
    # The windows' watermark a day ahead of the verdict: windows drop readings called on time.
    "a watermark ahead of the verdict": (
        f"WATERMARK FOR ts AS ts - INTERVAL '{flink.WATERMARK_DELAY_MINUTES}' MINUTE",
        "WATERMARK FOR ts AS ts + INTERVAL '1' DAY",
    ),
}


@pytest.mark.parametrize("mutation", MUTATIONS, ids=list(MUTATIONS))
def test_a_wrong_verdict_on_lateness_is_caught(stack, mutation):
    with run_stream(stack, MUTATIONS[mutation]) as mutated:
        differences = {
            "raw": raw_differences(mutated),
            "late": late_differences(mutated),
            "rollups": rollup_differences(mutated),
        }
    if mutation == "a watermark ahead of the verdict":
        assert differences["rollups"], differences  # readings dropped from the windows
    else:
        assert differences["raw"] and differences["late"], differences


def test_junk_with_a_trusted_time_moved_the_watermark(outcome):
    # Without the movers' trusted times the oracle would expect fewer late readings: the
    # comparisons above hold only because the oracle follows the source's event time.
    untrusting = oracle.sent_frame(
        oracle.Sent(s.body if s.reading else None, s.sent_at, s.reading) for s in outcome.stream
    )
    baseline = oracle.expected(untrusting)
    moved = len(outcome.expected.late) - len(baseline.late)
    assert moved > 3 * 7  # three movers, each making hours of seven sensors' readings late
    assert set(outcome.expected.late["sensor"]) > {"W1"}


def test_a_reading_every_second_of_a_day_keeps_exact_sums_and_counts(stack):
    # 86,400 readings of one sensor in one day: the day's roll-up sums 3.7e9 seconds of
    # offsets, more than 32 bits hold.
    day = datetime(2024, 5, 1)
    readings = [
        sensors.Reading("TH2", 20.0 + second % 100 / 8, day + timedelta(seconds=second),
                        day + timedelta(seconds=second))
        for second in range(86_400)
    ]  # fmt: skip
    stream = [oracle.Sent(r.message(), r.sent_at, r) for r in readings]
    expected = oracle.expected(oracle.sent_frame(stream))
    assert expected.rollups["offset_sum"].max() > 2**31
    with sandbox.sandbox(stack, "t") as settings:
        produce(settings, stream)
        writers = hbase.Writers(settings, (hbase.TableKind.DAILY, hbase.TableKind.ROLLUP))
        writers.start()
        try:
            flink.run_bounded(settings)
            writers.finish()
        finally:
            writers.shutdown()
        rollups = table_rows(settings, "rollup")
        daily = table_rows(settings, "daily")
    assert len(rollups) == len(expected.rollups)
    for row in expected.rollups.itertuples():
        columns = rollups[f"{row.sensor}#{row.resolution}#{_stamp(row.period_start)}".encode()]
        assert int(columns[b"d:offset_sum"]) == row.offset_sum, row
        assert int(columns[b"d:count"]) == row.count, row
        assert math.isclose(float(columns[b"d:sum"]), row.sum, rel_tol=1e-9), row
    (only,) = expected.daily.itertuples()
    columns = daily[f"TH2#{only.day}".encode()]
    assert int(columns[b"d:readings"]) == only.readings == 86_400
    assert math.isclose(float(columns[b"d:value"]), only.value, rel_tol=1e-9)


# --------------------------------------------------------------------------------------
# The source's event time, on tricky examples: oracle.trusted_time against Flink itself
# --------------------------------------------------------------------------------------

SENT = datetime(2024, 3, 5, 12, 0, 0)


def _shaped(value: str, stamp: str, name: str = "TH1") -> bytes:
    return f'{{"m_name": "{name}", "m_value": {value}, "m_timestamp": "{stamp}"}}'.encode()


def _json_first(stamp: str, value: str = "20.5") -> bytes:
    """Not the sensors' shape (m_timestamp first): read through Flink's JSON functions."""
    return f'{{"m_timestamp": "{stamp}", "m_name": "TH1", "m_value": {value}}}'.encode()


# Fields given as one-element arrays: they must not pass for the string "TH1" or the number 20.5.
ARRAYS = {
    b'{"m_name": ["TH1"], "m_value": 20.5, "m_timestamp": "2024-03-05 11:00:00"}':
        Reason.NAME_NOT_STRING,
    b'{"m_name": "TH1", "m_value": [20.5], "m_timestamp": "2024-03-05 11:00:00"}':
        Reason.VALUE_NOT_NUMBER,
}  # fmt: skip


EXAMPLES: list[tuple[bytes | None, datetime]] = [
    *(
        (maker(stamp), SENT)
        for maker in (lambda s: _shaped("20.5", s), _json_first)
        for stamp in (
            "2024-03-05 11:00:00", "2024-02-30 11:00:00", "2023-02-29 11:00:00",
            "2024-04-31 11:00:00", "2024-03-04 24:00:00", "2024-03-04 24:00:01",
            "2024-03-04 23:59:60", "2024-03-04 23:60:00", "2024-03-01 99:99:99",
            "2024-02-30 25:00:00", "2024-13-01 00:00:00", "2024-00-10 00:00:00",
            "2024-01-32 00:00:00", "2024-01-00 00:00:00", "2099-03-05 11:00:00",
            "9999-12-31 24:00:00", "1900-01-01 00:00:00", "2024-03-05 11:00:00 ",
            "0001-01-01 00:00:00", "1969-12-31 23:59:59",
            "2024-03-05T11:00:00", "24-03-05 11:00:00", "\uff12024-03-05 11:00:00",
        )
    ),
    # Line ends: Java's "$" matches before one; TO_TIMESTAMP then trims it (or fails).
    *(
        (_shaped("20.5", "2024-03-05 11:00:00" + end), SENT)
        for end in ("\n", "\r\n", "\r", "\u2028", "\u0085", "\n\n", "\t")
    ),
    (_shaped("20.5", "2024-02-30 11:00:00\n"), SENT),
    (_shaped("20.5", "2024-03-05 11:00:00") + b"\n", SENT),
    (_shaped("20.5", "2024-03-05 11:00:00") + b"\r\n", SENT),
    (_shaped("20.5", "2024-03-05 11:00:00") + "\u2029".encode(), SENT),
    (b'{"m_name": "TH1", "m_value": 20.5, "m_timestamp": "2024-03-05 11:00:00\\n"}', SENT),
    (b'{"m_name": "TH1", "m_value": 20.5, "m_timestamp": "2024-03-05\\u002011:00:00"}', SENT),
    # Text in the sensors' shape but not JSON: numbers JSON does not allow, control characters
    # in a string. The parser decides, and refuses them.
    (_shaped("1.2.3", "2024-03-05 11:00:00"), SENT),
    (_shaped("020.5", "2024-03-05 11:00:00"), SENT),
    (_shaped("+20.5", "2024-03-05 11:00:00"), SENT),
    (_shaped("20.", "2024-03-05 11:00:00"), SENT),
    (_shaped("20.5", "2024-03-05 11:00:00", name="TH\t1"), SENT),
    (_shaped("20.5", "2024-03-05\t11:00:00"), SENT),
    (_shaped("1" * 1500, "2024-03-05 11:00:00"), SENT),
    (_json_first("2024-03-05 11:00:00", "1" * 1500), SENT),
    (_json_first("2024-03-05 11:00:00", "1" * 900), SENT),
    (_json_first("2024-03-05 11:00:00", "NaN"), SENT),
    (_json_first("2024-03-05 11:00:00", "1e400"), SENT),
    # Whatever follows the first JSON value is ignored; duplicate keys: the last one counts.
    (_json_first("2024-03-05 11:00:00") + b" trailing", SENT),
    (_json_first("2024-03-05 11:00:00") + b"}", SENT),
    (b"  \n" + _json_first("2024-03-05 11:00:00"), SENT),
    (b'{"m_timestamp": "2024-03-05 10:00:00", "m_timestamp": "2024-03-05 11:30:00"}', SENT),
    (b'{"m_timestamp": "2024-03-05 10:00:00", "m_timestamp": 5}', SENT),
    (b'{"m_timestamp": ["2024-03-05 11:00:00"]}', SENT),
    (b'{"m_timestamp": null}', SENT),
    (b"\xef\xbb\xbf" + _json_first("2024-03-05 11:00:00"), SENT),
    (b'{"m_timestamp": "2024-03-05 11:00:00", "x": /* comment */ 1}', SENT),
    (b"{'m_timestamp': '2024-03-05 11:00:00'}", SENT),
    # Bytes that are not UTF-8 around a good time, in both shapes.
    (_shaped("20.5", "2024-03-05 11:00:00").replace(b"TH1", b"TH\xff1"), SENT),
    (_json_first("2024-03-05 11:00:00").replace(b"TH1", b"\xc3("), SENT),
    (_json_first("2024-03-05 11:00:00".replace("11", "1\xff")), SENT),
    # Capped at the send time, to the millisecond.
    (_shaped("20.5", "2024-03-05 12:00:01"), SENT + timedelta(microseconds=250_999)),
    (_json_first("2024-03-05 12:00:00"), SENT - timedelta(milliseconds=1)),
    (b"", SENT),
    (None, SENT),
    (b"no json at all", SENT),
    *((body, SENT) for body in ARRAYS),
]  # fmt: skip


@pytest.fixture(scope="module")
def classified(stack):
    """Each example through the job's own source and views on the real Flink:
    {offset: (ts to the millisecond, problem, m_name, m_value, m_timestamp)}."""
    with sandbox.sandbox(stack, "t") as settings:
        produce(settings, [oracle.Sent(body, sent_at) for body, sent_at in EXAMPLES])
        env = flink.table_environment(settings)
        flink.declare(env, settings, bounded=True)
        query = env.sql_query(
            "SELECT kafka_offset, DATE_FORMAT(ts, 'yyyy-MM-dd HH:mm:ss.SSS'), problem, m_name, "
            "m_value, m_timestamp FROM input_checked"
        )
        with query.execute().collect() as rows:
            yield {row[0]: tuple(row[1:]) for row in rows}


def test_trusted_time_is_the_event_time_of_the_flink_source(classified):
    assert sorted(classified) == list(range(len(EXAMPLES)))
    differ = {}
    for offset, (body, sent_at) in enumerate(EXAMPLES):
        trusted = oracle.trusted_time(body, sent_at) or oracle.NO_TIME
        mine = trusted.isoformat(sep=" ", timespec="milliseconds")
        if classified[offset][0] != mine:
            differ[body] = (classified[offset][0], mine)
    assert not differ
    # The examples do reach every branch: the clipped day, the lenient overflow, the cap.
    times = {body: classified[offset][0] for offset, (body, _) in enumerate(EXAMPLES)}
    assert times[_shaped("20.5", "2024-02-30 11:00:00")] == "2024-02-29 11:00:00.000"
    assert times[_shaped("20.5", "2024-02-30 25:00:00")] == "2024-03-02 01:00:00.000"
    assert times[_shaped("20.5", "2099-03-05 11:00:00")] == "2024-03-05 12:00:00.000"


def _example_offset(body: bytes) -> int:
    return next(i for i, (b, _) in enumerate(EXAMPLES) if b == body)


def test_array_valued_fields_are_invalid(classified):
    problems = {body: classified[_example_offset(body)][1] for body in ARRAYS}
    assert problems == ARRAYS


def test_the_raw_writer_stores_every_reading_the_job_accepts(classified):
    accepted = 0
    for offset, (body, _sent_at) in enumerate(EXAMPLES):
        _ts, problem, name, value, stamp = classified[offset]
        if problem is not None:
            continue
        accepted += 1
        # What the raw writer gets: the message, unchanged, from output_raw.
        try:
            row = hbase.ROW_MAKERS[hbase.TableKind.RAW](body)
        except (ValueError, TypeError, KeyError) as error:
            pytest.fail(f"the raw writer dies on {body!r}: {error!r}")
        assert row == (f"{name}#{stamp}".encode(), {b"d:value": repr(value).encode()}), body
    assert accepted >= 10
