"""HBase: the real standalone HBase, through its Thrift server and happybase."""

from labkit import hbase


def test_create_put_get_scan_delete(stack, unique):
    name = f"test_crud_{unique}"
    connection = hbase.connect(stack)
    try:
        connection.create_table(name, {"d": {"max_versions": 1}})
        assert name.encode() in connection.tables()
        table = connection.table(name)
        rows = {
            b"TH1#2024-01-01 00:00:00": b"20.5",
            b"TH1#2024-01-01 00:15:00": b"21.0",
            b"TH1#2024-01-02 00:00:00": b"19.0",
            b"TH2#2024-01-01 00:00:00": b"30.0",
        }
        with table.batch() as batch:
            for key, value in rows.items():
                batch.put(key, {b"d:value": value})

        assert table.row(b"TH1#2024-01-01 00:15:00") == {b"d:value": b"21.0"}
        assert table.row(b"missing") == {}

        # One metric's day is one contiguous range of row keys.
        day = list(table.scan(row_start=b"TH1#2024-01-01", row_stop=b"TH1#2024-01-02"))
        assert [key for key, _ in day] == [b"TH1#2024-01-01 00:00:00", b"TH1#2024-01-01 00:15:00"]
        assert len(list(table.scan(row_prefix=b"TH2#"))) == 1

        table.delete(b"TH1#2024-01-01 00:00:00")
        assert table.row(b"TH1#2024-01-01 00:00:00") == {}
        assert len(list(table.scan())) == len(rows) - 1
    finally:
        if name.encode() in connection.tables():
            connection.delete_table(name, disable=True)
        assert name.encode() not in connection.tables()
        connection.close()
