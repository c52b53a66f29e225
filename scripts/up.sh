#!/usr/bin/env bash
# Quick start: install what is missing, build, and run `tessera local up`
# (a primary, a replica and an rdonly tablet of keyspace `commerce`, the gate
# on 127.0.0.1:15306). Extra arguments go to `local up`.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cargo build --release --bin tessera
exec "${CARGO_TARGET_DIR:-target}/release/tessera" local up "$@"
