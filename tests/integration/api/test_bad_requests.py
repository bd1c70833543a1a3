"""Bad requests: 400 with a message, 413 over a mebibyte, and never a 5xx whatever the body
(fuzzed)."""

from __future__ import annotations

import http.client
import json
import urllib.parse
from datetime import datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from labkit import api

from ...api_reference import expected_names, iso
from .helpers import GOOD_RANGE, a_query, send

# --------------------------------------------------------------------------------------
# Bad requests: 400 with a message, 413, never a 500
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/query", b"{not json"),
        ("/query", b"\xff\xfe"),
        ("/query", b"[" * 50_000),
        ("/query", b"[1, 2]"),
        ("/query", b'"text"'),
        ("/query", a_query(range=None)),
        (
            "/query",
            a_query(range={"from": "2024-01-02T00:00:00Z", "to": "2024-01-01T00:00:00Z"}),
        ),
        ("/query", a_query(range={"from": "yesterday", "to": "2024-01-01T00:00:00Z"})),
        ("/query", a_query(range={"from": 1704067200000, "to": 1704153600000})),
        ("/query", a_query(range={"from": "2024-01-01T00:00:00Z"})),
        ("/query", a_query(maxDataPoints="many")),
        ("/query", a_query(maxDataPoints=0)),
        ("/query", a_query(maxDataPoints=-3)),
        ("/query", a_query(maxDataPoints=True)),
        ("/query", a_query(maxDataPoints=2.5)),
        ("/query", a_query(targets="TH1_raw")),
        ("/query", a_query(targets=None)),
        ("/query", a_query(targets=[42])),
        ("/query", a_query(targets=[{"target": 42}])),
        ("/query", a_query(targets=[{"target": "TH1_raw", "refId": 7}])),
        ("/query", a_query(targets=[{"target": "TH1_raw", "type": "graph"}])),
        ("/query", a_query(targets=[{"target": "TH1_raw", "payload": {"format": "pie"}}])),
        ("/query", a_query(targets=[{"target": "TH1_raw", "payload": {"source": "cache"}}])),
        ("/query", a_query(targets=[{"target": "TH1_raw", "payload": "{bad"}])),
        ("/query", a_query(targets=[{"target": "TH1_raw", "payload": [1]}])),
        (
            "/query",
            a_query(targets=[{"target": "TH1_raw", "payload": {"format": "annotations"}}]),
        ),
        ("/query", a_query(targets=[{"target": "TH1"}])),
        ("/query", a_query(targets=[{"target": "TH1_raw#2024"}])),
        ("/query", a_query(targets=[{"target": "(TH1_raw|nope)"}])),
        ("/query", a_query(targets=[{"target": "TH1_raw"}] * (api.MAX_METRICS_PER_QUERY + 1))),
        ("/search", {"target": ["TH1"]}),
        ("/search", [1]),
        ("/metrics", {"metric": 5}),
        ("/metrics", {"payload": "x"}),
        ("/metric-payload-options", {"metric": "nope", "name": "format"}),
        ("/variable", {"payload": 3}),
        ("/tag-keys", b"[]"),
        ("/annotations", {"range": GOOD_RANGE}),
        ("/annotations", {"range": GOOD_RANGE, "annotation": {"query": ""}}),
        ("/annotations", {"range": GOOD_RANGE, "annotation": {"query": "TH1_raw"}}),
        ("/annotations", {"range": GOOD_RANGE, "annotation": {"query": "nope_late"}}),
    ],
)
def test_bad_requests_get_400_with_a_message(url, path, body):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    status, answer = send(url, path, raw=raw)
    assert status == 400, answer
    assert isinstance(answer["message"], str) and answer["message"]


def test_unknown_metric_lists_the_valid_ones(url):
    status, answer = send(url, "/query", a_query(targets=[{"target": "TH3_raw"}]))
    assert status == 400 and "TH3_raw" in answer["message"]
    assert answer["metrics"] == expected_names()
    assert all(name in answer["message"] for name in expected_names())


def test_bodies_over_one_mebibyte_get_413(url):
    padded = json.dumps(a_query()).encode().ljust(api.MAX_BODY_BYTES)
    assert send(url, "/query", raw=padded)[0] == 200  # exactly the limit: served
    status, answer = send(url, "/query", raw=padded + b" ")
    assert status == 413 and "bytes" in answer["message"]
    # A chunked body carries no length: the API counts what it reads.
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.putrequest("POST", "/search")
        connection.putheader("Transfer-Encoding", "chunked")
        connection.endheaders()
        chunk = b" " * 65536
        for _ in range(api.MAX_BODY_BYTES // len(chunk) + 1):
            connection.send(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        connection.send(b"0\r\n\r\n")
        assert connection.getresponse().status == 413
    finally:
        connection.close()


# --------------------------------------------------------------------------------------
# Fuzzing: whatever the body, never a 5xx
# --------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                  max_size=3),
    max_leaves=12,
)  # fmt: skip
instants = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59))
times = st.one_of(instants.map(iso), instants.map(datetime.isoformat), st.text(max_size=25),
                  json_values)  # fmt: skip
names = st.one_of(
    st.sampled_from([*expected_names(), "", "select metric", "*", "TH1", "(TH1_raw|W1_late)",
                     "{W1_late,invalid}", "TH1_raw#x", "input", "../../hbase:meta"]),
    st.text(max_size=16),
    json_values,
)  # fmt: skip
payloads = st.one_of(
    st.fixed_dictionaries({}, optional={"format": st.sampled_from(
        ["timeseries", "table", "annotations", "timeserie", "pie"]) | json_values}),
    st.text(max_size=20),
    json_values,
)  # fmt: skip
targets = st.fixed_dictionaries(
    {"target": names},
    optional={"refId": st.text(max_size=3) | json_values, "hide": st.booleans() | json_values,
              "type": st.sampled_from(["timeserie", "table", "graph"]) | json_values,
              "payload": payloads, "data": payloads},
)  # fmt: skip
ranges = st.fixed_dictionaries({"from": times, "to": times}) | json_values
bodies = {
    "/query": st.fixed_dictionaries(
        {"range": ranges, "targets": st.lists(targets, max_size=3) | json_values},
        optional={"maxDataPoints": st.integers(-5, 10**15) | json_values},
    ) | json_values,
    "/annotations": st.fixed_dictionaries(
        {"range": ranges,
         "annotation": st.fixed_dictionaries({"query": names}, optional={"name": json_values})
         | json_values},
    ) | json_values,
    "/search": st.fixed_dictionaries({"target": names}) | json_values,
    "/metrics": st.fixed_dictionaries({}, optional={"metric": names, "payload": payloads})
    | json_values,
}  # fmt: skip


@pytest.mark.parametrize("path", sorted(bodies))
def test_fuzzed_bodies_never_get_a_5xx(url, path):
    @hypothesis_settings(
        max_examples=150,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(body=bodies[path], junk=st.binary(max_size=64))
    def check(body: Any, junk: bytes) -> None:
        status, _ = send(url, path, raw=json.dumps(body).encode())
        assert status < 500, body
        assert send(url, path, raw=junk)[0] < 500

    check()
