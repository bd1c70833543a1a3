"""Reading a whole table back, for assertions (tests only: a full scan)."""

from __future__ import annotations

from labkit import hbase
from labkit.config import Settings


def table_rows(settings: Settings, kind: hbase.TableKind | str) -> dict[bytes, dict[bytes, bytes]]:
    """Every row of one of the lab's tables."""
    with hbase.connection(settings) as connection:
        return dict(connection.table(hbase.table_name(settings, kind)).scan())
