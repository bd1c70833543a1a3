"""The lab's own log file, ``.lab/logs/labkit.log``: what the lab's Python code has to say that
a student need not read.

Retries that recover by themselves (a Kafka group coordinator still loading, a broker
restarting, HBase briefly away) and librdkafka's own log lines are news, not errors: on the
console a student reads them as failures. They go to the log file. What does not recover
raises an error that says what to do.
"""

from __future__ import annotations

import logging
from pathlib import Path

from labkit.config import Settings

FILE_NAME = "labkit.log"
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LAB_LOGGER = logging.getLogger("labkit")
# librdkafka (every confluent-kafka client of the lab) logs here instead of printing to stderr.
KAFKA_CLIENTS_LOGGER = logging.getLogger("labkit.kafka.librdkafka")


def to_file(settings: Settings) -> Path:
    """Write the lab's log records (INFO and above) to its log file; return the file's path.

    A logger with a handler also keeps Python's last-resort handler from printing warnings to
    stderr. Calling it again for the same file adds nothing.
    """
    path = settings.logs_dir / FILE_NAME
    for handler in LAB_LOGGER.handlers:
        if isinstance(handler, logging.FileHandler) and Path(handler.baseFilename) == path:
            return path
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8", delay=True)
    handler.setFormatter(logging.Formatter(FORMAT))
    LAB_LOGGER.addHandler(handler)
    if LAB_LOGGER.level == logging.NOTSET:
        LAB_LOGGER.setLevel(logging.INFO)
    return path


def kafka_clients(settings: Settings) -> logging.Logger:
    """The logger for librdkafka's lines (a client's ``logger`` setting), into the log file."""
    to_file(settings)
    return KAFKA_CLIENTS_LOGGER
