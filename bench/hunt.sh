#!/usr/bin/env bash
# Offline hunt benchmark: `vigil hunt` against `rg -F -f` (ripgrep's multi-pattern search)
# on the same generated files, timed by hyperfine in one run. Not a test: run it by hand.
#
#   bench/hunt.sh                      # 1,000,000 events, 10,000 indicators
#   EVENTS=200000 INDICATORS=50000 bench/hunt.sh
#
# The two do different jobs: rg finds the indicator text anywhere in a line (including
# free-text fields, so it over-reports), vigil hunt parses each line and looks only at
# IOC-bearing fields. The script prints both match counts so the difference is visible.
# Needs hyperfine and ripgrep (Debian: apt-get install hyperfine ripgrep) and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS="${EVENTS:-1000000}"
INDICATORS="${INDICATORS:-10000}"
THREADS="${THREADS:-$(nproc)}"
for tool in hyperfine rg; do
  command -v "$tool" >/dev/null || { echo "bench/hunt.sh: $tool not found" >&2; exit 2; }
done
cargo build --release --locked -p vigil >&2
BIN=target/release/vigil
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

python3 - "$WORK" "$EVENTS" "$INDICATORS" <<'PY'
import json, random, sys
work, n_events, n_indicators = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(7)
ip = lambda: f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
bad_ips = [ip() for _ in range(n_indicators // 2)]
bad_domains = [f"c2-{i}.bad{rng.randrange(100)}.example" for i in range(n_indicators - len(bad_ips))]
with open(f"{work}/iocs.csv", "w") as out:
    out.write("type,value\n")
    out.writelines(f"ipv4,{v}\n" for v in bad_ips)
    out.writelines(f"domain,{v}\n" for v in bad_domains)
with open(f"{work}/iocs.txt", "w") as out:
    out.writelines(f"{v}\n" for v in bad_ips + bad_domains)
with open(f"{work}/events.jsonl", "w") as out:
    for i in range(n_events):
        hit = rng.random() < 0.001
        event = {
            "@timestamp": "2026-11-23T10:00:00Z", "event": {"id": f"e{i}", "kind": "event"},
            "source": {"ip": ip(), "port": rng.randrange(65536)},
            "destination": {"ip": rng.choice(bad_ips) if hit else ip(), "port": 443},
            "dns": {"question": {"name": rng.choice(bad_domains) if rng.random() < 0.0005 else f"www.site{i % 5000}.example"}},
            "process": {"name": "svchost.exe", "pid": rng.randrange(10000)},
            # Free text that mentions an indicator: not a structured match.
            "message": f"connection seen; analyst note mentions {rng.choice(bad_ips)}" if rng.random() < 0.001 else "connection seen",
        }
        out.write(json.dumps(event) + "\n")
PY
echo "events: $EVENTS ($(du -h "$WORK/events.jsonl" | cut -f1)), indicators: $INDICATORS, threads: $THREADS"
echo "vigil hunt matches: $("$BIN" hunt --indicators "$WORK/iocs.csv" --events "$WORK/events.jsonl" --threads "$THREADS" | wc -l)"
echo "rg -F -f matching lines: $(rg -F -f "$WORK/iocs.txt" -c "$WORK/events.jsonl" || true)"
hyperfine --warmup 1 --runs 5 \
  -n "vigil hunt --threads $THREADS" "$BIN hunt --indicators $WORK/iocs.csv --events $WORK/events.jsonl --threads $THREADS > /dev/null" \
  -n "vigil hunt --threads 1" "$BIN hunt --indicators $WORK/iocs.csv --events $WORK/events.jsonl --threads 1 > /dev/null" \
  -n "rg -F -f" "rg -F -f $WORK/iocs.txt $WORK/events.jsonl > /dev/null"
