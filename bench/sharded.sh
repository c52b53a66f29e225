#!/usr/bin/env bash
# Sharded benchmarks, in one run of one `tessera local up` (release build):
#
# 1. sysbench oltp_point_select (id = ?, 16 threads) through the gate on a
#    keyspace of 2 shards (`hash` vindex on id) against the same through the
#    gate on an unsharded keyspace: prepared statements and text protocol.
#    Runs alternate u, s2, s2, u so drift hits both sides alike. Then the
#    same with the gate bypassed (sysbench straight to the mariadbds), for
#    what two servers instead of one cost on this machine by themselves.
# 2. A scatter aggregate over a keyspace of 4 shards through the gate against
#    the same query run directly on the mariadbd of the shard holding the most
#    rows: rounds of REPS queries on one connection each, the two sides in
#    turn, the ratio taken round by round.
#
# Called by nothing else; run it by hand. Not cleaned of noise: the machine
# is shared, so the ratios of one run are the figures to quote.
#
# Usage: bench/sharded.sh [seconds per sysbench run, default 20]
#                         [aggregate rounds, default 15] [queries per round, default 20]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-20}
rounds=${2:-15}
reps=${3:-20}
threads=16
point_rows=100000
scatter_rows=400000
aggregate='SELECT COUNT(*), SUM(k), MIN(k), MAX(k) FROM sbtest1'

./scripts/install-deps.sh
cargo build --release --bin tessera
tessera="${CARGO_TARGET_DIR:-target}/release/tessera"

work=$(mktemp -d)
base=$((30000 + RANDOM % 20000))
gate_port=$base; ctld_port=$((base + 2))
# seven tablets, uids 100-106: agents on base+3..9, mysqlds on base+10..16
tablet_base=$((base + 3 - 100)); mysqld_base=$((base + 10 - 100))

cleanup() {
    [ -n "${tessera_pid:-}" ] && kill "$tessera_pid" 2>/dev/null && wait "$tessera_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# Keyspaces: u (unsharded), s2 (2 shards), s4 (4 shards); one primary per
# shard, uid 100 + n, so shard n's mysqld listens on mysqld_base + uid.
cat >"$work/cluster.toml" <<'TOML'
cell = "zone1"

[[keyspace]]
name = "u"
[[keyspace.shard]]
name = "0"
tablets = [{ uid = 100, type = "primary" }]

[[keyspace]]
name = "s2"
sharded = true
[[keyspace.shard]]
name = "-80"
tablets = [{ uid = 101, type = "primary" }]
[[keyspace.shard]]
name = "80-"
tablets = [{ uid = 102, type = "primary" }]

[[keyspace]]
name = "s4"
sharded = true
[[keyspace.shard]]
name = "-40"
tablets = [{ uid = 103, type = "primary" }]
[[keyspace.shard]]
name = "40-80"
tablets = [{ uid = 104, type = "primary" }]
[[keyspace.shard]]
name = "80-c0"
tablets = [{ uid = 105, type = "primary" }]
[[keyspace.shard]]
name = "c0-"
tablets = [{ uid = 106, type = "primary" }]
TOML
declare -A shard_uid=([s2:-80]=101 [s2:80-]=102 [s4:-40]=103 [s4:40-80]=104 [s4:80-c0]=105 [s4:c0-]=106)
s4_shards=(-40 40-80 80-c0 c0-)

"$tessera" local up --config "$work/cluster.toml" --data-dir "$work/data" --no-orc \
    --gate-port "$gate_port" --gate-http-port $((base + 1)) --ctld-port "$ctld_port" \
    --tablet-port-base "$tablet_base" --mysqld-port-base "$mysqld_base" \
    --buffer-pool-mb 64 >"$work/up.log" 2>&1 &
tessera_pid=$!
for _ in $(seq 1 300); do grep -q "is ready" "$work/up.log" && break; sleep 1; done
grep -q "is ready" "$work/up.log" || { cat "$work/up.log"; echo "cluster did not start" >&2; exit 1; }

# gate DB SQL / direct PORT DB SQL: tab-separated rows, no header.
gate() { mariadb -h127.0.0.1 -P"$gate_port" -uuser --batch --skip-column-names "$1" -e "$2"; }
direct() {
    mariadb -h127.0.0.1 -P"$1" -utessera_app -ptessera_app_pw --batch --skip-column-names "$2" -e "$3"
}

vschema='{"sharded": true, "vindexes": {"hash": {"type": "hash"}},
  "tables": {"sbtest1": {"column_vindexes": [{"column": "id", "name": "hash"}]}}}'
for ks in s2 s4; do
    "$tessera" ctl --server "127.0.0.1:$ctld_port" apply-vschema --vschema "$vschema" "$ks" >/dev/null
done

