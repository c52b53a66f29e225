#!/usr/bin/env bash
# The whole test suite, as CI runs it: install what is missing, check
# formatting and lints, then every unit and integration test against real
# mariadbd and etcd processes the tests start themselves.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
# A cold build is most of the suite's time: no incremental caches (written,
# never read, in a one-off build), and the mold linker when present (it links
# the ~40 test binaries several times faster than GNU ld).
export CARGO_INCREMENTAL=0
if command -v mold >/dev/null 2>&1; then
    export RUSTFLAGS="${RUSTFLAGS:-} -C link-arg=-fuse-ld=mold"
fi
cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace --all-targets -- --test-threads=2
