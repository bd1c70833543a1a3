"""The whole path, end to end: simulate -> Kafka -> Flink -> Kafka -> HBase.

``run`` is what ``labkit run --days N`` does: a fresh, bounded run of a simulation through every
layer, with progress bars and a summary of what landed where.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field

from tqdm.auto import tqdm

from labkit import flink, hbase, kafka, sensors
from labkit.config import Settings


@dataclass
class Summary:
    days: float
    events: int
    raw_rows: int
    daily_rows: int
    late_rows: int
    invalid_rows: int
    elapsed_s: float
    stages_s: dict[str, float] = field(default_factory=dict)

    @property
    def events_per_s(self) -> float:
        return self.events / self.elapsed_s if self.elapsed_s else 0.0

    def as_dict(self) -> dict:
        return {**asdict(self), "events_per_s": round(self.events_per_s, 1)}

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2)

    def __str__(self) -> str:
        stages = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in self.stages_s.items())
        return (
            f"Simulated {self.days:g} days: {self.events:,} events in {self.elapsed_s:.1f} s "
            f"({self.events_per_s:,.0f} events/s)\n"
            f"  HBase rows: raw {self.raw_rows:,}, daily {self.daily_rows:,}, "
            f"late {self.late_rows:,}, invalid {self.invalid_rows:,}\n"
            f"  stages: {stages}"
        )


def reset_data(settings: Settings) -> None:
    """Empty the pipeline's topics and tables, for a fresh run."""
    kafka.recreate_topics(settings)
    hbase.recreate_tables(settings)


def simulate_into_kafka(settings: Settings, scenario: sensors.Scenario, show: bool = True) -> int:
    """Send the scenario's messages to ``input`` as fast as possible; return how many."""
    with tqdm(
        total=round(scenario.days, 2), unit="day", desc="sensors -> Kafka", disable=not show
    ) as bar:

        def advance(sent: int, reading: sensors.Reading) -> None:
            done = (reading.sent_at - scenario.start).total_seconds() / 86400
            bar.n = round(min(done, scenario.days), 2)
            bar.set_postfix(events=f"{sent:,}")
            bar.refresh()

        return kafka.produce_readings(settings, sensors.simulate(scenario), on_progress=advance)


def _classified(settings: Settings) -> int:
    topics = settings.topics
    return sum(
        kafka.message_count(settings, topic)
        for topic in (topics.output_raw, topics.input_late, topics.input_invalid)
    )


def run(settings: Settings, scenario: sensors.Scenario, show: bool = True) -> Summary:
    """A fresh bounded run of ``scenario`` through every layer; returns what landed in HBase."""
    stages: dict[str, float] = {}
    started = time.monotonic()

    mark = time.monotonic()
    reset_data(settings)
    stages["reset"] = time.monotonic() - mark

    mark = time.monotonic()
    events = simulate_into_kafka(settings, scenario, show)
    stages["produce"] = time.monotonic() - mark

    # The writers copy Flink's output into HBase while the job is still running.
    writers = hbase.Writers(settings).start()
    try:
        mark = time.monotonic()
        desc = f"Flink job ({settings.flink_mode})"
        with tqdm(total=events, unit="msg", desc=desc, disable=not show) as bar:

            def poll() -> None:
                bar.n = _classified(settings)
                bar.refresh()

            flink.run_bounded(settings, poll if show else None)
        stages["flink"] = time.monotonic() - mark

        mark = time.monotonic()
        total = sum(
            kafka.message_count(settings, hbase.source_topic(settings, kind))
            for kind in hbase.TABLE_KINDS
        )
        with tqdm(total=total, unit="row", desc="Kafka -> HBase", disable=not show) as bar:
            writers.finish(on_progress=lambda rows: bar.update(rows - bar.n))
        stages["hbase"] = time.monotonic() - mark
    finally:
        writers.shutdown()

    elapsed = time.monotonic() - started
    rows = {kind: hbase.count_rows(settings, kind) for kind in hbase.TABLE_KINDS}
    return Summary(
        days=scenario.days,
        events=events,
        raw_rows=rows["raw"],
        daily_rows=rows["daily"],
        late_rows=rows["late"],
        invalid_rows=rows["invalid"],
        elapsed_s=elapsed,
        stages_s=stages,
    )
