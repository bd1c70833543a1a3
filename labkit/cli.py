"""The ``labkit`` command: start, inspect and stop the lab."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from labkit import (
    api,
    bench,
    config,
    hbase,
    jvm,
    kafka,
    loadtest,
    lock,
    pipeline,
    sensors,
    services,
)
from labkit.dashboard import build, preview
from labkit.errors import LabkitError


def _up(args: argparse.Namespace) -> int:
    settings = config.settings()
    services.up(settings, flink_cluster=args.flink_cluster)
    created = kafka.ensure_topics(settings)
    topics = ", ".join(settings.topics.all())
    print(f"Topics: {topics}" + (f" (created {', '.join(created)})" if created else ""))
    if args.flink_cluster:
        print(f"Flink dashboard: http://{settings.flink_jobmanager} (for LABKIT_FLINK_MODE=remote)")
    print("The lab is up. `labkit status` shows it; `labkit down` stops it.")
    return 0


def _down(args: argparse.Namespace) -> int:
    settings = config.settings()
    live = lock.holder(settings)
    if live is not None:
        print(
            f"Live on the lab: {live.describe()}. It stops with the lab, and what it wrote until "
            "now is partial: run it again after `labkit up`."
        )
    services.down(settings)
    print("The lab is down.")
    return 0


def _status(args: argparse.Namespace) -> int:
    settings = config.settings()
    rows = services.status(settings)
    live = lock.holder(settings)
    if args.json:
        found = {
            "services": [{**row.__dict__, "state": row.state} for row in rows],
            "live_run": live.as_dict() if live else None,
        }
        print(json.dumps(found, indent=2))
    else:
        print(f"{'service':<9} {'state':<9} {'pid':>7}  ports")
        for row in rows:
            ports = ", ".join(f"{role} {port}" for role, port in row.ports.items()) or "-"
            print(f"{row.service:<9} {row.state:<9} {row.pid or '-':>7}  {ports}")
        print(f"live run: {live.describe() if live else 'none'}")
    stack = {service.name for service in services.STACK}
    return 0 if all(row.ready for row in rows if row.service in stack) else 3


def _logs(args: argparse.Namespace) -> int:
    service = services.by_name(args.service)
    print(services.log_tail(service, config.settings(), args.lines))
    return 0


def _reset(args: argparse.Namespace) -> int:
    if not args.yes:
        print("`labkit reset` stops the lab and deletes all its data; confirm with --yes.")
        return 2
    services.reset(config.settings())
    print("The lab's data is wiped; `labkit up` starts afresh.")
    return 0


def _jars(args: argparse.Namespace) -> int:
    settings = config.settings()
    jvm.ensure_jars(settings)
    print(f"Jars in {settings.jars_dir}")
    return 0


def _lab(args: argparse.Namespace) -> int:
    settings = config.settings()
    services.start(services.JUPYTER, settings)
    services.wait_ready(services.JUPYTER, settings, timeout=120)
    print(f"JupyterLab is running: {services.JUPYTER.url(settings)}")
    return 0


def _api(args: argparse.Namespace) -> int:
    settings = config.settings()
    if args.background:
        services.start(services.API, settings)
        services.wait_ready(services.API, settings, timeout=60)
        print(f"The API is running on {settings.api_url}; `labkit down` stops it.")
        return 0
    api.serve(settings, token=settings.api_token or None)
    return 0


def _bench(args: argparse.Namespace) -> int:
    settings = config.settings()
    services.up(settings, progress=lambda message: None)
    tiny = bench.BenchConfig(days=3, latency_samples=5, api_repeats=5, baseline_days=0.5)
    chosen = tiny if args.tiny else bench.BenchConfig(days=args.days)
    report = bench.run(settings, chosen)
    print(report.table())
    if args.json:
        with open(args.json, "w") as handle:
            handle.write(report.to_json() + "\n")
        print(f"Figures written to {args.json}")
    return 0


def _grafana_dashboard(args: argparse.Namespace) -> int:
    path = build.write(Path(args.output)) if args.output else build.write()
    print(f"Dashboard written to {path} (from the sensor catalogue, {build.UID}).")
    return 0


def _dashboard(args: argparse.Namespace) -> int:
    settings = config.settings()
    url = args.url or settings.api_url
    drawn = preview.collect(url, start=args.start, end=args.end, token=settings.api_token or None)
    path = drawn.save_png(args.png)
    empty = [data.title for data in drawn.panels if not data.has_data]
    print(
        f"A preview drawn from the dashboard's queries (not Grafana): {len(drawn.panels)} panels, "
        f"{drawn.span.raw_from} to {drawn.span.raw_to}, answered by {url}, written to {path}."
    )
    if empty:
        print(f"Without data in this range: {', '.join(empty)}.")
    return 0


def _loadtest(args: argparse.Namespace) -> int:
    settings = config.settings()
    services.up(settings, progress=lambda message: None)
    chosen = loadtest.LoadConfig(
        dashboards=args.dashboards,
        refresh_s=args.refresh,
        duration_s=args.seconds,
        days=args.days,
        live=args.live,
    )
    report = loadtest.run(settings, chosen)
    print(report.table())
    if args.json:
        with open(args.json, "w") as handle:
            handle.write(json.dumps(report.as_dict(), indent=2) + "\n")
        print(f"Figures written to {args.json}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    services.serve(services.by_name(args.service), config.settings())
    return 0  # not reached: serve() replaces this process


def _probe(args: argparse.Namespace) -> int:
    ready = services.by_name(args.service).is_ready(config.settings())
    print("ready" if ready else "not ready")
    return 0 if ready else 1


def _run(args: argparse.Namespace) -> int:
    settings = config.settings()
    live = lock.holder(settings) if args.if_empty else None
    if live is not None:
        print(f"Live on the lab: {live.describe()}. No new run meanwhile (--if-empty).")
        return 0
    if args.if_empty and pipeline.has_data(settings):
        print("HBase already holds readings: no new run (without --if-empty, a run starts afresh).")
        return 0
    scenario = sensors.Scenario(days=args.days, seed=args.seed)
    if not args.json:
        print(f"A fresh run of {args.days:g} simulated days (seed {args.seed}) through the lab.")
    summary = pipeline.run(settings, scenario, show=not args.json)
    print(summary.to_json() if args.json else summary)
    return 0


def _write(args: argparse.Namespace) -> int:
    """Run the HBase writers in the foreground (Ctrl-C stops them)."""
    settings = config.settings()
    writers = hbase.Writers(settings).start()
    try:
        if args.drain:
            stats = writers.finish()
        else:
            print("Writing Kafka -> HBase; Ctrl-C stops.")
            while True:
                writers.stop.wait(1.0)
                if writers.stop.is_set():
                    break
            stats = writers.shutdown()
    except KeyboardInterrupt:
        stats = writers.shutdown()
    for kind, stat in stats.items():
        print(f"{kind:<8} {stat.rows:>9,} rows in {stat.batches} batches ({stat.retries} retries)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="labkit", description="Run the iotlab IoT streaming lab (Kafka, Flink, HBase)."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Callable[[argparse.Namespace], int], text: str):
        sub = commands.add_parser(name, help=text, description=text)
        sub.set_defaults(handler=handler)
        return sub

    up = add("up", _up, "start Kafka, HBase and its Thrift server, and create the topics")
    up.add_argument(
        "--flink-cluster", action="store_true", help="also start a standalone Flink cluster"
    )
    add("down", _down, "stop every process of the lab")
    add("status", _status, "show each service, its pid, its ports and whether it is ready")
    commands.choices["status"].add_argument("--json", action="store_true", help="print JSON")
    logs = add("logs", _logs, "show the last lines of a service's log")
    logs.add_argument("service", help=f"one of: {services.names()}")
    logs.add_argument("-n", "--lines", type=int, default=40, help="how many lines (default 40)")
    reset = add("reset", _reset, "stop the lab and wipe its data (the jars stay)")
    reset.add_argument("--yes", action="store_true", help="confirm the wipe")
    add("jars", _jars, "download the servers' jars with Maven (done by `up` when needed)")
    add("lab", _lab, "start JupyterLab on notebooks/ and print its URL")
    run = add("run", _run, "simulate N days as fast as possible through Kafka, Flink and HBase")
    run.add_argument("--days", type=float, default=30, help="simulated days (default 30)")
    run.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    run.add_argument("--json", action="store_true", help="print the summary as JSON")
    run.add_argument(
        "--if-empty", action="store_true", help="only when HBase holds no readings yet"
    )
    write = add("write", _write, "copy the output topics into HBase (the writers)")
    write.add_argument("--drain", action="store_true", help="stop once the topics are copied")
    serve_api = add("api", _api, "serve HBase to Grafana over HTTP (labkit.api) until Ctrl-C")
    serve_api.add_argument("--background", action="store_true", help="run it detached")
    measure = add("bench", _bench, "benchmark the whole pipeline beside the original's pattern")
    measure.add_argument("--days", type=float, default=365, help="simulated days (default 365)")
    measure.add_argument("--tiny", action="store_true", help="a few seconds' run, to try it out")
    measure.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    board = add(
        "grafana-dashboard",
        _grafana_dashboard,
        "write Grafana's provisioned dashboard, generated from the sensor catalogue",
    )
    board.add_argument("--output", metavar="FILE", help="another file than the provisioned one")
    shown = add(
        "dashboard",
        _dashboard,
        "draw the Grafana dashboard's panels from its own queries to the API, as a PNG",
    )
    shown.add_argument("--png", metavar="FILE", required=True, help="the picture to write")
    shown.add_argument("--from", dest="start", metavar="TIME", help="range start (ISO 8601)")
    shown.add_argument("--to", dest="end", metavar="TIME", help="range end (ISO 8601)")
    shown.add_argument("--url", help="the API to ask (default: the lab's, LABKIT_API_PORT)")
    load = add("loadtest", _loadtest, "a classroom's dashboards refreshing against the API")
    load.add_argument("--dashboards", type=int, default=30, help="browsers (default 30)")
    load.add_argument("--refresh", type=float, default=5.0, help="seconds (default 5)")
    load.add_argument("--seconds", type=float, default=120.0, help="how long (default 120)")
    load.add_argument("--days", type=float, default=365, help="simulated days (default 365)")
    load.add_argument("--live", action="store_true", help="while a live pipeline writes")
    load.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    serve = add("serve", _serve, "run one service in the foreground (used in containers)")
    serve.add_argument("service", help=f"one of: {services.names()}")
    probe = add("probe", _probe, "exit 0 when a service answers through its client")
    probe.add_argument("service", help=f"one of: {services.names()}")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except LabkitError as error:
        print(f"labkit: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
