#!/usr/bin/env bash
# What write markers cost: sysbench writes on a semi_sync keyspace (a primary
# and two replicas, loss-less semi-sync), through the gate with write markers
# (the default) and through a gate started with --no-write-markers, each
# against the same workload run directly on the primary's mariadbd in the same
# cluster (direct, gate, gate, direct, averaged). Two clusters, one after the
# other; the figures to quote are each run's gate/direct ratio and the ratio
# of the two ratios.
#
# Called by nothing else; run it by hand. Prints a Markdown table.
#
# Usage: bench/markers.sh [seconds per sysbench run, default 20]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-20}
threads=16
./scripts/install-deps.sh
cargo build --release --bin tessera
tessera="${CARGO_TARGET_DIR:-target}/release/tessera"

work=$(mktemp -d)
cleanup() {
    [ -n "${tessera_pid:-}" ] && kill "$tessera_pid" 2>/dev/null && wait "$tessera_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

cat >"$work/cluster.toml" <<'TOML'
cell = "zone1"
[[keyspace]]
name = "commerce"
durability = "semi_sync"
[[keyspace.shard]]
name = "0"
tablets = [
  { uid = 100, type = "primary" },
  { uid = 101, type = "replica" },
  { uid = 102, type = "replica" },
]
TOML

common=(--mysql-host=127.0.0.1 --mysql-db=commerce --tables=4 --table-size=50000 --threads=$threads)
app=(--mysql-user=tessera_app --mysql-password=tessera_app_pw)

# run WORKLOAD PORT ARGS... -> transactions/s
run() {
    local workload=$1 port=$2; shift 2
    local out
    out=$(sysbench "$workload" "${common[@]}" "$@" --mysql-port="$port" --time="$secs" \
        --report-interval=0 run) || { echo "$out" | tail -20 >&2; return 1; }
    echo "$out" | awk '/transactions:/ {gsub(/\(/,"",$3); print $3}'
}

declare -A result
workloads=(oltp_read_write oltp_insert oltp_update_non_index)
# A base port with the nine ports from it free (other tests share the machine).
free_base() {
    local base used
    used=$(ss -Htan | awk '{print $4}' | sed 's/.*://' | sort -u)
    while :; do
        base=$((30000 + RANDOM % 20000))
        if ! grep -qxE "$(seq -s'|' "$base" $((base + 8)))" <<<"$used"; then
            echo "$base"
            return
        fi
    done
}

for mode in markers no-markers; do
    base=$(free_base)
    gate_port=$base
    tablet_base=$((base + 3 - 100)); mysqld_base=$((base + 6 - 100))
    primary_port=$((mysqld_base + 100))
    flag=()
    [ "$mode" = no-markers ] && flag=(--no-write-markers)
    rm -rf "$work/data"
    "$tessera" local up --config "$work/cluster.toml" --data-dir "$work/data" \
        --gate-port "$gate_port" --gate-http-port $((base + 1)) --ctld-port $((base + 2)) \
        --tablet-port-base "$tablet_base" --mysqld-port-base "$mysqld_base" \
        --buffer-pool-mb 128 "${flag[@]}" >"$work/up.log" 2>&1 &
    tessera_pid=$!
    for _ in $(seq 1 180); do grep -q ready "$work/up.log" && break; sleep 1; done
    grep -q ready "$work/up.log" || { cat "$work/up.log"; echo "cluster did not start" >&2; exit 1; }
    sysbench oltp_read_write "${common[@]}" "${app[@]}" --mysql-port="$primary_port" prepare >/dev/null
    # direct, gate, gate, direct: drift in the machine's load hits both alike.
    for w in "${workloads[@]}"; do
        d1=$(run "$w" "$primary_port" "${app[@]}")
        g1=$(run "$w" "$gate_port" --mysql-user=user --mysql-password=)
        g2=$(run "$w" "$gate_port" --mysql-user=user --mysql-password=)
        d2=$(run "$w" "$primary_port" "${app[@]}")
        result["$w $mode direct"]=$(awk -v a="$d1" -v b="$d2" 'BEGIN { printf "%.2f", (a + b) / 2 }')
        result["$w $mode gate"]=$(awk -v a="$g1" -v b="$g2" 'BEGIN { printf "%.2f", (a + b) / 2 }')
        echo "$w $mode: direct $d1 $d2 gate $g1 $g2" >&2
    done
    kill "$tessera_pid"; wait "$tessera_pid" 2>/dev/null || true; tessera_pid=
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo "| workload (tps, $threads threads, ${secs} s) | direct | gate, markers | gate/direct | direct | gate, --no-write-markers | gate/direct | markers' cost (ratio of ratios) |"
echo "|---|---|---|---|---|---|---|---|"
for w in "${workloads[@]}"; do
    dm=${result["$w markers direct"]}; gm=${result["$w markers gate"]}
    dn=${result["$w no-markers direct"]}; gn=${result["$w no-markers gate"]}
    rm_=$(ratio "$gm" "$dm"); rn=$(ratio "$gn" "$dn")
    echo "| $w | $dm | $gm | $rm_ | $dn | $gn | $rn | $(ratio "$rm_" "$rn") |"
done
