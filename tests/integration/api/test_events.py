"""Late readings and invalid messages: as series, tables and annotations (simPod and
SimpleJSON)."""

from __future__ import annotations

from datetime import timedelta

from labkit import api, hbase, sandbox

from ...api_reference import iso, ms, simpod_query, simpod_target
from .helpers import START, send

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


# --------------------------------------------------------------------------------------
# What Grafana sends: more events than maxDataPoints, annotation queries without a payload
# --------------------------------------------------------------------------------------


def test_event_tables_and_annotations_list_every_event_whatever_max_data_points(url, data):
    # Grafana sends a table panel's width, and an annotation query the window's, as
    # maxDataPoints: rows are not points, so none of the four late readings may be cut.
    start, end = START, START + timedelta(days=3)
    targets = [
        simpod_target("W1_late", "A", {"format": "table"}),
        simpod_target("W1_late", "B", {"format": "annotations"}),
        simpod_target("invalid", "C", {"format": "table"}),
    ]
    status, answer = send(url, "/query", simpod_query(targets, start, end, 2))
    assert status == 200
    assert [row[0] for row in answer[0]["rows"]] == [ms(row["time"]) for row in data.late]
    assert [row[0] for row in answer[1]["rows"]] == [ms(row["time"]) for row in data.late]
    assert [row[0] for row in answer[2]["rows"]] == [ms(row["sent_at"]) for row in data.invalid]
    assert all("meta" not in item for item in answer)  # nothing left out, nothing to say


def test_over_the_cap_the_newest_events_are_listed_and_the_answer_says_so(stack):
    count = api.MAX_EVENTS + 7
    sent = [START + timedelta(minutes=i) for i in range(count)]
    with sandbox.sandbox(stack, "t") as mine:
        with (
            hbase.connection(mine) as connection,
            connection.table(hbase.table_name(mine, "invalid")).batch() as batch,
        ):
            for offset, moment in enumerate(sent):
                key = f"input#{moment:%Y-%m-%d %H:%M:%S}#0-{offset:012d}"
                batch.put(key.encode(), {b"d:reason": b"empty message", b"d:message": b"",
                                         b"d:chars": b"0"})  # fmt: skip
        with api.start_in_thread(mine, port=0) as running:
            targets = [simpod_target("invalid", "A", {"format": "table"}),
                       simpod_target("invalid", "B", {"format": "annotations"})]  # fmt: skip
            body = simpod_query(targets, START, sent[-1], 1000)
            status, answer = send(running.url, "/query", body)
            annotation = {"name": "invalid", "query": "invalid"}
            span = {"from": iso(START), "to": iso(sent[-1])}
            legacy_status, legacy = send(running.url, "/annotations",
                                         {"range": span, "annotation": annotation})  # fmt: skip
    newest = [ms(moment) for moment in sent[-api.MAX_EVENTS :]]
    assert status == 200 and legacy_status == 200
    for item in answer:
        assert [row[0] for row in item["rows"]] == newest
        (notice,) = item["meta"]["notices"]
        assert notice["severity"] == "warning"
        assert f"newest {api.MAX_EVENTS:,}" in notice["text"] and "narrow" in notice["text"]
    assert [event["time"] for event in legacy] == newest


def annotation_query(targets: list[dict], start, end) -> dict:
    """An annotation query as Grafana's executeAnnotationQuery sends it through the simPod
    plugin: requestId AQ<n>, one target with refId "Anno", maxDataPoints the window's width."""
    body = simpod_query(targets, start, end, 1920)
    return {**body, "requestId": "AQ101", "app": "dashboard", "panelId": None}


def test_an_annotation_query_without_a_payload_gets_annotations(url, data):
    start, end = START, START + timedelta(days=3)
    for target in ({"refId": "Anno", "target": "W1_late", "payload": {}},
                   {"refId": "Anno", "target": "W1_late"}):  # fmt: skip
        status, answer = send(url, "/query", annotation_query([target], start, end))
        assert status == 200
        (events,) = answer
        names = [column["text"] for column in events["columns"]]
        assert names == ["time", "timeEnd", "title", "text", "tags"]
        assert [row[0] for row in events["rows"]] == [ms(row["time"]) for row in data.late]
    # A format the user chose is kept; a metric without events stays a time series.
    chosen = {"refId": "Anno", "target": "invalid", "payload": {"format": "table"}}
    _, answer = send(url, "/query", annotation_query([chosen], start, end))
    assert [c["text"] for c in answer[0]["columns"]] == ["time", "reason", "message", "chars"]
    raw = {"refId": "Anno", "target": "TH1_raw", "payload": {}}
    status, answer = send(url, "/query", annotation_query([raw], start, end))
    assert status == 200 and "datapoints" in answer[0]
    # A panel's target called "Anno" is not an annotation query.
    panel = {**simpod_target("W1_late", "Anno"), "payload": {}}
    _, answer = send(url, "/query", simpod_query([panel], start, end, 1000))
    assert "datapoints" in answer[0]
