"""The job's compiled plan, kept between starts, so that a start skips Flink's optimiser.

Most of a Flink start in a fresh process is the planner parsing, validating and optimising the
job's SQL in a cold JVM (docs/benchmarks.md). What the optimiser produces, the *compiled plan*
(JSON), depends on the job's SQL and the planner's settings only: the tables are referred to by
name, and their Kafka options (topic, servers, group) are read again from the tables declared
when the plan runs. So the plan is compiled on the first start, kept in
``.lab/data/flink/plans/``, and every later start of the same job, over the lab's topics or a
sandbox's, runs it with ``EXECUTE PLAN``. A change to the SQL, to a ``table.*`` setting or
to Flink's version gives another key, hence a fresh plan.

A compiled plan also names every operator after its place in the plan, so a job restored from
a checkpoint finds its state again.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from labkit.config import Settings
from labkit.flink import job_sql, tables
from labkit.flink.sql import quote

log = logging.getLogger(__name__)

# Where the data is, which the plan does not depend on.
_WHERE_OPTIONS = ("topic", "properties.bootstrap.servers", "properties.group.id")
_WHERE = re.compile("'(" + "|".join(map(re.escape, _WHERE_OPTIONS)) + ")' = '(?:[^']|'')*'")


def statements(settings: Settings, bounded: bool) -> list[str]:
    """Every statement of the job: its tables' DDL, its views and its inserts."""
    return [
        tables.source_table(settings, bounded),
        *tables.sink_tables(settings),
        *(f"VIEW {name} AS {select}" for name, select in job_sql.views().items()),
        *job_sql.inserts().values(),
    ]


def plan_key(configuration: Mapping[str, str], settings: Settings, bounded: bool) -> str:
    """What the plan depends on: Flink's version, the planner's settings (``table.*`` of the
    TableEnvironment's ``configuration``), the job's SQL with the places of its data left out."""
    from pyflink.version import __version__

    planner = sorted((k, v) for k, v in configuration.items() if k.startswith("table."))
    sql = [without_places(statement) for statement in statements(settings, bounded)]
    digest = hashlib.sha256(repr((__version__, planner, sql)).encode())
    return digest.hexdigest()[:20]


def without_places(statement: str) -> str:
    """A statement with the places of its data (topic, servers, consumer group) left out."""
    return _WHERE.sub(r"'\1' = '?'", statement)


def plans_dir(settings: Settings) -> Path:
    return settings.data_dir / "flink" / "plans"


def stored_plan(settings: Settings, key: str) -> Path | None:
    path = plans_dir(settings) / f"{key}.json"
    return path if path.exists() else None


def execute_stored(env: Any, plan: Path) -> Any:
    """Run a stored plan in ``env`` (whose tables are declared); a TableResult."""
    return env.execute_sql(f"EXECUTE PLAN {quote(str(plan))}")


def discard(plan: Path, error: BaseException) -> None:
    """Forget a stored plan that Flink refused to run; the job is compiled again."""
    log.warning("The stored plan %s could not run, so it is compiled again: %s", plan, error)
    plan.unlink(missing_ok=True)


def compile_and_execute(statement_set: Any, settings: Settings, key: str) -> Any:
    """Compile a statement set into a plan, keep it under ``key``, and run it.

    Should Flink refuse to compile the job (some SQL has no JSON form), the statement set runs
    as it is and the next start optimises it again.
    """
    try:
        plan = statement_set.compile_plan()
    except Exception as error:  # noqa: BLE001 - Flink's TableException, through py4j
        log.warning("Flink could not compile the job's plan, so it is not kept: %s", error)
        return statement_set.execute()
    path = plans_dir(settings) / f"{key}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written beside, then renamed: a concurrent start never reads half a plan.
    partial = path.with_name(f"{key}.{os.getpid()}.partial")
    partial.unlink(missing_ok=True)
    plan.write_to_file(str(partial))
    partial.replace(path)
    return plan.execute()
