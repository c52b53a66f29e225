#!/usr/bin/env bash
# sysbench through three paths in the same run — direct mariadbd, HAProxy in
# TCP mode, and the Tessera gate — and the gate's and HAProxy's ratios to
# direct, written to BENCHMARKS.md. The machine is shared and noisy: ratios
# measured in one run hold better than absolute numbers.
#
# Usage: bench/sysbench.sh [seconds per run, default 20]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-20}
threads=16
./scripts/install-deps.sh
cargo build --release --bin tessera
tessera="${CARGO_TARGET_DIR:-target}/release/tessera"

work=$(mktemp -d)
base=$((30000 + RANDOM % 20000))
gate_port=$base; ctld_port=$((base + 2)); haproxy_port=$((base + 9))
tablet_base=$((base + 3 - 100)); mysqld_base=$((base + 6 - 100))
primary_port=$((mysqld_base + 100))

cleanup() {
    [ -n "${haproxy_pid:-}" ] && kill "$haproxy_pid" 2>/dev/null || true
    [ -n "${tessera_pid:-}" ] && kill "$tessera_pid" 2>/dev/null && wait "$tessera_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

"$tessera" local up --data-dir "$work/data" --gate-port "$gate_port" \
    --gate-http-port $((base + 1)) --ctld-port "$ctld_port" --tablet-port-base "$tablet_base" \
    --mysqld-port-base "$mysqld_base" --buffer-pool-mb 256 >"$work/up.log" 2>&1 &
tessera_pid=$!
for _ in $(seq 1 180); do grep -q ready "$work/up.log" && break; sleep 1; done
grep -q ready "$work/up.log" || { cat "$work/up.log"; echo "cluster did not start" >&2; exit 1; }

cat >"$work/haproxy.cfg" <<CFG
global
    maxconn 4096
defaults
    mode tcp
    timeout connect 5s
    timeout client 1h
    timeout server 1h
frontend mysql
    bind 127.0.0.1:$haproxy_port
    default_backend primary
backend primary
    server primary 127.0.0.1:$primary_port
CFG
haproxy -f "$work/haproxy.cfg" -db >"$work/haproxy.log" 2>&1 &
haproxy_pid=$!
sleep 1

common=(--mysql-host=127.0.0.1 --mysql-db=commerce --tables=4 --table-size=100000 --threads=$threads)
app=(--mysql-user=tessera_app --mysql-password=tessera_app_pw)
sysbench oltp_read_write "${common[@]}" "${app[@]}" --mysql-port="$primary_port" prepare >/dev/null

# run WORKLOAD PORT USER-ARGS... -> prints queries/s (point select) or transactions/s
run() {
    local workload=$1 port=$2; shift 2
    local out
    out=$(sysbench "$workload" "${common[@]}" "$@" --mysql-port="$port" --time="$secs" --report-interval=0 run)
    if [ "$workload" = oltp_read_write ]; then
        echo "$out" | awk '/transactions:/ {gsub(/\(/,"",$3); print $3}'
    else
        echo "$out" | awk '/queries:/ {gsub(/\(/,"",$3); print $3}'
    fi
}

declare -A result
cases=("oltp_point_select prepared|oltp_point_select|" "oltp_point_select text|oltp_point_select|--db-ps-mode=disable" "oltp_read_write|oltp_read_write|")
for c in "${cases[@]}"; do
    IFS='|' read -r label workload extra <<<"$c"
    # Direct and HAProxy authenticate as the app user on mysqld; the gate as its own user.
    result["$label direct"]=$(run "$workload" "$primary_port" "${app[@]}" $extra)
    result["$label haproxy"]=$(run "$workload" "$haproxy_port" "${app[@]}" $extra)
    result["$label gate"]=$(run "$workload" "$gate_port" --mysql-user=user --mysql-password= $extra)
    echo "$label: direct ${result["$label direct"]} haproxy ${result["$label haproxy"]} gate ${result["$label gate"]}" >&2
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
{
    echo "# Benchmarks"
    echo
    echo "sysbench 1.0, $threads threads, 4 tables x 100k rows, ${secs} s per run, one primary"
    echo "mariadbd (innodb buffer pool 256 MB), all on one $(nproc)-core machine, measured"
    echo "in one run of \`bench/sysbench.sh\` on $(date -u +%Y-%m-%d). Ratios are to direct"
    echo "MariaDB in the same run; absolute numbers drift with the machine's load."
    echo
    echo "| workload | direct | HAProxy TCP | gate | HAProxy/direct | gate/direct |"
    echo "|---|---|---|---|---|---|"
    for c in "${cases[@]}"; do
        IFS='|' read -r label workload extra <<<"$c"
        unit=$([ "$workload" = oltp_read_write ] && echo tps || echo qps)
        d=${result["$label direct"]}; h=${result["$label haproxy"]}; g=${result["$label gate"]}
        echo "| $label ($unit) | $d | $h | $g | $(ratio "$h" "$d") | $(ratio "$g" "$d") |"
    done
    if [ -f bench/NOTES.md ]; then echo; cat bench/NOTES.md; fi
} >BENCHMARKS.md
cat BENCHMARKS.md