# sysbench's prepare runs through the gate on every keyspace: CREATE TABLE and
# CREATE INDEX go to every shard, its multi-row INSERTs are split by vindex.
# Explicit ids (--auto_inc=off): the sharded keyspaces have no sequence.
app=(--mysql-host=127.0.0.1 --mysql-port="$gate_port" --mysql-user=user --mysql-password=)
prepare() {
    local ks=$1 rows=$2
    if ! sysbench oltp_point_select "${app[@]}" --mysql-db="$ks" --tables=1 --table-size="$rows" \
        --auto_inc=off prepare >"$work/prepare-$ks.log" 2>&1; then
        cat "$work/prepare-$ks.log" >&2
        echo "sysbench prepare through the gate failed on keyspace $ks" >&2
        exit 1
    fi
}
prepare u "$point_rows"
prepare s2 "$point_rows"
prepare s4 "$scatter_rows"

# Every row landed once: the gate's count equals the shards' counts summed,
# and each shard holds rows.
for ks in s2 s4; do
    total=$([ "$ks" = s2 ] && echo "$point_rows" || echo "$scatter_rows")
    through_gate=$(gate "$ks" "SELECT COUNT(*) FROM sbtest1")
    summed=0
    for key in "${!shard_uid[@]}"; do
        [ "${key%%:*}" = "$ks" ] || continue
        n=$(direct $((mysqld_base + ${shard_uid[$key]})) "$ks" "SELECT COUNT(*) FROM sbtest1")
        [ "$n" -gt 0 ] || { echo "shard $key holds no rows" >&2; exit 1; }
        summed=$((summed + n))
    done
    if [ "$through_gate" != "$total" ] || [ "$summed" != "$total" ]; then
        echo "$ks: expected $total rows, gate counts $through_gate, shards hold $summed" >&2
        exit 1
    fi
done

# --- 1. point select by primary vindex: s2 against u, both through the gate
point() {
    local ks=$1; shift
    sysbench oltp_point_select "${app[@]}" --mysql-db="$ks" --tables=1 --table-size="$point_rows" \
        --threads="$threads" --time="$secs" --report-interval=0 "$@" run |
        awk '/queries:/ {gsub(/\(/,"",$3); print $3}'
}
mean() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (a + b) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
declare -A qps
for mode in prepared text; do
    extra=(); [ "$mode" = text ] && extra=(--db-ps-mode=disable)
    u1=$(point u "${extra[@]}"); s1=$(point s2 "${extra[@]}")
    s2=$(point s2 "${extra[@]}"); u2=$(point u "${extra[@]}")
    qps[$mode u]=$(mean "$u1" "$u2"); qps[$mode s2]=$(mean "$s1" "$s2")
    echo "point select $mode: unsharded $u1, $u2; 2 shards $s1, $s2 (qps)" >&2
done

# --- 1b. the same point selects with the gate bypassed: sysbench straight to
# u's mariadbd, and to the two s2 shards' mariadbds at once (half the threads
# each; each shard holds half the ids, so about half of its lookups find no
# row). What the two-server layout costs on this machine without any gate.
direct_app() { echo --mysql-host=127.0.0.1 --mysql-port="$1" --mysql-user=tessera_app --mysql-password=tessera_app_pw; }
direct_point() {
    local port=$1 db=$2 n=$3; shift 3
    # shellcheck disable=SC2046
    sysbench oltp_point_select $(direct_app "$port") --mysql-db="$db" --tables=1 \
        --table-size="$point_rows" --threads="$n" --time="$secs" --report-interval=0 "$@" run |
        awk '/queries:/ {gsub(/\(/,"",$3); print $3}'
}
direct_s2() {
    local a b
    direct_point $((mysqld_base + 101)) s2 $((threads / 2)) "$@" >"$work/d101" &
    direct_point $((mysqld_base + 102)) s2 $((threads / 2)) "$@" >"$work/d102"
    wait
    a=$(cat "$work/d101"); b=$(cat "$work/d102")
    awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", a + b }'
}
for mode in prepared text; do
    extra=(); [ "$mode" = text ] && extra=(--db-ps-mode=disable)
    u1=$(direct_point $((mysqld_base + 100)) u "$threads" "${extra[@]}"); s1=$(direct_s2 "${extra[@]}")
    s2=$(direct_s2 "${extra[@]}"); u2=$(direct_point $((mysqld_base + 100)) u "$threads" "${extra[@]}")
    qps[$mode u direct]=$(mean "$u1" "$u2"); qps[$mode s2 direct]=$(mean "$s1" "$s2")
    echo "point select $mode, no gate: unsharded $u1, $u2; 2 shards $s1, $s2 (qps)" >&2
done

# --- 2. scatter aggregate over s4 against the largest shard directly
largest=""; largest_rows=0
shard_rows=()
for shard in "${s4_shards[@]}"; do
    n=$(direct $((mysqld_base + ${shard_uid[s4:$shard]})) s4 "SELECT COUNT(*) FROM sbtest1")
    shard_rows+=("$n")
    if [ "$n" -gt "$largest_rows" ]; then largest=$shard; largest_rows=$n; fi
