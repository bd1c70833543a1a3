"""Flink at run time, as the notebooks show it: queries run by hand, a job's graph, its plan,
its checkpoints.

A job runs as a graph of *tasks*: each task is a chain of operators that pass rows to each
other in one thread, and tasks exchange rows over the network, either one to one (FORWARD) or
partitioned by a key (HASH). Flink's REST API, which the mini-cluster of every job started by
``labkit.flink.job`` serves on a loopback port (``RunningJob.rest``), and a standalone cluster
on ``LABKIT_FLINK_JOBMANAGER``, describes that graph, each task's progress and the job's
checkpoints; ``EXPLAIN`` shows the plan the optimiser chose for a query.

``readings_table`` is the smallest streaming table over ``input``, a few lines of DDL, and
``collect`` runs a query over it to the end of what the topic holds, as a table.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from labkit.config import Settings
from labkit.errors import ServiceError
from labkit.flink.job import RunningJob
from labkit.flink.tables import WATERMARK_DELAY_MINUTES, kafka_table


def readings_table(settings: Settings, name: str = "readings") -> str:
    """``input`` as a plain JSON table with an event time and a watermark, read from its first
    message to those present now (then the query ends)."""
    return kafka_table(
        settings,
        name,
        settings.topics.input,
        [
            "m_name STRING",
            "m_value DOUBLE",
            "m_timestamp STRING",
            "ts AS TO_TIMESTAMP(m_timestamp)  -- the event time: when it was measured",
            f"WATERMARK FOR ts AS ts - INTERVAL '{WATERMARK_DELAY_MINUTES}' MINUTE",
        ],
        value_format="json",
        options={
            "scan.startup.mode": "earliest-offset",
            "scan.bounded.mode": "latest-offset",
            # A watermark after every message: the same result on every run.
            "scan.watermark.emit.strategy": "on-event",
            # Text that is not JSON is skipped (the lab's job routes it to input_invalid).
            "json.ignore-parse-errors": "true",
        },
    )


def collect(env: Any, query: str, limit: int = 100_000) -> pd.DataFrame:
    """Run ``query`` (over bounded tables) to its end; its final rows as a table.

    A query whose rows change as input arrives (a GROUP BY without a window) sends updates;
    they are applied, so the table holds each group's last row.
    """
    from pyflink.common import RowKind

    result = env.execute_sql(query)
    columns = result.get_resolved_schema().get_column_names()
    rows: list[tuple] = []
    with result.collect() as results:
        for row in results:
            values = tuple(row)
            if row.get_row_kind() in (RowKind.UPDATE_BEFORE, RowKind.DELETE):
                rows.remove(values)
            else:
                rows.append(values)
            if len(rows) > limit:
                raise ServiceError(f"the query returned more than {limit:,} rows")
    return pd.DataFrame(rows, columns=columns)


def rest(base: str, path: str, timeout: float = 10.0) -> Any:
    """GET ``path`` of a Flink REST API at ``base``, as JSON."""
    url = f"{base}{path}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return json.loads(response.read())
    except (OSError, ValueError) as error:
        raise ServiceError(
            f"Flink's REST API did not answer {url} ({error}): is the job still running? "
            "A job's mini-cluster and its REST API end with the job."
        ) from error


@dataclass(frozen=True)
class Task:
    """One vertex of a job graph: a chain of operators run by ``parallelism`` threads."""

    id: str
    operators: tuple[str, ...]  # in the order rows go through them
    parallelism: int
    inputs: tuple[tuple[str, str], ...]  # (task id, how rows are shipped: FORWARD, HASH...)
    window: str = ""  # the window it aggregates, if any: "TUMBLE 1 d by m_name"

    @property
    def name(self) -> str:
        """The chain's first operator: where rows enter the task."""
        return self.operators[0]


# "Source: input_messages[1]", "GlobalWindowAggregate[16]", "output_aggr[24]: Writer"
_ID = re.compile(r"\[\d+\]")


def operator_names(vertex_name: str) -> tuple[str, ...]:
    """The operators of a task from its vertex name (``A[1] -> B[2] -> (C[3], D[4])``)."""
    parts = re.split(r"\s*->\s*|\s*,\s*", vertex_name)
    names = (_ID.sub("", part).strip(" ()") for part in parts)
    return tuple(name for name in names if name)


def job_graph(plan: dict, names: dict[str, str] | None = None) -> list[Task]:
    """The tasks of a job from its plan (REST ``/jobs/<id>/plan``), sources first.

    ``names`` (vertex id -> name, from REST ``/jobs/<id>``) gives each task its operators;
    without it they come from the plan's descriptions.
    """
    tasks = []
    for node in plan["plan"]["nodes"]:
        name = (names or {}).get(node["id"]) or _description_names(node.get("description", ""))
        edges = node.get("inputs", [])
        inputs = tuple((edge["id"], edge.get("ship_strategy", "")) for edge in edges)
        window = window_of(node.get("description", ""))
        tasks.append(
            Task(node["id"], operator_names(name), int(node["parallelism"]), inputs, window)
        )
    return sorted(tasks, key=lambda task: (depth(tasks, task), task.name, task.window))


