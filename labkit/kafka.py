"""The broker layer: Kafka topics, producers and consumers, through confluent-kafka."""

from __future__ import annotations

import logging

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from labkit.config import Settings

log = logging.getLogger(__name__)


def admin(settings: Settings) -> AdminClient:
    return AdminClient({"bootstrap.servers": settings.kafka_bootstrap})


def ensure_topics(
    settings: Settings, topics: list[str] | None = None, partitions: int | None = None
) -> list[str]:
    """Create the topics that do not exist yet (default: the lab's five); return those created."""
    wanted = settings.topics.all() if topics is None else topics
    client = admin(settings)
    existing = set(client.list_topics(timeout=10).topics)
    missing = [name for name in wanted if name not in existing]
    if not missing:
        return []
    count = partitions or settings.kafka_partitions
    futures = client.create_topics(
        [NewTopic(name, num_partitions=count, replication_factor=1) for name in missing],
        operation_timeout=30,
    )
    created = []
    for name, future in futures.items():
        try:
            future.result()
            created.append(name)
        except KafkaException as error:
            # Another client may have created it between our listing and our request.
            if error.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
    return created


def delete_topics(settings: Settings, topics: list[str]) -> None:
    """Delete topics (missing ones are ignored)."""
    client = admin(settings)
    existing = set(client.list_topics(timeout=10).topics)
    doomed = [name for name in topics if name in existing]
    if not doomed:
        return
    for future in client.delete_topics(doomed, operation_timeout=30).values():
        try:
            future.result()
        except KafkaException as error:
            if error.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                raise
