#!/usr/bin/env bash
# Offline hunt benchmark: `vigil hunt` against ripgrep's multi-pattern search and DuckDB's
# field-aware hash join, on the same generated files, in one run. Not a test: run it by hand.
#
#   bench/hunt.sh                                  # 1,000,000 indicators, 2,000,000 events (~1.2 GB)
#   EVENTS=20000 INDICATORS=20000 RUNS=2 bench/hunt.sh   # smoke test
#
# What is compared, on the same iocs.csv / values.txt / events.jsonl:
#   vigil   vigil hunt --indicators iocs.csv --events events.jsonl --threads $THREADS --format tsv
#   rg      rg -c -F -f values.txt events.jsonl   (ripgrep from Debian: counts lines that contain
#           any indicator text anywhere, so it also counts the decoys in `message` and substrings)
#   duckdb  the `duckdb` PyPI package, SET threads=$THREADS: read_ndjson with an explicit schema
#           of the IOC fields, unnest them into (event_id, field, value) and hash-join with the
#           indicators on compatible (field, type) pairs; distinct (event_id, field, value)
# The generator is deterministic: 35% IPv4, 30% domains, 20% SHA-256, 15% MD5 indicators;
# ECS-shaped events of ~600 bytes with a few planted hits in IOC fields (source.ip,
# destination.ip, dns.question.name, url.domain, file.hash.sha256, file.hash.md5) and decoys
# (indicator values in `message` only). Every value is generated already normalized.
#
# The script fails (exit 1) unless vigil's (event_id, field, value) set equals DuckDB's. It then
# times the three with hyperfine ($RUNS runs), reports peak RSS (GNU time -v, from one run each)
# and prints the ratios against the goal: vigil >= 100x faster than rg, >= 4x faster than DuckDB,
# peak RSS <= 1 GiB. rg with a million patterns is slow: a run longer than $TIMEOUT seconds is
# stopped and reported as a lower bound; one longer than $RG_HYPERFINE_MAX seconds is not
# repeated by hyperfine (its single timed run is reported).
#
# Environment: EVENTS, INDICATORS, THREADS (2), RUNS (3), TIMEOUT (600), RG_HYPERFINE_MAX (120),
# VIGIL_BIN (a vigil binary to use instead of `cargo build --release --locked -p vigil`),
# BENCH_DIR (target/bench-hunt: generated files, kept and reused per size), BENCH_VENV
# (target/bench-venv: created with `pip install duckdb==$DUCKDB_VERSION` when missing).
# Needs hyperfine, ripgrep and GNU time (Debian: apt-get install hyperfine ripgrep time) and
# python3 with venv.
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS="${EVENTS:-2000000}"
INDICATORS="${INDICATORS:-1000000}"
THREADS="${THREADS:-2}"
RUNS="${RUNS:-3}"
TIMEOUT="${TIMEOUT:-600}"
RG_HYPERFINE_MAX="${RG_HYPERFINE_MAX:-120}"
BENCH_DIR="${BENCH_DIR:-target/bench-hunt}"
VENV="${BENCH_VENV:-target/bench-venv}"
DUCKDB_VERSION=1.5.6
# Bump when the generator changes, so that cached files are made anew.
GENERATOR_VERSION=1

for tool in hyperfine rg python3 timeout /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "bench/hunt.sh: $tool not found" >&2; exit 2; }
done
if [[ -n "${VIGIL_BIN:-}" ]]; then
  BIN="$VIGIL_BIN"
else
  cargo build --release --locked -p vigil >&2
  BIN=target/release/vigil
fi

if ! "$VENV/bin/python" -c "import duckdb, sys; sys.exit(duckdb.__version__ != '$DUCKDB_VERSION')" 2>/dev/null; then
  echo "bench/hunt.sh: installing duckdb==$DUCKDB_VERSION into $VENV" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet "duckdb==$DUCKDB_VERSION" >&2
fi
PY="$VENV/bin/python"

DATA="$BENCH_DIR/g$GENERATOR_VERSION-i$INDICATORS-e$EVENTS"
if [[ ! -f "$DATA/complete" ]]; then
  echo "bench/hunt.sh: generating $INDICATORS indicators and $EVENTS events in $DATA" >&2
  rm -rf "$DATA"
  mkdir -p "$DATA"
  python3 - "$DATA" "$EVENTS" "$INDICATORS" <<'PY'
import json, random, sys

