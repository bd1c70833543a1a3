"""The job's SQL as text (no JVM): the Kafka table helper, the order of the validation rules,
and the range checks generated from the sensor catalogue."""

import math
import re

import pytest

from labkit import config, flink, sensors
from labkit.flink import validation
from labkit.flink.sql import double
from labkit.flink.validation import Reason

SETTINGS = config.load({"LABKIT_KAFKA_PORT": "19092"})


def test_a_keyed_json_table_takes_its_key_from_one_column_and_its_value_from_all():
    ddl = flink.kafka_table(
        SETTINGS, "out", "out_topic", ["k STRING", "v DOUBLE"], value_format="json", key="k",
        options={"sink.delivery-guarantee": "at-least-once"},
    )  # fmt: skip
    assert ddl == (
        "CREATE TEMPORARY TABLE out (\n"
        "  k STRING,\n"
        "  v DOUBLE\n"
        ") WITH (\n"
        "  'connector' = 'kafka',\n"
        "  'topic' = 'out_topic',\n"
        "  'properties.bootstrap.servers' = 'localhost:19092',\n"
        "  'key.format' = 'raw',\n"
        "  'key.fields' = 'k',\n"
        "  'value.format' = 'json',\n"
        "  'value.fields-include' = 'ALL',\n"
        "  'sink.delivery-guarantee' = 'at-least-once'\n"
        ")"
    )


def test_a_raw_value_leaves_the_key_out_and_a_table_without_key_has_one_format():
    raw = flink.kafka_table(SETTINGS, "t", "t", ["k STRING", "m STRING"], "raw", key="k")
    assert "'value.format' = 'raw',\n  'value.fields-include' = 'EXCEPT_KEY'\n)" in raw
    plain = flink.kafka_table(SETTINGS, "t", "t", ["m STRING"], "json")
    assert "'format' = 'json'\n)" in plain
    assert "key." not in plain


def test_commas_go_between_definitions_before_comments_and_never_after_the_last():
    ddl = flink.kafka_table(
        SETTINGS, "t", "t",
        ["a BYTES  -- the body", "-- a comment line", "b AS CASE\n  WHEN a IS NULL THEN 1\nEND",
         "WATERMARK FOR b AS b"],
        "raw",
    )  # fmt: skip
    body = ddl.split(") WITH (")[0]
    assert body == (
        "CREATE TEMPORARY TABLE t (\n"
        "  a BYTES,  -- the body\n"
        "  -- a comment line\n"
        "  b AS CASE\n"
        "    WHEN a IS NULL THEN 1\n"
        "  END,\n"
        "  WATERMARK FOR b AS b\n"
    )


def test_quotes_in_options_are_escaped():
    ddl = flink.kafka_table(SETTINGS, "t", "it's", ["m STRING"], "raw")
    assert "'topic' = 'it''s'" in ddl


def test_every_sink_writes_its_own_topic_at_least_once():
    ddls = flink.sink_tables(SETTINGS)
    names = [re.match(r"CREATE TEMPORARY TABLE (\w+) \(", ddl).group(1) for ddl in ddls]
    assert names == ["output_raw", "output_aggr", "input_late", "output_rollup", "input_invalid"]
    for name, ddl in zip(names, ddls, strict=True):
        assert f"'topic' = '{getattr(SETTINGS.topics, name)}'" in ddl
        assert "'sink.delivery-guarantee' = 'at-least-once'" in ddl


@pytest.mark.parametrize("bounded", [True, False])
def test_the_source_reads_raw_bytes_with_a_watermark(bounded):
    ddl = flink.source_table(SETTINGS, bounded)
    assert "'format' = 'raw'" in ddl
    assert f"WATERMARK FOR ts AS ts - INTERVAL '{flink.WATERMARK_DELAY_MINUTES}' MINUTE" in ddl
    assert ("'scan.bounded.mode' = 'latest-offset'" in ddl) is bounded
    assert ("'properties.group.id' = 'labkit-flink'" in ddl) is not bounded


def test_the_rules_are_checked_in_the_order_of_reason():
    fixed = [check.reason for check in validation.CHECKS]
    assert fixed == [reason for reason in Reason if reason is not Reason.OUT_OF_RANGE]
    # The CASE of input_checked returns them in that order, the ranges last.
    case = flink.views()["input_checked"]
    returned = re.findall(r"THEN '((?:[^']|'')*)'", case)
    assert returned == flink.reasons()
    assert flink.reasons()[: len(fixed)] == fixed


def test_range_checks_come_from_the_catalogue():
    checks = {check.reason: check.condition for check in validation.range_checks()}
    assert len(checks) == len(sensors.CATALOGUE)  # every sensor has a physical range
    for sensor in sensors.CATALOGUE:
        condition = checks[flink.range_reason(sensor)]
        assert condition.startswith(f"m_name = '{sensor.name}' AND (")
        # DOUBLE literals: against a DECIMAL (0.0) Flink would order -0.0 below 0.
        assert (f"m_value < {float(sensor.valid_min)!r}E0" in condition) == math.isfinite(
            sensor.valid_min
        )
        assert (f"m_value > {float(sensor.valid_max)!r}E0" in condition) == math.isfinite(
            sensor.valid_max
        )
    assert (
        flink.range_reason(sensors.SENSORS["TH1"]) == "m_value outside the range of TH1 (-40..85)"
    )
    assert flink.range_reason(sensors.SENSORS["Etot"]) == "m_value outside the range of Etot (0..∞)"


def test_inserts_name_what_they_produce():
    names = set(flink.inserts())
    assert {"raw", "late", "invalid", "daily_avg", "daily_sum"} <= names
    assert {f"rollup_{r}" for r in sensors.ROLLUP_PERIODS} <= names
    meters = [s.name.lower() for s in sensors.CATALOGUE if s.kind is sensors.SensorKind.METER]
    assert {f"{m}_{what}" for m in meters for what in ("diff", "rest")} <= names


def test_double_literals_are_in_exponent_form():
    assert [double(v) for v in (0.0, -40, 85.5, 1e-05, 1e300)] == [
        "0.0E0", "-40.0E0", "85.5E0", "1e-05", "1e+300",
    ]  # fmt: skip
    with pytest.raises(ValueError, match="no literal"):
        double(float("inf"))
