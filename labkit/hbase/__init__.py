"""The storage layer: the lab's HBase tables, the writers that fill them from Kafka, and
range-scan readers.

``layout`` alone knows the tables, row keys, columns and encodings; ``writers`` copies the
output topics into the tables; ``read`` reads a metric's time range back; ``regions`` shows where
a table's rows live; ``compare`` measures the layout against the original's, and hot-spotting.
"""

from labkit.hbase.compare import compare_layouts, hotspots
from labkit.hbase.layout import (
    FAMILY,
    SEPARATOR,
    TRANSIENT,
    Column,
    TableKind,
    connect,
    connection,
    drop_tables,
    ensure_tables,
    recreate_tables,
    table_name,
)
from labkit.hbase.read import count_rows, has_rows, read_series, scan
from labkit.hbase.writers import (
    ROW_MAKERS,
    Writer,
    WriterError,
    Writers,
    WriterStats,
    drain,
    source_topic,
)

__all__ = [
    "FAMILY", "ROW_MAKERS", "SEPARATOR", "TRANSIENT", "Column", "TableKind", "Writer",
    "WriterError", "WriterStats", "Writers", "compare_layouts", "connect", "connection",
    "count_rows", "drain", "drop_tables", "ensure_tables", "has_rows", "hotspots", "read_series",
    "recreate_tables", "scan", "source_topic", "table_name",
]  # fmt: skip
