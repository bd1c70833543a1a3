"""The job as a program: what ``flink run -py labkit/flink/__main__.py [--bounded]`` runs on
a Flink cluster's client (``job.submit_remote``); ``python -m labkit.flink`` runs it too. It
builds and executes the job from the LABKIT_* settings of its environment."""

import sys

if not __package__:
    # Run as a script (`flink run -py`), this file has its own directory first on sys.path,
    # where the package's modules (sql, tables, ...) would shadow top-level modules of the
    # same names. The package is found through PYTHONPATH instead.
    del sys.path[0]

import argparse

from labkit import config
from labkit.flink.job import start_pipeline


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="The labkit pipeline job")
    parser.add_argument("--bounded", action="store_true")
    args = parser.parse_args(argv)
    job = start_pipeline(config.settings(), bounded=args.bounded)
    if args.bounded:
        job.wait()


if __name__ == "__main__":
    main()
