"""Notebook 03's helpers without the services: the notebook's own input, the zoomed watermark,
the job graph from Flink's REST answers, checkpoints, the live view's knobs and curves."""

from datetime import datetime

import pandas as pd

from labkit import config, kafka, notebook, oracle, pipeline, sensors
from labkit.flink import runtime
from labkit.notebook import stream

SCENARIO = sensors.Scenario(seed=3)
TICKS, SENT, STRAGGLER = stream.notebook_messages(SCENARIO, days=2.5)
FRAME = oracle.with_watermark(oracle.sent_frame(SENT))


def test_the_straggler_is_late_for_the_lab_but_its_day_is_still_open():
    straggler = FRAME[FRAME["timestamp"] == STRAGGLER.timestamp].iloc[-1]
    assert straggler["valid"] and straggler["late"]
    # A daily window closes when the watermark passes midnight: not yet.
    next_midnight = STRAGGLER.timestamp.replace(hour=0, minute=0) + pd.Timedelta(days=1)
    assert FRAME["watermark"].max() < next_midnight
    assert FRAME["valid"].sum() == len(SENT) - 2  # the two junk messages
    assert TICKS == 240


def test_the_zooms_show_mov1_arriving_out_of_order_and_the_straggler():
    busiest, last = stream.zoom_windows(FRAME, hours=3)
    shown = FRAME[FRAME["offset"].between(*busiest)]
    assert shown["sent_at"].max() - shown["sent_at"].min() <= pd.Timedelta(hours=3)
    movements = shown[shown["sensor"] == "MOV1"]
    assert len(movements) >= 2
    assert (movements["timestamp"] < movements["sent_at"]).all()
    assert last[1] == FRAME["offset"].max()  # up to the straggler and the junk
    figure = stream.watermark_figure(FRAME, [busiest, last])
    left, right = figure.axes
    assert len(left.collections[1].get_offsets()) == len(movements[~movements["late"]])
    assert len(right.collections[2].get_offsets()) == 1  # the straggler, close to the line
    assert left.get_xlabel() and left.get_ylabel()


def test_counts_per_day_show_what_a_window_takes_and_what_the_lab_calls_late():
    counted = pd.DataFrame(
        {"m_name": ["TH1", "TH1"], "day": ["2024-01-01", "2024-01-03"], "readings": [96, 47]}
    )
    table = stream.window_counts(FRAME, counted, ("TH1",))
    last_day = table.loc[("TH1", STRAGGLER.timestamp.date())]
    # Half a day of readings and the straggler, which the lab's rule calls late.
    assert last_day["stamped that day"] == sensors.TICKS_PER_DAY // 2 + 1
    assert last_day["late by the lab's rule"] == 1
    assert table.loc[("TH1", pd.Timestamp("2024-01-02").date()), "counted by the window"] == 0


def test_the_watermark_line_trails_the_newest_event_time_by_fifteen_minutes():
    figure = stream.watermark_figure(FRAME)
    watermark, newest = figure.axes[0].lines[:2]
    assert len(watermark.get_ydata()) > 10
    gap = pd.Series(newest.get_ydata()) - pd.Series(watermark.get_ydata())
    assert (gap == pd.Timedelta(minutes=15)).all()


REST_PLAN = {
    "plan": {
        "nodes": [
            {"id": "sink", "parallelism": 1, "description": "out[4]: Writer",
             "inputs": [{"id": "agg", "ship_strategy": "FORWARD"}]},
            {"id": "agg", "parallelism": 1, "description":
                "[3]:GlobalWindowAggregate(groupBy=[m_name], window=[TUMBLE(slice_end=[$se], "
                "size=[1 d])], select=[m_name])<br/>+- [7]:Calc(select=[x])<br/>",
             "inputs": [{"id": "src", "ship_strategy": "HASH[m_name]"}]},
            {"id": "src", "parallelism": 1, "description": "Source: input_messages[1]"},
        ]
    }
}  # fmt: skip
NAMES = {
    "src": "Source: input_messages[1] -> Calc[2] -> (LocalWindowAggregate[5], raw[6]: Writer)",
    "agg": "GlobalWindowAggregate[3] -> Calc[7]",
    "sink": "out[4]: Writer -> out[4]: Committer",
}


