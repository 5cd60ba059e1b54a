#!/usr/bin/env bash
# What tests/bench/run.py needs on a fresh Debian machine: nginx, wrk and curl (apt), dufs (cargo
# install, into target/bench-tools), s3s-fs (likewise), and release builds of the portal and the audit benchmark.
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
# s3s-fs for the scale-out leg (scale.py): 0.14.1 is the last release that builds with rustc 1.95.
[ -x target/bench-tools/bin/s3s-fs ] ||
    cargo install s3s-fs@0.14.1 --features binary --locked --root target/bench-tools
cargo build --release --bin evidence-portal --bin audit-bench
echo "ready: python3 tests/bench/run.py   (add --quick for a smoke run)"