_WINDOW = re.compile(r"window=\[(\w+)\(.*?size=\[([^\]]+)\](?:, slide=\[([^\]]+)\])?")
_GROUP = re.compile(r"^\[\d+\]:\w+\(groupBy=\[([^\]]*)\]")


def window_of(description: str) -> str:
    """The window a task's first operator aggregates in, from its plan description."""
    first = re.split(r"<br/>", description)[0]
    found = _WINDOW.search(first)
    if not found:
        return ""
    kind, size, slide = found.groups()
    group = _GROUP.search(first)
    return " ".join(
        [kind, size, *([f"every {slide}"] if slide else []), *([f"by {group[1]}"] if group else [])]
    )


def _description_names(description: str) -> str:
    lines = re.split(r"<br/>|\n", description)
    return " -> ".join(re.sub(r"^[\s:+-]*\[\d+\]:", "", line).split("(")[0] for line in lines)


def depth(tasks: list[Task], task: Task) -> int:
    """How many exchanges lie between ``task`` and the job's sources."""
    by_id = {t.id: t for t in tasks}
    return max((depth(tasks, by_id[i]) + 1 for i, _ in task.inputs if i in by_id), default=0)


def running_job_graph(job: RunningJob) -> list[Task]:
    """The graph of a running job, from its cluster's REST API."""
    details = rest(job.rest, f"/jobs/{job.job_id}")
    names = {vertex["id"]: vertex["name"] for vertex in details["vertices"]}
    return job_graph(rest(job.rest, f"/jobs/{job.job_id}/plan"), names)


def task_table(job: RunningJob) -> pd.DataFrame:
    """Each task of a running job: its operators, parallelism, state, rows in and out."""
    details = rest(job.rest, f"/jobs/{job.job_id}")
    plan = rest(job.rest, f"/jobs/{job.job_id}/plan")
    windows = {node["id"]: window_of(node.get("description", "")) for node in plan["plan"]["nodes"]}
    rows = []
    for vertex in details["vertices"]:
        metrics = vertex.get("metrics", {})
        operators = operator_names(vertex["name"])
        rows.append(
            {
                "task": operators[0],
                "window": windows.get(vertex["id"], ""),
                "operators": len(operators),
                "parallelism": vertex["parallelism"],
                "state": vertex["status"],
                "rows in": metrics.get("read-records", 0),
                "rows out": metrics.get("write-records", 0),
            }
        )
    return pd.DataFrame(rows)


def checkpoints(job: RunningJob) -> pd.DataFrame:
    """The checkpoints of a running job, newest first (REST ``/jobs/<id>/checkpoints``)."""
    history = rest(job.rest, f"/jobs/{job.job_id}/checkpoints").get("history", [])
    return checkpoint_table(history)


def wait_for_checkpoint(job: RunningJob, timeout: float = 60.0) -> pd.DataFrame:
    """The job's checkpoints once at least one has completed."""
    deadline = time.monotonic() + timeout
    while True:
        table = checkpoints(job)
        if (table["status"] == "COMPLETED").any():
            return table
        if time.monotonic() > deadline:
            raise ServiceError(f"no checkpoint completed within {timeout:.0f} s")
        time.sleep(1)


def checkpoint_table(history: list[dict]) -> pd.DataFrame:
    """Checkpoints as REST reports them: id, status, when, how long, how much state."""
    rows = [
        {
            "checkpoint": entry["id"],
            "status": entry["status"],
            "triggered": pd.to_datetime(entry["trigger_timestamp"], unit="ms"),
            "took (ms)": entry.get("end_to_end_duration"),
            "state (bytes)": entry.get("checkpointed_size", entry.get("state_size")),
            "tasks acknowledged": f"{entry['num_acknowledged_subtasks']}/{entry['num_subtasks']}",
        }
        for entry in history
    ]
    columns = ["checkpoint", "status", "triggered", "took (ms)", "state (bytes)"]
    return pd.DataFrame(rows, columns=[*columns, "tasks acknowledged"])


def checkpoint_files(directory: Path) -> pd.DataFrame:
    """What a job's checkpoint directory holds: each complete ``chk-N``, its files and size."""
    rows = []
    for metadata in sorted(directory.glob("*/chk-*/_metadata")):
        checkpoint = metadata.parent
        files = [path for path in checkpoint.rglob("*") if path.is_file()]
        rows.append(
            {
                "directory": f"{checkpoint.parent.name[:8]}…/{checkpoint.name}",
                "files": len(files),
                "bytes": sum(path.stat().st_size for path in files),
                "written": pd.to_datetime(metadata.stat().st_mtime, unit="s").floor("s"),
            }
        )
    return pd.DataFrame(rows, columns=["directory", "files", "bytes", "written"])


def explain(env: Any, query: str) -> str:
    """The physical plan Flink's optimiser chose for ``query`` (the last part of EXPLAIN)."""
    text = env.explain_sql(query)
    marker = "== Optimized Execution Plan =="
    return text[text.index(marker) :].strip() if marker in text else text