data, n_events, n_indicators = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(20261123)
bits, rand, choice = rng.getrandbits, rng.random, rng.choice

# Indicators. Bad IPv4 addresses have a first octet of 1-126 (not 10), the events' own
# addresses come from 10/8 (source) and 128-223 (destination), and benign domains use other
# words than bad ones: a value is an indicator only where one was planted.
n_ip = n_indicators * 35 // 100
n_domain = n_indicators * 30 // 100
n_sha256 = n_indicators * 20 // 100
n_md5 = n_indicators - n_ip - n_domain - n_sha256

def bad_ip():
    x = bits(32)
    first = 1 + (x >> 24) % 125
    first += first >= 10
    return f"{first}.{x >> 16 & 255}.{x >> 8 & 255}.{x & 255}"

bad_ips = set()
while len(bad_ips) < n_ip:
    bad_ips.add(bad_ip())
bad_ips = sorted(bad_ips)
rng.shuffle(bad_ips)
hosts = ["cdn", "api", "update", "login", "mail", "sync", "static", "portal", "auth", "files"]
words = ["darkpanda", "evilcorp", "stormbyte", "blackhat", "malnet", "phishy", "c2relay",
         "ransomx", "trojanik", "botfarm"]
tlds = ["com", "net", "org", "info", "xyz", "top", "ru", "io"]
bad_domains = [f"{choice(hosts)}{i:x}.{choice(words)}-{choice(words)}.{choice(tlds)}"
               for i in range(n_domain)]
bad_sha256 = [f"{bits(256):064x}" for _ in range(n_sha256)]
bad_md5 = [f"{bits(128):032x}" for _ in range(n_md5)]
bad = {"ipv4": bad_ips, "domain": bad_domains, "sha256": bad_sha256, "md5": bad_md5}
with open(f"{data}/iocs.csv", "w") as out:
    out.write("type,value\n")
    for kind, values in bad.items():
        out.writelines(f"{kind},{v}\n" for v in values)
with open(f"{data}/values.txt", "w") as out:
    for values in bad.values():
        out.writelines(f"{v}\n" for v in values)

# Events.
benign_domains = [f"{choice(['www', 'img', 'app', 'static', 'docs'])}."
                  f"{choice(['contoso', 'fabrikam', 'northwind', 'tailspin', 'wingtip', 'litware'])}"
                  f"{k}.{choice(['com', 'net', 'org', 'de', 'fr'])}" for k in range(20000)]
users = [f"user{n:04d}" for n in range(2000)]
hostnames = [f"ws-{n:04d}.corp.local" for n in range(1000)]
processes = [(name, json.dumps(exe)[1:-1]) for name, exe in [
    ("svchost.exe", r"C:\Windows\System32\svchost.exe"),
    ("chrome.exe", r"C:\Program Files\Google\Chrome\Application\chrome.exe"),
    ("powershell.exe", r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe"),
    ("outlook.exe", r"C:\Program Files\Microsoft Office\root\Office16\OUTLOOK.EXE"),
    ("curl", "/usr/bin/curl"), ("python3", "/usr/bin/python3"), ("sshd", "/usr/sbin/sshd"),
]]
agents = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "curl/8.11.0",
    "Microsoft-CryptoAPI/10.0",
]
kinds = [("network", "zeek.conn", "connection"), ("network", "zeek.dns", "dns query"),
         ("process", "sysmon", "process start"), ("file", "endpoint.file", "file created"),
         ("web", "proxy", "http request")]
filler = ("lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor "
          "incididunt ut labore et dolore magna aliqua ut enim ad minim veniam quis nostrud "
          "exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat ") * 8
# Per event: probability of a planted hit in each IOC field (dns, url and file fields only on
# events that carry them) and of a decoy in `message`.
P_DST, P_SRC, P_DNS, P_URL, P_FILE, P_DECOY = 0.001, 0.0005, 0.002, 0.002, 0.003, 0.003
planted = dict.fromkeys(["source.ip", "destination.ip", "dns.question.name", "url.domain",
                         "file.hash.sha256", "file.hash.md5"], 0)
