"""Notebook 00."""

from labkit.config import Settings


def thrift_port(settings: Settings) -> int:
    """happybase talks to HBase's Thrift server, not to the master or the region server."""
    return settings.hbase_thrift_port