def test_the_job_graph_lists_tasks_from_the_sources_with_their_chained_operators():
    tasks = runtime.job_graph(REST_PLAN, NAMES)
    assert [task.id for task in tasks] == ["src", "agg", "sink"]
    assert tasks[0].operators == (
        "Source: input_messages", "Calc", "LocalWindowAggregate", "raw: Writer"
    )  # fmt: skip
    assert tasks[1].inputs == (("src", "HASH[m_name]"),)
    assert [runtime.depth(tasks, task) for task in tasks] == [0, 1, 2]
    assert tasks[1].window == "TUMBLE 1 d by m_name" and tasks[0].window == ""
    assert runtime.job_graph(REST_PLAN)[1].operators == ("GlobalWindowAggregate", "Calc")
    assert runtime.window_of("[9]:GlobalWindowAggregate(window=[HOP(win_end=[$we], size=[2 d], "
                             "slide=[1 d])], select=[])") == "HOP 2 d every 1 d"  # fmt: skip


def test_the_job_graph_figure_has_a_box_per_task_and_an_arrow_per_exchange():
    figure = stream.job_graph_figure(runtime.job_graph(REST_PLAN, NAMES))
    axes = figure.axes[0]
    assert len(axes.patches) == 3  # the boxes
    assert len([text for text in axes.texts if getattr(text, "arrow_patch", None)]) == 2
    texts = [text.get_text() for text in axes.texts]
    assert "HASH" in texts and "FORWARD" in texts
    assert any("writes raw" in text and "parallelism 1" in text for text in texts)
    assert notebook.show(figure, "the graph", display=lambda *args, **kwargs: None) is None
    assert notebook.display.size(figure) >= 3


def test_checkpoints_from_rest_and_from_the_directory(tmp_path):
    history = [
        {"id": 2, "status": "COMPLETED", "trigger_timestamp": 1_700_000_010_000,
         "end_to_end_duration": 120, "checkpointed_size": 5000,
         "num_acknowledged_subtasks": 4, "num_subtasks": 4},
    ]  # fmt: skip
    table = runtime.checkpoint_table(history)
    assert table.loc[0, "checkpoint"] == 2 and table.loc[0, "tasks acknowledged"] == "4/4"
    assert runtime.checkpoint_table([]).empty
    done = tmp_path / "job1" / "chk-3"
    done.mkdir(parents=True)
    (done / "_metadata").write_bytes(b"x" * 10)
    (tmp_path / "job1" / "chk-4").mkdir()  # being written: no metadata yet
    files = runtime.checkpoint_files(tmp_path)
    assert list(files["directory"]) == ["job1…/chk-3"] and files.loc[0, "bytes"] == 10


def test_the_late_view_marks_every_slider_move_and_draws_the_late_count():
    live = pipeline.LiveSimulation(config.load({}), SCENARIO)  # not started: knobs only
    panel = notebook.sensors.knob_panel(live)
    view = stream.LateView(config.load({}), live, panel)
    moment = datetime(2024, 1, 1)
    view.samples += [stream.LateSample(0, moment, 0, 0, 0, 0),
                     stream.LateSample(5, moment, 900, 880, 3, 0)]  # fmt: skip
    stream.knob(panel, "2-day").value = 2
    assert live.scenario.late_2d_every == 2
    assert len(view.moves) == 1 and "20 → 2" in view.moves[0][1]
    figure = view.figure()
    late = figure.axes[1]
    assert list(late.lines[0].get_ydata()) == [0, 3]
    assert "late readings so far: 3" in figure.axes[0].get_title()


def test_late_rows_as_a_table():
    value = (
        b'{"m_name": "W1", "m_value": 0.5, "m_timestamp": "2024-01-01 10:00:00", '
        b'"sent_at": "2024-01-03 10:00:00", "watermark_at": "2024-01-03 09:30:00", '
        b'"behind_watermark_s": 171000, "delay_s": 172800}'
    )
    records = [kafka.Record("input_late", 0, 0, 0, b"W1", value)]
    table = stream.late_table(records)
    assert list(table.columns[:3]) == ["m_name", "m_value", "m_timestamp"]
    assert table.iloc[0]["behind_watermark_s"] == 171000
