"""The lab's processes without starting any: stale pid files, taken ports, names."""

import dataclasses
import os
import socket

import pytest

from labkit import config, services
from labkit.services import ServiceError


def _stack_status(settings):
    return {row.service: row for row in services.status(settings, services.STACK)}


def test_a_stale_pid_file_is_ignored_and_never_signalled(tmp_path):
    settings = dataclasses.replace(config.load({}), home=tmp_path)
    pid_file = services.KAFKA.pid_file(settings)
    pid_file.parent.mkdir(parents=True)
    pid_file.write_text(f"{os.getpid()}\n")  # a live process, but not one of the lab's
    assert services.running_pid(services.KAFKA, settings) is None
    assert services.stop(services.KAFKA, settings) is False
    assert not pid_file.exists()


def test_a_taken_port_gives_a_clear_message(tmp_path):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        settings = dataclasses.replace(
            config.load({}), home=tmp_path, kafka_host="127.0.0.1", kafka_port=port
        )
        with pytest.raises(ServiceError, match=rf"Port {port} \(kafka broker\) is already taken"):
            services.start(services.KAFKA, settings)
        assert services.running_pid(services.KAFKA, settings) is None


def test_unknown_service_names_list_the_real_ones():
    with pytest.raises(ServiceError) as error:
        services.by_name("zookeeper")
    for service in services.ALL:
        assert service.name in str(error.value)
