#!/usr/bin/env bash
# Memory benchmark: the peak RSS of `vigil serve` while it imports a 256 MiB junk indicator
# CSV and a 256 MiB junk STIX bundle (POST /api/v1/indicators/import, the route's largest
# body). Every row and object is junk, so every one is rejected: the answer counts them all
# and lists the first 1,000. Goal: peak RSS <= 512 MiB for each. Not a test: run it by hand.
#
#   bench/import.sh              # MIB=256 by default
#   MIB=64 bench/import.sh
#
# Peak RSS is the server's VmHWM (from /proc), read after each import on a fresh server.
set -euo pipefail
cd "$(dirname "$0")/.."
MIB="${MIB:-256}"
PORT="${PORT:-18184}"
cargo build --release --locked -p vigil >&2
BIN=target/release/vigil
WORK=$(mktemp -d)
SERVER=""
trap '[ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null; rm -rf "$WORK"' EXIT

echo "generating a ${MIB} MiB junk CSV and a ${MIB} MiB junk bundle..." >&2
python3 - "$WORK" "$MIB" <<'PY'
import sys
work, mib = sys.argv[1], int(sys.argv[2])
size = (mib << 20) - 4096
with open(f"{work}/junk.csv", "w") as f:
    f.write("type,value\n")
    n, i = 11, 0
    while n < size:
        row = f"not-a-type,junk-value-{i:012d}\n"
        f.write(row); n += len(row); i += 1
with open(f"{work}/junk.json", "w") as f:
    head = '{"type": "bundle", "id": "bundle--00000000-0000-4000-8000-000000000000", "objects": ['
    f.write(head)
    n, i = len(head) + 2, 0
    pad = "x" * 180
    while True:
        obj = ('{"type": "indicator", "id": "indicator--%08d-0000-4000-8000-000000000000", '
               '"pattern": "junk %d", "pattern_type": "stix", "description": "%s"}') % (i, i, pad)
        if n + len(obj) + 1 > size:
            break
        f.write(("," if i else "") + obj); n += len(obj) + 1; i += 1
    f.write("]}")
PY
ls -l "$WORK"/junk.* >&2

"$BIN" --data-dir "$WORK/data" tenant create bench >/dev/null
KEY=$("$BIN" --data-dir "$WORK/data" apikey create --tenant bench --role analyst | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')

import_one() { # FILE CONTENT-TYPE LABEL
  VIGIL_LOG=warn "$BIN" --data-dir "$WORK/data" --listen "127.0.0.1:$PORT" serve 2>>"$WORK/serve.log" &
  SERVER=$!
  for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done
  local before started answer elapsed peak
  before=$(awk '/VmHWM/ {print $2}' "/proc/$SERVER/status")
  started=$(date +%s.%N)
  answer=$(curl -s -H "Authorization: Bearer $KEY" -H "Content-Type: $2" \
      --data-binary "@$1" "http://127.0.0.1:$PORT/api/v1/indicators/import")
  elapsed=$(python3 -c "import time; print(f'{time.time() - $started:.1f}')")
  peak=$(awk '/VmHWM/ {print $2}' "/proc/$SERVER/status")
  echo "$answer" | python3 -c "
import json, sys
a = json.load(sys.stdin)
summary = {k: a[k] for k in ('accepted', 'rejected_count') if k in a}
summary['rejected_listed'] = len(a.get('rejected', []))
if 'detail' in a: summary['detail'] = a['detail']
print('  answer:', summary)" >&2
  printf '%-12s %4d MiB body: peak RSS %4d MiB (%d MiB before), %ss\n' "$3" "$MIB" "$((peak / 1024))" "$((before / 1024))" "$elapsed"
  kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=""
}

echo "== POST /api/v1/indicators/import, SQLite, goal: peak RSS <= 512 MiB =="
import_one "$WORK/junk.csv" text/csv "junk CSV"
import_one "$WORK/junk.json" application/json "junk bundle"
