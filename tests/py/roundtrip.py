"""PyMySQL through the gate (negative TIME values with a fraction are left out:
PyMySQL itself formats them wrongly): every column type survives a parameterised
insert and a select unchanged. Usage: roundtrip.py PORT"""
import datetime
import decimal
import json
import sys

import pymysql

port = int(sys.argv[1])
conn = pymysql.connect(host="127.0.0.1", port=port, user="user", password="",
                       database="commerce", charset="utf8mb4", autocommit=True)
cur = conn.cursor()
cur.execute("DROP TABLE IF EXISTS py_types")
cur.execute("""CREATE TABLE py_types (
    id INT PRIMARY KEY, ti TINYINT, tu TINYINT UNSIGNED, bi BIGINT, bu BIGINT UNSIGNED,
    de DECIMAL(65,30), f FLOAT, d DOUBLE, c CHAR(10), vc VARCHAR(100), t TEXT,
    b BINARY(4), vb VARBINARY(300), bl BLOB, dt DATE, tm TIME(6), dtm DATETIME(6),
    ts TIMESTAMP(6) NULL, j JSON, n INT NULL) DEFAULT CHARSET=utf8mb4""")

rows = [
    (1, -128, 255, -9223372036854775808, 18446744073709551615,
     decimal.Decimal("-12345678901234567890123456789012345.123456789012345678901234567890"),
     3.5, -1.2345678901234567e300, "héllo", "emoji 😀 ünïcödé", "long 🐍 " * 500,
     b"\x00\xff\x80\x01", bytes(range(256)), bytes((i * 7) % 256 for i in range(60000)),
     datetime.date(2024, 2, 29), datetime.timedelta(hours=-5),
     datetime.datetime(9999, 12, 31, 23, 59, 59, 999999),
     datetime.datetime(2001, 2, 3, 4, 5, 6, 654321), json.dumps({"a": [1, 2.5, "x😀"], "b": None}), None),
    (2, 127, 0, 9223372036854775807, 0, decimal.Decimal("0E-30"), 0.0, 0.0, "", "", "",
     b"\x00\x00\x00\x00", b"", b"", datetime.date(1000, 1, 1), datetime.timedelta(hours=838, minutes=59, seconds=58, microseconds=999999),
     datetime.datetime(1000, 1, 1, 0, 0, 0), None, "[]", 7),
]
cur.executemany("INSERT INTO py_types VALUES (" + ",".join(["%s"] * 20) + ")", rows)
cur.execute("SELECT * FROM py_types ORDER BY id")
got = cur.fetchall()
assert len(got) == len(rows), got
for want, have in zip(rows, got):
    for i, (w, h) in enumerate(zip(want, have)):
        if isinstance(w, str) and isinstance(h, bytes):
            h = h.decode("utf8")
        if i == 18:  # JSON compares by value: MariaDB keeps the text.
            w, h = json.loads(w), json.loads(h)
        assert w == h, f"row {want[0]} column {i}: sent {w!r}, got {h!r}"
cur.execute("SELECT COUNT(*) FROM py_types WHERE vc = %s", ("emoji 😀 ünïcödé",))
assert cur.fetchone()[0] == 1
cur.execute("DROP TABLE py_types")
conn.close()
print(f"pymysql roundtrip ok: {len(rows)} rows x {len(rows[0])} columns")
