#!/usr/bin/env bash
# Task-run benchmark (issue 10): single-step runs against a local HTTP server on SQLite,
# history persisted; runs/s, and p50/p99 from accepted to finished at a steady rate. The
# benchmark itself is a bench target (crates/vigil-runner/benches/runs.rs); settings:
#
#   RUNS=5000 CLIENTS=8 RATE=100 STEADY_SECONDS=10 bench/runs.sh
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench --locked -p vigil-runner --bench runs
