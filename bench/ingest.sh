#!/usr/bin/env bash
# Ingest benchmark: POST /api/v1/telemetry/events with batches of 500 ECS events against a
# release build on SQLite whose tenant holds 1,000,000 indicators. Reports events/s (requests/s
# x 500) and batch latency (p50/p99) from wrk, the catalogue import time, and checks afterwards
# that every event of every answered batch is in the database. Not a test: run it by hand.
#
#   bench/ingest.sh                                   # defaults below
#   INDICATORS=1000000 BATCH=500 DURATION=20s CONNECTIONS=8 bench/ingest.sh
#
# Each batch carries HIT_EVERY-th events with an indicator value in an IOC field (a match is
# recorded for each) and as many with one only in `message` (no match). Events have no
# client_id, so every request stores BATCH new events.
# Needs wrk and curl (Debian) and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
INDICATORS="${INDICATORS:-1000000}"
BATCH="${BATCH:-500}"
HIT_EVERY="${HIT_EVERY:-100}"
DURATION="${DURATION:-20s}"
CONNECTIONS="${CONNECTIONS:-8}"
THREADS="${THREADS:-1}"
PORT="${PORT:-18182}"

for tool in wrk curl python3; do
  command -v "$tool" >/dev/null || { echo "bench/ingest.sh: $tool not found" >&2; exit 2; }
done
cargo build --release --locked -p vigil >&2
BIN=target/release/vigil
DATA=$(mktemp -d)
SERVER=
trap '[ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null; wait 2>/dev/null; rm -rf "$DATA"' EXIT

"$BIN" --data-dir "$DATA" tenant create bench >/dev/null
key() { "$BIN" --data-dir "$DATA" apikey create --tenant bench --role "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])'; }
ANALYST=$(key analyst)
SENSOR=$(key ingest)

python3 - "$DATA" "$INDICATORS" "$BATCH" "$HIT_EVERY" <<'PY'
import json, random, sys
data, n, batch, hit_every = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rng = random.Random(11)
ips = [f"{10 + i % 200}.{(i >> 8) & 255}.{(i >> 16) & 255}.{i & 255 or 1}" for i in range(n // 2)]
domains = [f"c2-{i}.bad{i % 97}.example" for i in range(n // 4)]
hashes = [f"{rng.getrandbits(256):064x}" for _ in range(n - len(ips) - len(domains))]
with open(f"{data}/iocs.csv", "w") as out:
    out.write("type,value\n")
    out.writelines(f"ipv4,{v}\n" for v in ips)
    out.writelines(f"domain,{v}\n" for v in domains)
    out.writelines(f"sha256,{v}\n" for v in hashes)
def ip():
    return f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
events = []
for i in range(batch):
    hit = i % hit_every == 0
    decoy = i % hit_every == 1
    props = {
        "@timestamp": "2026-11-23T10:00:00Z",
        "event": {"kind": "event", "category": ["network"]},
        "source": {"ip": ip(), "port": rng.randrange(1024, 65536)},
        "destination": {"ip": rng.choice(ips) if hit else ip(), "port": 443},
        "dns": {"question": {"name": f"www.site{i}.example"}},
        "process": {"name": "svchost.exe", "pid": rng.randrange(10000), "executable": "C:\\Windows\\System32\\svchost.exe"},
        "user": {"name": f"user{i % 50}", "domain": "CORP"},
        "host": {"name": f"ws-{i % 300}", "ip": [ip()]},
        "message": f"outbound connection; note mentions {rng.choice(ips)}" if decoy else "outbound connection allowed by policy",
    }
    events.append({"type": "network_connection", "timestamp": "2026-11-23T10:00:00Z", "properties": props})
body = json.dumps(events)
open(f"{data}/batch.json", "w").write(body)
print(f"batch: {batch} events, {len(body)} bytes ({len(body) // batch} bytes/event)", file=sys.stderr)
PY

VIGIL_LOG=warn "$BIN" --data-dir "$DATA" --listen "127.0.0.1:$PORT" serve 2>"$DATA/serve.log" &
SERVER=$!
for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done
URL="http://127.0.0.1:$PORT/api/v1"

echo "importing $INDICATORS indicators ($(du -h "$DATA/iocs.csv" | cut -f1))..." >&2
START=$(date +%s.%N)
curl -sf -X POST -H "Authorization: Bearer $ANALYST" -H "Content-Type: text/csv" \
  --data-binary "@$DATA/iocs.csv" "$URL/indicators/import" | python3 -c 'import json,sys; r=json.load(sys.stdin); print("import:", {k: r[k] for k in ("accepted","updated","rejected_count")}, file=sys.stderr)'
echo "import took $(python3 -c "print(round($(date +%s.%N) - $START, 2))") s" >&2

# The first batch compiles the index; its answer shows what one batch does.
START=$(date +%s.%N)
curl -sf -X POST -H "Authorization: Bearer $SENSOR" -H "Content-Type: application/json" \
  --data-binary "@$DATA/batch.json" "$URL/telemetry/events" \
  | python3 -c 'import json,sys; r=json.load(sys.stdin); print("first batch:", r["accepted"], "accepted,", r["matches"], "matches,", len(r["rejected"]), "rejected,", len(r["errors"]), "errors", file=sys.stderr)'
echo "first batch (index build included) took $(python3 -c "print(round($(date +%s.%N) - $START, 2))") s" >&2

cat >"$DATA/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $SENSOR"
local f = assert(io.open("$DATA/batch.json", "rb"))
wrk.body = f:read("*a")
f:close()
done = function(summary, latency, requests)
  io.write(string.format("non-2xx or errors: %d\n", summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
  io.write(string.format("completed batches: %d\n", summary.requests))
end
LUA
echo "warm-up..." >&2
wrk -t"$THREADS" -c"$CONNECTIONS" -d3s -s "$DATA/post.lua" "$URL/telemetry/events" >/dev/null
echo "== POST /api/v1/telemetry/events, $BATCH events/batch, SQLite, $INDICATORS indicators, $CONNECTIONS connections, $DURATION =="
wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$DATA/post.lua" "$URL/telemetry/events" | tee "$DATA/wrk.out"
python3 - "$DATA/wrk.out" "$BATCH" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
print(f"events/s: {rps * int(sys.argv[2]):,.0f}")
PY

kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=
python3 - "$DATA/vigil.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
events, = db.execute("SELECT count(*) FROM telemetry_events").fetchone()
matches, = db.execute("SELECT count(*) FROM ioc_matches").fetchone()
print(f"stored after shutdown: {events:,} events, {matches:,} matches")
PY