n_decoys = 0
n_bytes = 0
all_kinds = list(bad)
with open(f"{data}/events.jsonl", "w") as out:
    buf = []
    for i in range(n_events):
        ms = i * 20
        ts = f"2026-11-23T{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}Z"
        category, dataset, action = kinds[i % 5]
        x = bits(32)
        if rand() < P_SRC:
            src = choice(bad_ips)
            planted["source.ip"] += 1
        else:
            src = f"10.{x >> 16 & 255}.{x >> 8 & 255}.{x & 255}"
        x = bits(32)
        if rand() < P_DST:
            dst = choice(bad_ips)
            planted["destination.ip"] += 1
        else:
            dst = f"{128 + (x >> 24) % 96}.{x >> 16 & 255}.{x >> 8 & 255}.{x & 255}"
        extra = ""
        if category in ("network", "web") or rand() < 0.1:
            if rand() < P_DNS:
                name = choice(bad_domains)
                planted["dns.question.name"] += 1
            else:
                name = choice(benign_domains)
            extra += f'"dns":{{"question":{{"name":"{name}","type":"A"}}}},'
        if category == "web" or rand() < 0.05:
            if rand() < P_URL:
                domain = choice(bad_domains)
                planted["url.domain"] += 1
            else:
                domain = choice(benign_domains)
            extra += (f'"url":{{"domain":"{domain}","path":"/index-{x & 1023}.html","scheme":"https"}},'
                      f'"user_agent":{{"original":"{agents[x % 5]}"}},')
        if category == "file" or rand() < 0.05:
            if rand() < P_FILE:
                sha256 = choice(bad_sha256)
                planted["file.hash.sha256"] += 1
            else:
                sha256 = f"{bits(256):064x}"
            if rand() < P_FILE:
                md5 = choice(bad_md5)
                planted["file.hash.md5"] += 1
            else:
                md5 = f"{bits(128):032x}"
            extra += (f'"file":{{"name":"report-{x & 4095}.pdf","size":{x >> 12},'
                      f'"hash":{{"sha256":"{sha256}","md5":"{md5}"}}}},')
        pname, pexe = processes[x % 7]
        user = users[x % 2000]
        host = hostnames[(x >> 11) % 1000]
        head = (f'{{"@timestamp":"{ts}","event":{{"id":"evt-{i:09d}","kind":"event",'
                f'"category":"{category}","dataset":"{dataset}"}},"host":{{"name":"{host}"}},'
                f'"source":{{"ip":"{src}","port":{1024 + x % 60000}}},'
                f'"destination":{{"ip":"{dst}","port":{(443, 80, 53, 8443)[x & 3]}}},'
                f'"network":{{"transport":"tcp"}},{extra}'
                f'"process":{{"name":"{pname}","pid":{x % 65536},"executable":"{pexe}"}},'
                f'"user":{{"name":"{user}"}},'
                f'"message":"')
        message = f"{action} by {user} on {host}"
        if rand() < P_DECOY:
            decoy = choice(bad[choice(all_kinds)])
            message += f"; analyst note: {decoy} was seen in a threat report"
            n_decoys += 1
        pad = 520 + (x >> 5) % 128 - len(head) - len(message) - 3
        if pad > 0:
            message += " " + filler[:pad]
        line = f'{head}{message}"}}\n'
        n_bytes += len(line)
        buf.append(line)
        if len(buf) >= 20000:
            out.write("".join(buf))
            buf.clear()
    out.write("".join(buf))

with open(f"{data}/events.jsonl") as f:
    for n, line in enumerate(f):
        if n >= 5000:
            break
        json.loads(line)
stats = {"planted": planted, "planted_total": sum(planted.values()), "decoys": n_decoys,
         "bytes": n_bytes}
with open(f"{data}/planted.json", "w") as out:
    json.dump(stats, out)
PY
  touch "$DATA/complete"
fi

OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
cat >"$OUT/duck_hunt.py" <<'PY'
# duck_hunt.py EVENTS IOCS OUT THREADS: DuckDB's structured answer, distinct
# (event_id, field, value) as TSV.
import sys
import duckdb

