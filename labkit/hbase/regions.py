"""Where a table's rows live: its regions, and tables split into several regions up front.

HBase keeps a table as regions, each a contiguous range of row keys served by one region
server; a put goes to the region whose range holds its key. A new table has one region, and
HBase splits a region in two when it grows (by default at 256 MB for a table's first region,
later at 10 GB), so the lab's tables stay one region each. To see where writes land in a table
of several regions, ``create_presplit`` creates tables split at given keys: the Thrift v1 API
that happybase speaks can list regions but not split, so it runs HBase's Admin API
(``services/hbase/PreSplit.java``) in a short JVM, a few seconds.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable
from dataclasses import dataclass

import happybase

from labkit.config import Mode, Settings
from labkit.errors import ServiceError
from labkit.hbase import layout
from labkit.jvm import RECIPES_DIR, check_java, jar_group, last_lines
from labkit.services.kafka_hbase import HBASE_JDK17_FLAGS

PRESPLIT_PROGRAM = RECIPES_DIR / "hbase" / "PreSplit.java"
PRESPLIT_TIMEOUT_S = 180


@dataclass(frozen=True)
class Region:
    """One region of a table: the keys from ``start`` (included) to ``stop`` (excluded);
    an empty ``start`` is the table's beginning, an empty ``stop`` its end."""

    start: bytes
    stop: bytes

    def holds(self, row_key: bytes) -> bool:
        return self.start <= row_key and (not self.stop or row_key < self.stop)


def regions(conn: happybase.Connection, name: str) -> list[Region]:
    """A table's regions in key order, as HBase's meta table lists them."""
    found = [Region(r["start_key"], r["end_key"]) for r in conn.table(name).regions()]
    return sorted(found, key=lambda region: region.start)


def keys_per_region(conn: happybase.Connection, name: str) -> list[list[bytes]]:
    """The row keys each region of a table holds: one range scan per region, keys only."""
    table = conn.table(name)
    return [
        [
            row_key
            for row_key, _ in table.scan(
                row_start=region.start or None,
                row_stop=region.stop or None,
                filter=b"KeyOnlyFilter()",
                batch_size=5000,
            )
        ]
        for region in regions(conn, name)
    ]


def create_presplit(settings: Settings, tables: dict[str, Iterable[bytes]]) -> None:
    """Create tables of the lab's shape (one column family, one version), each split into
    regions at its keys (text keys, as the lab's are), in one short JVM."""
    if settings.mode is Mode.EXTERNAL:
        raise ServiceError(
            "Splitting a table needs HBase's Admin API, which labkit reaches only when it runs "
            "HBase itself (LABKIT_MODE=embedded, `labkit up`)."
        )
    lines = []
    for name, split_keys in tables.items():
        keys = [row_key.decode() for row_key in split_keys]
        if any("\t" in text or "\n" in text for text in [name, *keys]):
            raise ValueError(f"Table names and split keys cannot hold tabs or newlines: {name}")
        lines.append("\t".join([name, *keys]))
    command = [
        check_java(),
        "-Xmx256m",
        "-XX:TieredStopAtLevel=1",  # a short program: the JIT's first tier is enough
        *HBASE_JDK17_FLAGS,
        f"-Dlog4j2.configurationFile={RECIPES_DIR / 'hbase' / 'log4j2.properties'}",
        f"-Dlabkit.log.file={settings.logs_dir / 'presplit.log'}",
        "-cp",
        str(jar_group(settings, "hbase") / "*"),
        str(PRESPLIT_PROGRAM),
        settings.hbase_host,
        str(settings.hbase_zookeeper_port),
        layout.FAMILY.decode(),
    ]
    try:
        result = subprocess.run(
            command,
            input="\n".join(lines) + "\n",
            capture_output=True,
            text=True,
            timeout=PRESPLIT_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ServiceError(
            f"Creating split tables took over {PRESPLIT_TIMEOUT_S} s: is HBase up? "
            "(`labkit status`; its log: `labkit logs hbase`)"
        ) from None
    if result.returncode != 0:
        raise ServiceError(
            "HBase's Admin API could not create the split tables (is HBase up? `labkit "
            "status`). Its last words:\n" + last_lines(result.stdout + result.stderr, 15)
        )
