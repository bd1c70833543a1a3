"""What recovers by itself goes to the lab's log file, not to the console: librdkafka's own
lines (a real client, waiting for a broker that is not there) and the lab's Kafka retries."""

import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, KafkaException

from labkit import config, kafka, logs
from labkit.config import Settings


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Settings]:
    """Settings of a lab of its own, whose broker port nothing listens on."""
    yield config.load({"LABKIT_HOME": str(tmp_path), "LABKIT_KAFKA_PORT": str(free_port())})
    for handler in list(logs.LAB_LOGGER.handlers):
        if isinstance(handler, logging.FileHandler) and str(tmp_path) in handler.baseFilename:
            logs.LAB_LOGGER.removeHandler(handler)
            handler.close()


def test_librdkafka_lines_go_to_the_log_file_not_to_stderr(lab: Settings, capfd):
    producer = kafka.BatchProducer(lab)
    producer.send("input", b"{}")
    producer.producer.flush(3)  # long enough to fail to connect, and to say so
    captured = capfd.readouterr()
    assert "%3|" not in captured.err and "Connection refused" not in captured.err
    text = (lab.logs_dir / logs.FILE_NAME).read_text()
    assert "labkit.kafka.librdkafka" in text and "Connection refused" in text


def test_a_retry_that_recovers_is_written_to_the_log_file_only(lab: Settings, capfd):
    logs.to_file(lab)
    attempts = []

    def coordinator_loading_once() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise KafkaException(KafkaError(KafkaError.NOT_COORDINATOR))
        return "committed"

    assert kafka.settled(coordinator_loading_once, "commit") == "committed"
    assert len(attempts) == 2
    assert capfd.readouterr().err == ""
    assert "commit failed" in (lab.logs_dir / logs.FILE_NAME).read_text()


def test_the_log_file_is_set_up_once_per_file(lab: Settings):
    first, again = logs.to_file(lab), logs.to_file(lab)
    assert first == again == lab.logs_dir / logs.FILE_NAME
    mine = [h for h in logs.LAB_LOGGER.handlers if getattr(h, "baseFilename", "") == str(first)]
    assert len(mine) == 1
