"""PyMySQL through a sharded keyspace of the gate.

Mode `crud`: rows inserted with parameters take sequence ids, are read back
by id (one shard) and by scans (every shard), updated and deleted both ways.
Prints the ids left, one line of JSON, for the caller to check each row's
shard.
Mode `defaults ID...`: a connection with PyMySQL's default settings
(autocommit off, so it sends SET AUTOCOMMIT = 0) inserts rows with the given
ids into py_note; rollback() and commit() are seen by a second connection.
Usage: sharded_crud.py PORT KEYSPACE crud | sharded_crud.py PORT KEYSPACE defaults ID..."""
import json
import sys

import pymysql

port, keyspace, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]


def connect(**settings):
    return pymysql.connect(host="127.0.0.1", port=port, user="user", password="",
                           database=keyspace, charset="utf8mb4", **settings)


if mode == "defaults":
    ids = [int(i) for i in sys.argv[4:]]
    conn = connect()
    watcher = connect(autocommit=True)
    cur, seen = conn.cursor(), watcher.cursor()
    rows = [(i, f"note {i}") for i in ids]
    sql = "INSERT INTO py_note (id, label) VALUES " + ", ".join(["(%s, %s)"] * len(rows))
    args = [v for r in rows for v in r]
    cur.execute(sql, args)
    seen.execute("SELECT COUNT(*) FROM py_note")
    assert seen.fetchone()[0] == 0, "uncommitted rows visible to another session"
    conn.rollback()
    cur.execute("SELECT COUNT(*) FROM py_note")
    assert cur.fetchone()[0] == 0, "rows left after rollback()"
    cur.execute(sql, args)
    conn.commit()
    seen.execute("SELECT id, label FROM py_note ORDER BY id")
    assert seen.fetchall() == tuple(sorted(rows)), "rows after commit()"
    conn.close()
    watcher.close()
    print(f"pymysql default session ok: {len(rows)} rows")
    sys.exit(0)

assert mode == "crud", mode
conn = connect(autocommit=True)
cur = conn.cursor()

names = ["anchor", "O'Brien", "zoë 🐍", "back\\slash", "plain", "last"]
# One multi-row INSERT (executemany batches plain VALUES lists), split by
# vindex in the gate; ids come from the table's sequence.
cur.executemany("INSERT INTO py_item (name, qty) VALUES (%s, %s)",
                [(name, i + 1) for i, name in enumerate(names)])
assert cur.rowcount == len(names), cur.rowcount
first_id = cur.lastrowid
assert first_id >= 1, first_id

cur.execute("SELECT id, name, qty FROM py_item ORDER BY id")
rows = cur.fetchall()
assert [r[1] for r in rows] == names, rows
assert len({r[0] for r in rows}) == len(names), rows
assert rows[0][0] == first_id, (first_id, rows)
ids = {r[1]: r[0] for r in rows}

# Point reads by the vindex column.
for name, ident in ids.items():
    cur.execute("SELECT name, qty FROM py_item WHERE id = %s", (ident,))
    got = cur.fetchall()
    assert got == ((name, names.index(name) + 1),), (ident, got)

# A scan with a string parameter finds the quoted name.
cur.execute("SELECT id FROM py_item WHERE name = %s", ("O'Brien",))
assert cur.fetchall() == ((ids["O'Brien"],),)

# Updates: by id (one shard) and by a scan (every shard).
cur.execute("UPDATE py_item SET qty = %s WHERE id = %s", (100, ids["plain"]))
assert cur.rowcount == 1, cur.rowcount
cur.execute("UPDATE py_item SET qty = qty + 10 WHERE qty < %s", (5,))
assert cur.rowcount == 4, cur.rowcount
cur.execute("SELECT name, qty FROM py_item ORDER BY qty DESC, name")
assert cur.fetchall() == (("plain", 100), ("back\\slash", 14), ("zoë 🐍", 13),
                          ("O'Brien", 12), ("anchor", 11), ("last", 6)), "after updates"

# Deletes: by id, then by a scan.
cur.execute("DELETE FROM py_item WHERE id = %s", (ids["anchor"],))
assert cur.rowcount == 1, cur.rowcount
cur.execute("DELETE FROM py_item WHERE qty BETWEEN %s AND %s", (12, 14))
assert cur.rowcount == 3, cur.rowcount

cur.execute("SELECT COUNT(*), SUM(qty) FROM py_item")
count, total = cur.fetchone()
assert (count, int(total)) == (2, 106), (count, total)
cur.execute("SELECT id FROM py_item ORDER BY id")
left = [r[0] for r in cur.fetchall()]
assert left == sorted([ids["plain"], ids["last"]]), left
conn.close()
print(json.dumps({"left": left, "all": sorted(ids.values())}))
print(f"pymysql sharded crud ok: {len(names)} rows")