events, iocs, out, threads = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
lit = lambda s: "'" + s.replace("'", "''") + "'"
con = duckdb.connect()
con.execute(f"SET threads={threads}")
con.execute("SET preserve_insertion_order=false")
con.execute(f"""
COPY (
  WITH ioc AS (
    SELECT type, value
    FROM read_csv({lit(iocs)}, header=true, columns={{'type': 'VARCHAR', 'value': 'VARCHAR'}})
  ),
  -- Fields and the indicator types a value there may be (vigil_matcher::FIELDS).
  compat(field, type) AS (VALUES
    ('source.ip', 'ipv4'), ('destination.ip', 'ipv4'),
    ('dns.question.name', 'domain'), ('dns.question.name', 'ipv4'),
    ('url.domain', 'domain'), ('url.domain', 'ipv4'),
    ('file.hash.sha256', 'sha256'), ('file.hash.md5', 'md5')
  ),
  obs AS (
    SELECT event_id, o.field AS field, o.value AS value
    FROM (
      SELECT event.id AS event_id, unnest([
        {{'field': 'source.ip', 'value': source.ip}},
        {{'field': 'destination.ip', 'value': destination.ip}},
        {{'field': 'dns.question.name', 'value': dns.question.name}},
        {{'field': 'url.domain', 'value': url.domain}},
        {{'field': 'file.hash.sha256', 'value': file.hash.sha256}},
        {{'field': 'file.hash.md5', 'value': file.hash.md5}}
      ]) AS o
      FROM read_ndjson({lit(events)}, columns={{
        'event': 'STRUCT(id VARCHAR)',
        'source': 'STRUCT(ip VARCHAR)',
        'destination': 'STRUCT(ip VARCHAR)',
        'dns': 'STRUCT(question STRUCT(name VARCHAR))',
        'url': 'STRUCT(domain VARCHAR)',
        'file': 'STRUCT(hash STRUCT(sha256 VARCHAR, md5 VARCHAR))'
      }})
    )
    WHERE o.value IS NOT NULL
  )
  SELECT DISTINCT obs.event_id, obs.field, obs.value
  FROM obs JOIN compat USING (field) JOIN ioc ON ioc.type = compat.type AND ioc.value = obs.value
) TO {lit(out)} (FORMAT csv, DELIMITER '\t', HEADER false)
""")
PY

# measure NAME CMD...: runs CMD once under GNU time with stdout to $OUT/NAME.out; records the
# exit status, the wall time in seconds and the peak RSS in KiB in $OUT/NAME.{status,wall,rss}.
measure() {
  local name=$1 start end status=0
  shift
  start=$(date +%s%N)
  /usr/bin/time -v -o "$OUT/$name.time" "$@" >"$OUT/$name.out" || status=$?
  end=$(date +%s%N)
  echo "$status" >"$OUT/$name.status"
  echo "$(( (end - start) / 1000000 ))" | awk '{ printf "%.3f\n", $1 / 1000 }' >"$OUT/$name.wall"
  awk -F': ' '/Maximum resident set size/ { print $2 }' "$OUT/$name.time" >"$OUT/$name.rss"
}

EV="$DATA/events.jsonl"
IOCS="$DATA/iocs.csv"
VALUES="$DATA/values.txt"
echo "indicators: $INDICATORS, events: $EVENTS ($(du -h "$EV" | cut -f1)), threads: $THREADS, data: $DATA"
echo "generated: $(cat "$DATA/planted.json")"

# One run of each: the match sets, the peak RSS, and warm page cache for the timed runs.
echo "one run each (vigil, duckdb, rg with a ${TIMEOUT}s limit)..." >&2
measure vigil "$BIN" hunt --indicators "$IOCS" --events "$EV" --threads "$THREADS" --format tsv
[[ $(cat "$OUT/vigil.status") -le 1 ]] || { echo "bench/hunt.sh: vigil hunt failed" >&2; exit 2; }
measure duckdb "$PY" "$OUT/duck_hunt.py" "$EV" "$IOCS" "$OUT/duckdb.tsv" "$THREADS"
[[ $(cat "$OUT/duckdb.status") -eq 0 ]] || { echo "bench/hunt.sh: duckdb failed" >&2; exit 2; }
measure rg timeout "$TIMEOUT" rg -c -F -f "$VALUES" "$EV"
rg_status=$(cat "$OUT/rg.status")
[[ $rg_status -le 1 || $rg_status -eq 124 ]] || { echo "bench/hunt.sh: rg failed" >&2; exit 2; }

