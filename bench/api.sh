#!/usr/bin/env bash
# Load benchmark: GET /api/v1/risks?limit=50 against a release build on SQLite holding
# 10,000 risks, measured with wrk (requests/s, p50/p99). Not a test: run it by hand.
#
#   bench/api.sh                 # defaults below
#   RISKS=10000 DURATION=20s CONNECTIONS=32 THREADS=2 bench/api.sh
#
# KEEP_DATA=DIR copies the seeded data directory there at the end, to profile against it.
# Needs wrk (Debian: apt-get install wrk) and python3 (seeding).
set -euo pipefail
cd "$(dirname "$0")/.."
RISKS="${RISKS:-10000}"
DURATION="${DURATION:-20s}"
CONNECTIONS="${CONNECTIONS:-32}"
THREADS="${THREADS:-2}"
PORT="${PORT:-18181}"

command -v wrk >/dev/null || { echo "bench/api.sh: wrk not found (apt-get install wrk)" >&2; exit 2; }
cargo build --release --locked -p vigil >&2
BIN=target/release/vigil
DATA=$(mktemp -d)
trap 'kill "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null; [ -n "${KEEP_DATA:-}" ] && cp -r "$DATA" "$KEEP_DATA"; rm -rf "$DATA"' EXIT

"$BIN" --data-dir "$DATA" tenant create bench >/dev/null
KEY=$("$BIN" --data-dir "$DATA" apikey create --tenant bench --role analyst | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
VIGIL_LOG=warn "$BIN" --data-dir "$DATA" --listen "127.0.0.1:$PORT" serve 2>"$DATA/serve.log" &
SERVER=$!
for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done

echo "seeding $RISKS risks..." >&2
python3 - "$PORT" "$KEY" "$RISKS" <<'PY'
import http.client, json, sys
port, key, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
conn = http.client.HTTPConnection("127.0.0.1", port)
headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
for i in range(n):
    body = {"title": f"Risk {i}: exposed service on host-{i % 997}", "description": "seeded by bench/api.sh",
            "impact": i % 5 + 1, "probability": (i // 5) % 5 + 1, "tags": ["bench", f"t{i % 10}"], "source": "bench",
            "external_id": str(i)}
    conn.request("POST", "/api/v1/risks", json.dumps(body), headers)
    response = conn.getresponse()
    response.read()
    if response.status != 201:
        sys.exit(f"seeding failed at {i}: {response.status}")
PY

URL="http://127.0.0.1:$PORT/api/v1/risks?limit=50"
curl -sf -H "Authorization: Bearer $KEY" "$URL" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert len(d["items"])==50, d; print("sanity: 50 items, next_cursor set:", d["next_cursor"] is not None)' >&2
echo "warm-up..." >&2
wrk -t"$THREADS" -c"$CONNECTIONS" -d3s -H "Authorization: Bearer $KEY" "$URL" >/dev/null
echo "== GET /api/v1/risks?limit=50, SQLite, $RISKS risks, $THREADS threads, $CONNECTIONS connections, $DURATION =="
wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -H "Authorization: Bearer $KEY" "$URL"
