"""labkit.exercises.answers: the value exercises know their answers and hint otherwise."""

from __future__ import annotations

from labkit import config
from labkit.exercises import Status, answers


def test_each_answer_is_right_only_when_it_is_the_answer():
    assert answers.th1_hourly(4).passed
    assert answers.th1_hourly(2).status is Status.WRONG
    assert answers.th1_hourly(None).status is Status.NOT_YET
    assert answers.mov1_max_delay_minutes(15).passed
    assert not answers.mov1_max_delay_minutes(14).passed
    assert answers.row_key("TH2#2024-01-02 06:30:00").passed
    assert not answers.row_key("TH2#2024-01-02 06:30").passed
    assert answers.window_of_last_second("2024-01-03").passed
    assert not answers.window_of_last_second("2024-01-04").passed
    assert answers.late_at_watermark(True).passed
    assert not answers.late_at_watermark(False).passed


def test_the_thrift_port_is_the_settings_own():
    settings = config.load({"LABKIT_HBASE_THRIFT_PORT": "19090"})
    assert answers.thrift_port(19090, settings).passed
    assert not answers.thrift_port(2183, settings).passed


def test_a_wrong_answer_gets_a_hint_and_no_answer():
    text = answers.th1_hourly(3).text()
    assert "Hint:" in text and "4" not in text
