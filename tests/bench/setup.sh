#!/usr/bin/env bash
# What tests/bench/run.py needs on a fresh Debian machine: nginx, wrk and curl (apt), dufs (cargo
# install, into target/bench-tools), and release builds of the portal and the audit benchmark.
set -euo pipefail
cd "$(dirname "$0")/../.."
need=()
for tool in nginx wrk curl; do command -v "$tool" >/dev/null || need+=("$tool"); done
if [ ${#need[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q "${need[@]}" || { apt-get update -q && apt-get install -y -q "${need[@]}"; }
fi
command -v dufs >/dev/null || [ -x target/bench-tools/bin/dufs ] ||
    cargo install dufs --locked --root target/bench-tools
cargo build --release --bin evidence-portal --bin audit-bench
echo "ready: python3 tests/bench/run.py   (add --quick for a smoke run)"
