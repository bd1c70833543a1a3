"""Late readings and invalid messages: as series, tables and annotations (simPod and
SimpleJSON)."""

from __future__ import annotations

from datetime import timedelta

from ...api_reference import (
    iso,
    ms,
    simpod_query,
    simpod_target,
)
from .helpers import (
    START,
    send,
)

# --------------------------------------------------------------------------------------
# Late and invalid data, annotations
# --------------------------------------------------------------------------------------


def test_late_readings_as_series_table_and_simpod_annotations(url, data):
    start, end = START, START + timedelta(days=2)
    inside = [row for row in data.late if start <= row["time"] <= end]
    assert 0 < len(inside) < len(data.late)
    targets = [
        simpod_target("W1_late", "A"),
        simpod_target("W1_late", "B", {"format": "table"}),
        {**simpod_target("W1_late", "Anno", {"format": "annotations"})},
    ]
    status, answer = send(url, "/query", simpod_query(targets, start, end, 1000))
    assert status == 200
    assert answer[0]["datapoints"] == [[row["value"], ms(row["time"])] for row in inside]
    assert [row[:3] for row in answer[1]["rows"]] == [
        [ms(row["time"]), row["value"], ms(row["sent_at"])] for row in inside
    ]
    annotations = answer[2]
    names = [column["text"] for column in annotations["columns"]]
    assert names == ["time", "timeEnd", "title", "text", "tags"]
    assert annotations["refId"] == "Anno"
    for row, event in zip(annotations["rows"], inside, strict=True):
        assert row[0] == row[1] == ms(event["time"])
        assert row[2] == "late W1 reading" and row[4] == "late,W1"
        assert f"{event['sent_at']:%Y-%m-%d %H:%M:%S}" in row[3]


def test_simplejson_annotations(url, data):
    annotation = {"name": "late", "datasource": "iotlab API", "enable": True,
                  "iconColor": "rgba(255, 96, 96, 1)", "query": "W1_late"}  # fmt: skip
    body = {
        "range": {"from": iso(START), "to": iso(START + timedelta(days=3)),
                  "raw": {"from": "now-3d", "to": "now"}},
        "rangeRaw": {"from": "now-3d", "to": "now"},
        "annotation": annotation,
    }  # fmt: skip
    status, events = send(url, "/annotations", body)
    assert status == 200 and len(events) == len(data.late)
    for event, row in zip(events, data.late, strict=True):
        assert event["annotation"] == annotation
        assert event["time"] == event["timeEnd"] == ms(row["time"])
        assert event["title"] and event["text"] and event["tags"] == ["late", "W1"]
    status, events = send(url, "/annotations", {**body, "annotation": {"query": "invalid"}})
    assert status == 200 and [e["time"] for e in events] == [
        ms(row["sent_at"]) for row in data.invalid
    ]
    assert events[0]["tags"] == ["invalid"] and data.invalid[0]["reason"] in events[0]["title"]


def test_invalid_messages_counted_per_bucket_and_listed(url, data):
    start, end = START, START + timedelta(days=2)
    targets = [simpod_target("invalid", "A"), simpod_target("invalid", "B", {"format": "table"})]
    status, answer = send(url, "/query", simpod_query(targets, start, end, 48))
    inside = [row for row in data.invalid if start <= row["sent_at"] <= end]
    span = ms(end) - ms(start) + 1
    counts: dict[int, int] = {}
    for row in inside:
        bucket = (ms(row["sent_at"]) - ms(start)) * 48 // span
        counts[bucket] = counts.get(bucket, 0) + 1
    assert status == 200
    assert answer[0]["datapoints"] == [
        [count, ms(start) + bucket * span // 48] for bucket, count in sorted(counts.items())
    ]
    assert answer[1]["rows"] == [
        [ms(row["sent_at"]), row["reason"], row["message"], len(row["message"])] for row in inside
    ]
