#!/usr/bin/env bash
# Every check CI runs: formatting, lints, then all tests (the etcd tests start their own etcd).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
