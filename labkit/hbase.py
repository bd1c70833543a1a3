"""The storage layer: HBase through its Thrift server, with happybase."""

from __future__ import annotations

import happybase

from labkit.config import Settings


def connect(settings: Settings, timeout_ms: int = 30_000) -> happybase.Connection:
    """A happybase connection to the lab's HBase Thrift server."""
    return happybase.Connection(settings.hbase_host, settings.hbase_thrift_port, timeout=timeout_ms)
