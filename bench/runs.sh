#!/usr/bin/env bash
# Task-run benchmark: single-step runs of a task against a local HTTP server (a second
# `vigil serve`, whose GET /healthz answers JSON), on SQLite, history persisted. Measures, from
# the runs' own records (created_at = accepted, finished_at = its terminal status written):
#   1. throughput: runs submitted as fast as COUNT_CLIENTS clients can, runs/s from the
#      first accepted to the last finished;
#   2. latency at a steady RATE runs/s for STEADY_SECONDS seconds: p50/p99/max accepted → finished.
# Not a test: run it by hand.
#
#   bench/runs.sh                       # defaults below
#   RUNS=5000 RATE=100 STEADY_SECONDS=10 CLIENTS=8 bench/runs.sh
#
# Needs python3 (the clients). Goal (issue 10): >= 500 runs/s; p99 <= 50 ms at 100 runs/s.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${RUNS:-5000}"
RATE="${RATE:-100}"
STEADY_SECONDS="${STEADY_SECONDS:-10}"
CLIENTS="${CLIENTS:-8}"
PORT="${PORT:-18191}"
TARGET_PORT="${TARGET_PORT:-18192}"

cargo build --release --locked -p vigil >&2
BIN=target/release/vigil
DATA=$(mktemp -d)
TARGET_DATA=$(mktemp -d)
trap 'kill "$SERVER" "$TARGET" 2>/dev/null; wait 2>/dev/null; rm -rf "$DATA" "$TARGET_DATA"' EXIT

"$BIN" --data-dir "$DATA" tenant create bench >/dev/null
KEY=$("$BIN" --data-dir "$DATA" apikey create --tenant bench --role tenant-admin | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
VIGIL_LOG=warn "$BIN" --data-dir "$TARGET_DATA" --listen "127.0.0.1:$TARGET_PORT" serve 2>"$TARGET_DATA/serve.log" &
TARGET=$!
VIGIL_LOG=warn VIGIL_OUTBOUND_ALLOW=127.0.0.0/8 "$BIN" --data-dir "$DATA" --listen "127.0.0.1:$PORT" serve 2>"$DATA/serve.log" &
SERVER=$!
for port in "$PORT" "$TARGET_PORT"; do
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
done

python3 - "$PORT" "$KEY" "$TARGET_PORT" "$RUNS" "$RATE" "$STEADY_SECONDS" "$CLIENTS" <<'PY'
import http.client, json, sys, threading, time
from datetime import datetime

port, key, target = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
runs, rate, seconds, clients = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

def call(conn, method, path, body=None):
    conn.request(method, path, json.dumps(body) if body is not None else None, headers)
    response = conn.getresponse()
    data = response.read()
    return response.status, (json.loads(data) if data else None)

conn = http.client.HTTPConnection("127.0.0.1", port)
assert call(conn, "PUT", "/api/v1/apps/local", {"version": "1.0.0"})[0] in (200, 201)
status, _ = call(conn, "PUT", "/api/v1/apps/local/tasks/health", {
    "input_schema": {"type": "object"},
    "request": {"method": "GET", "path": "/healthz"},
    "outputs": [{"name": "status", "path": "$.status", "kind": "scalar", "type": "string"}],
    "timeout_ms": 5000})
assert status in (200, 201), status
status, instance = call(conn, "POST", "/api/v1/instances", {
    "app": "local", "name": "target", "base_url": f"http://127.0.0.1:{target}", "concurrency_max": 64})
assert status == 201, instance
path = "/api/v1/apps/local/tasks/health/runs"
body = {"instance": instance["id"], "input": {}}

def submit(n, ids, pace=None):
    c = http.client.HTTPConnection("127.0.0.1", port)
    start = time.perf_counter()
    for i in range(n):
        if pace is not None:
            wait = start + i * pace - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
        status, run = call(c, "POST", path, body)
        assert status == 202, (status, run)
        ids.append(run["id"])

def wait_done(ids):
    c = http.client.HTTPConnection("127.0.0.1", port)
    while True:
        status, page = call(c, "GET", "/api/v1/runs?status=queued&limit=1")
        busy = page["items"]
        status, page = call(c, "GET", "/api/v1/runs?status=running&limit=1")
        if not busy and not page["items"]:
            break
        time.sleep(0.05)
    found = {}
    cursor = None
    while True:
        q = "/api/v1/runs?limit=500" + (f"&cursor={cursor}" if cursor else "")
        status, page = call(c, "GET", q)
        for r in page["items"]:
            found[r["id"]] = r
        cursor = page["next_cursor"]
        if not cursor:
            break
    return [found[i] for i in ids]

def at(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()

def report(name, done):
    bad = [r for r in done if r["status"] != "succeeded"]
    assert not bad, bad[:3]
    lat = sorted((at(r["finished_at"]) - at(r["created_at"])) * 1000 for r in done)
    span = max(at(r["finished_at"]) for r in done) - min(at(r["created_at"]) for r in done)
    pick = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]
    print(f"== {name}: {len(done)} runs, {len(done) / span:.0f} runs/s (accepted → finished), "
          f"latency p50 {pick(0.5):.1f} ms, p99 {pick(0.99):.1f} ms, max {lat[-1]:.1f} ms")

# Warm-up.
ids = []
submit(200, ids)
wait_done(ids)

ids = []
threads = [threading.Thread(target=submit, args=(runs // clients, ids)) for _ in range(clients)]
for t in threads: t.start()
for t in threads: t.join()
report(f"throughput, {clients} clients", wait_done(ids))

ids = []
submit(rate * seconds, ids, pace=1.0 / rate)
report(f"steady {rate} runs/s for {seconds} s", wait_done(ids))
PY