done
largest_port=$((mysqld_base + ${shard_uid[s4:$largest]}))

# The gate's merged answer must be the shards' answers combined.
expected=$(for shard in "${s4_shards[@]}"; do
    direct $((mysqld_base + ${shard_uid[s4:$shard]})) s4 "$aggregate"
done | awk -F'\t' 'NR == 1 { min = $3; max = $4 }
    { n += $1; s += $2; if ($3 < min) min = $3; if ($4 > max) max = $4 }
    END { printf "%d\t%d\t%d\t%d\n", n, s, min, max }')
merged=$(gate s4 "$aggregate")
if [ "$merged" != "$expected" ]; then
    echo "scatter aggregate through the gate gave '$merged', the shards combined '$expected'" >&2
    exit 1
fi

for _ in $(seq 1 "$reps"); do echo "$aggregate;"; done >"$work/aggregate.sql"
# seconds for one round of $reps queries on one connection
round() {
    local start end
    start=$EPOCHREALTIME
    "$@" <"$work/aggregate.sql" >/dev/null
    end=$EPOCHREALTIME
    awk -v a="$start" -v b="$end" 'BEGIN { printf "%.6f", b - a }'
}
gate_round=(mariadb -h127.0.0.1 -P"$gate_port" -uuser --batch s4)
direct_round=(mariadb -h127.0.0.1 -P"$largest_port" -utessera_app -ptessera_app_pw --batch s4)
round "${gate_round[@]}" >/dev/null; round "${direct_round[@]}" >/dev/null   # warm-up
: >"$work/rounds"
for _ in $(seq 1 "$rounds"); do
    g=$(round "${gate_round[@]}"); d=$(round "${direct_round[@]}")
    echo "$g $d" >>"$work/rounds"
done
# median per-query milliseconds of each side, and the median of the round ratios
median() { sort -g | awk '{ v[NR] = $1 } END { m = int((NR + 1) / 2); print (NR % 2) ? v[m] : (v[m] + v[m + 1]) / 2 }'; }
gate_ms=$(awk -v r="$reps" '{ print $1 * 1000 / r }' "$work/rounds" | median)
direct_ms=$(awk -v r="$reps" '{ print $2 * 1000 / r }' "$work/rounds" | median)
agg_ratio=$(awk '{ print $1 / $2 }' "$work/rounds" | median)
ratio_range=$(awk '{ r = $1 / $2; if (NR == 1 || r < lo) lo = r; if (NR == 1 || r > hi) hi = r }
    END { printf "%.2f–%.2f", lo, hi }' "$work/rounds")

printf -v scatter_line '| `%s` | %s | %.1f | %s (%s rows, of %s) | %.1f | %.2f (rounds %s) |' \
    "$aggregate" "$scatter_rows" "$gate_ms" "$largest" "$largest_rows" \
    "$(IFS=/; echo "${shard_rows[*]}")" "$direct_ms" "$agg_ratio" "$ratio_range"
{
    echo "sysbench 1.0, oltp_point_select, $threads threads, 1 table x $point_rows rows, $secs s per"
    echo "run, each keyspace run twice (u, s2, s2, u) and averaged; $(date -u +%Y-%m-%d), $(nproc) cores."
    echo
    echo "| point select through the gate | unsharded (qps) | 2 shards (qps) | 2 shards / unsharded |"
    echo "|---|---|---|---|"
    for mode in prepared text; do
        echo "| $mode | ${qps[$mode u]} | ${qps[$mode s2]} | $(ratio "${qps[$mode s2]}" "${qps[$mode u]}") |"
    done
    echo
    echo "The same without the gate (sysbench straight to the mariadbds; on 2 shards half"
    echo "the threads to each) — what the layout itself costs here:"
    echo
    echo "| point select, no gate | unsharded (qps) | 2 shards (qps) | 2 shards / unsharded | gate's ratio / this ratio |"
    echo "|---|---|---|---|---|"
    for mode in prepared text; do
        direct_ratio=$(ratio "${qps[$mode s2 direct]}" "${qps[$mode u direct]}")
        gate_ratio=$(ratio "${qps[$mode s2]}" "${qps[$mode u]}")
        echo "| $mode | ${qps[$mode u direct]} | ${qps[$mode s2 direct]} | $direct_ratio | $(ratio "$gate_ratio" "$direct_ratio") |"
    done
    echo
    echo "Scatter aggregate: $rounds rounds of $reps queries on one connection, gate and"
    echo "direct in turn; milliseconds per query are medians over rounds, the ratio is"
    echo "the median of the rounds' ratios."
    echo
    echo "| query | rows (4 shards) | gate ms | largest shard | its mariadbd directly, ms | gate / direct |"
    echo "|---|---|---|---|---|---|"
    echo "$scatter_line"
}