cut -f1-3 "$OUT/vigil.out" | LC_ALL=C sort -u >"$OUT/vigil.set"
LC_ALL=C sort -u "$OUT/duckdb.tsv" >"$OUT/duckdb.set"
n_vigil=$(wc -l <"$OUT/vigil.out")
n_vigil_set=$(wc -l <"$OUT/vigil.set")
n_duckdb_set=$(wc -l <"$OUT/duckdb.set")
echo "vigil: $n_vigil matches, $n_vigil_set distinct (event_id, field, value); duckdb: $n_duckdb_set"
if ! cmp -s "$OUT/vigil.set" "$OUT/duckdb.set"; then
  echo "FAIL: the match sets differ" >&2
  echo "only vigil ($(LC_ALL=C comm -23 "$OUT/vigil.set" "$OUT/duckdb.set" | wc -l)):" >&2
  LC_ALL=C comm -23 "$OUT/vigil.set" "$OUT/duckdb.set" | head -5 >&2
  echo "only duckdb ($(LC_ALL=C comm -13 "$OUT/vigil.set" "$OUT/duckdb.set" | wc -l)):" >&2
  LC_ALL=C comm -13 "$OUT/vigil.set" "$OUT/duckdb.set" | head -5 >&2
  exit 1
fi
echo "match sets equal"

q() { printf '%q' "$1"; }
VIGIL_CMD="$(q "$BIN") hunt --indicators $(q "$IOCS") --events $(q "$EV") --threads $THREADS --format tsv > /dev/null"
DUCKDB_CMD="$(q "$PY") $(q "$OUT/duck_hunt.py") $(q "$EV") $(q "$IOCS") $(q "$OUT/duckdb-timed.tsv") $THREADS"
RG_CMD="rg -c -F -f $(q "$VALUES") $(q "$EV") > /dev/null"
hf=(hyperfine --runs "$RUNS" --export-json "$OUT/hyperfine.json" -n vigil "$VIGIL_CMD" -n duckdb "$DUCKDB_CMD")
if [[ $rg_status -ne 124 ]] && awk -v t="$(cat "$OUT/rg.wall")" -v m="$RG_HYPERFINE_MAX" 'BEGIN { exit !(t < m) }'; then
  hf+=(-n rg "$RG_CMD")
fi
"${hf[@]}"

"$PY" - "$OUT" "$RUNS" "$TIMEOUT" "$n_vigil" "$n_vigil_set" "$n_duckdb_set" <<'PY'
import json, sys

out, runs, timeout = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
n_vigil, n_vigil_set, n_duckdb_set = sys.argv[4:7]
read = lambda name, ext: open(f"{out}/{name}.{ext}").read().strip()
timed = {r["command"]: r for r in json.load(open(f"{out}/hyperfine.json"))["results"]}
rg_status = int(read("rg", "status"))
rows = []
for tool, label in [("vigil", "vigil hunt"), ("duckdb", "duckdb"), ("rg", "rg -c -F -f")]:
    if tool in timed:
        mean, sd = timed[tool]["mean"], timed[tool]["stddev"] or 0.0
        wall, shown, bound = mean, f"{mean:.2f} ± {sd:.2f} ({runs} runs)", ""
    elif rg_status == 124:
        wall, shown, bound = float(timeout), f"> {timeout} (stopped)", ">"
    else:
        wall = float(read(tool, "wall"))
        shown, bound = f"{wall:.2f} (1 run)", ""
    rss = int(read(tool, "rss") or 0)
    rows.append((tool, label, wall, shown, bound, rss))
vigil_wall = rows[0][2]
rg_count = read("rg", "out") or "-"
matches = {
    "vigil": f"{n_vigil} ({n_vigil_set} distinct)",
    "duckdb": f"{n_duckdb_set} distinct",
    "rg": f"{rg_count} lines" if rg_status != 124 else "-",
}
print()
print(f"{'tool':<14}{'wall s':<28}{'vs vigil':<12}{'peak RSS':<12}matches")
ratios = {}
for tool, label, wall, shown, bound, rss in rows:
    ratios[tool] = (wall / vigil_wall, bound)
    ratio = f"{bound}{wall / vigil_wall:.1f}x"
    print(f"{label:<14}{shown:<28}{ratio:<12}{rss / 1024:>7.0f} MiB  {matches[tool]}")
print()
vigil_rss = rows[0][5] / 1024
for tool, goal in [("rg", 100), ("duckdb", 4)]:
    ratio, bound = ratios[tool]
    ok = "met" if ratio >= goal else ("not known" if bound else "MISSED")
    print(f"goal vigil >= {goal}x faster than {tool}: {bound}{ratio:.1f}x, {ok}")
print(f"goal peak RSS <= 1024 MiB: {vigil_rss:.0f} MiB, {'met' if vigil_rss <= 1024 else 'MISSED'}")
PY
