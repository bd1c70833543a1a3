"""Notebook 02."""

from labkit import kafka
from labkit.config import Settings


def input_messages(settings: Settings) -> int:
    """Each partition holds next offset - first offset messages."""
    return sum(p.high - p.low for p in kafka.offsets(settings, settings.topics.input))
