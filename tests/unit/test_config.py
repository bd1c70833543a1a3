from pathlib import Path

import pytest

from labkit import config
from labkit.config import SettingsError


def test_defaults_match_the_original_system():
    settings = config.load({})
    assert settings.kafka_bootstrap == "localhost:9092"
    assert (settings.hbase_host, settings.hbase_thrift_port) == ("localhost", 9090)
    assert settings.hbase_zookeeper_port == 2183
    assert settings.api_port == 5000
    assert settings.topics.all() == [
        "input", "input_late", "output_raw", "output_aggr", "input_invalid", "output_rollup",
    ]  # fmt: skip
    assert settings.home == config.PROJECT_ROOT / ".lab"


def test_environment_overrides_each_kind_of_field(tmp_path: Path):
    settings = config.load(
        {
            "LABKIT_HOME": str(tmp_path),
            "LABKIT_KAFKA_PORT": "19092",
            "LABKIT_KAFKA_HOST": "broker.example",
            "LABKIT_START_TIMEOUT": "12.5",
            "LABKIT_TOPIC_INPUT": "sensors_in",
        }
    )
    assert settings.home == tmp_path
    assert settings.kafka_bootstrap == "broker.example:19092"
    assert settings.start_timeout == 12.5
    assert settings.topics.input == "sensors_in"
    assert settings.jars_dir == tmp_path / "jars"
    assert settings.logs_dir == tmp_path / "logs"


def test_empty_variables_keep_the_default():
    assert config.load({"LABKIT_KAFKA_PORT": ""}).kafka_port == 9092


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"LABKIT_KAFKA_PORT": "ninety"}, "LABKIT_KAFKA_PORT='ninety' is not a valid int"),
        ({"LABKIT_API_PORT": "70000"}, "not a TCP port"),
        ({"LABKIT_HBASE_THRIFT_PORT": "9092"}, "both use port 9092"),
        ({"LABKIT_KAFKA_PARTITIONS": "0"}, "KAFKA_PARTITIONS must be at least 1"),
        ({"LABKIT_MODE": "docker"}, "LABKIT_MODE='docker': use one of embedded, external"),
        ({"LABKIT_FLINK_MODE": "yarn"}, "LABKIT_FLINK_MODE='yarn': use one of local, remote"),
    ],
)
def test_bad_values_are_refused_with_the_variable_named(variables, message):
    with pytest.raises(SettingsError, match=message):
        config.load(variables)
