#!/usr/bin/env bash
# The whole test suite, as CI runs it: install what is missing, check
# formatting and lints, then every unit and integration test against real
# mariadbd and etcd processes the tests start themselves.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace --all-targets -- --test-threads=2
