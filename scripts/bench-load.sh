#!/usr/bin/env bash
# Reproduces the `load` comparison in BENCHMARKS.md: `pipeline load` against wrk and oha, side by side in one
# run, against one loopback nginx (1 worker, 6-byte static body) with the same connection counts.
#
#   scripts/bench-load.sh                      # 10 s per run, 3 rounds, 10 and 50 connections, 60 s memory run
#   DURATION=5 ROUNDS=1 MEMORY_SECONDS=20 scripts/bench-load.sh    # quicker
#
# Tools run in turn within each round, so slow drifts of a shared machine hit all of them alike; the table
# shows the median over rounds. Peak RSS comes from /usr/bin/time (maximum resident set size).
# KEEP=1 keeps the raw tool outputs. Needs: nginx, wrk, oha (`cargo install oha --locked`; set OHA=/path/to/oha), python3, /usr/bin/time.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-"10 50"}
MEMORY_SECONDS=${MEMORY_SECONDS:-60}
RATE=${RATE:-20000}
PORT=${PORT:-18480}
PIPELINE=${PIPELINE:-target/release/pipeline}
OHA=${OHA:-$(command -v oha || echo "$HOME/.cargo/bin/oha")}

for tool in nginx wrk python3 /usr/bin/time "$OHA"; do
    command -v "$tool" >/dev/null || { echo "error: $tool not found (see the header of $0)" >&2; exit 1; }
done
if [ -z "${SKIP_BUILD:-}" ]; then
    cargo build --release --quiet
fi

work=$(mktemp -d /tmp/bench-load.XXXXXX)
nginx_pid=""
cleanup() {
    [ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null || true
    if [ -n "${KEEP:-}" ]; then echo "raw outputs kept in $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

mkdir -p "$work/html" "$work/logs"
chmod 755 "$work" "$work/html"  # nginx workers run as an unprivileged user when started by root
printf 'hello\n' >"$work/html/index.html"
cat >"$work/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $work/nginx.pid;
error_log $work/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000000;
    keepalive_timeout 300s;
    server {
        listen 127.0.0.1:$PORT;
        root $work/html;
    }
}
CONF
nginx -p "$work" -c "$work/nginx.conf" -e "$work/logs/error.log" &
nginx_pid=$!
for _ in $(seq 50); do
    curl -sf "http://127.0.0.1:$PORT/" >/dev/null 2>&1 && break
    sleep 0.1
done
url="http://127.0.0.1:$PORT/"
curl -sf "$url" >/dev/null || { echo "error: nginx did not start; see $work/logs/error.log" >&2; exit 1; }

results="$work/results.tsv"
# run NAME CONNS ROUND SECONDS -- command...: runs one tool, appends "name conns round rss_kb output_file".
run() {
    local name=$1 conns=$2 round=$3 out="$work/out.$RANDOM.$RANDOM"
    shift 4
    /usr/bin/time -f '%M' -o "$out.rss" "$@" >"$out" 2>"$out.err" || {
        echo "error: $name failed:" >&2; cat "$out.err" >&2; exit 1; }
    printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$conns" "$round" "$(tail -1 "$out.rss")" "$out" >>"$results"
}

{
    echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(free -g | awk '/Mem:/ {print $2}') GB RAM"
    echo "kernel: $(uname -r); $(nginx -v 2>&1); $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2); oha $("$OHA" --version | awk '{print $2}'); $("$PIPELINE" --version)"
    echo "load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "settings: DURATION=${DURATION}s ROUNDS=$ROUNDS CONNS='$CONNS' MEMORY_SECONDS=$MEMORY_SECONDS RATE=$RATE"
} | tee "$work/machine.txt"

for round in $(seq "$ROUNDS"); do
    for c in $CONNS; do
        echo "round $round, $c connections ..." >&2
        run "wrk -t1" "$c" "$round" "$DURATION" wrk -t1 -c"$c" -d"${DURATION}s" --latency "$url"
        run "wrk -t2" "$c" "$round" "$DURATION" wrk -t2 -c"$c" -d"${DURATION}s" --latency "$url"
        run "oha" "$c" "$round" "$DURATION" "$OHA" --no-tui --output-format json -c "$c" -z "${DURATION}s" "$url"
        run "pipeline -t1" "$c" "$round" "$DURATION" "$PIPELINE" -q load "$url" -c "$c" -d "${DURATION}s" -t 1 --json
        run "pipeline -t2" "$c" "$round" "$DURATION" "$PIPELINE" -q load "$url" -c "$c" -d "${DURATION}s" -t 2 --json
    done
done

echo "constant rate $RATE req/s, 50 connections ..." >&2
run "oha -q --latency-correction" 50 rate "$DURATION" "$OHA" --no-tui --output-format json -c 50 -z "${DURATION}s" -q "$RATE" --latency-correction "$url"
run "pipeline -R" 50 rate "$DURATION" "$PIPELINE" -q load "$url" -c 50 -d "${DURATION}s" -R "$RATE" --json

echo "memory: ${MEMORY_SECONDS} s at full speed, 50 connections ..." >&2
run "wrk -t1" 50 memory "$MEMORY_SECONDS" wrk -t1 -c50 -d"${MEMORY_SECONDS}s" --latency "$url"
run "oha" 50 memory "$MEMORY_SECONDS" "$OHA" --no-tui --output-format json -c 50 -z "${MEMORY_SECONDS}s" "$url"
run "pipeline -t1" 50 memory "$MEMORY_SECONDS" "$PIPELINE" -q load "$url" -c 50 -d "${MEMORY_SECONDS}s" -t 1 --json

python3 - "$results" <<'PY'
import json, re, statistics, sys
from collections import defaultdict

def wrk(text):
    unit = {"us": 1e-3, "ms": 1.0, "s": 1e3}
    pct = {m.group(1): float(m.group(2)) * unit[m.group(3)]
           for m in re.finditer(r"^\s+(\d+)%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)}
    reqs = int(re.search(r"(\d+) requests in", text).group(1))
    return dict(rps=float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)), requests=reqs,
                p50=pct.get("50"), p99=pct.get("99"), p999=None)

def oha(text):
    d = json.loads(text)
    p = d["latencyPercentiles"]
    ms = lambda v: None if v is None else v * 1e3
    total = sum(d["statusCodeDistribution"].values())
    return dict(rps=d["summary"]["requestsPerSec"], requests=total,
                p50=ms(p["p50"]), p99=ms(p["p99"]), p999=ms(p["p99.9"]))

def pipeline(text):
    d = json.loads(text)
    l = d["latency_ms"]
    return dict(rps=d["rps"], requests=d["requests"], p50=l["p50"], p99=l["p99"], p999=l["p999"])

rows = defaultdict(list)
for line in open(sys.argv[1]):
    name, conns, rnd, rss, path = line.rstrip("\n").split("\t")
    text = open(path).read()
    parse = wrk if name.startswith("wrk") else oha if name.startswith("oha") else pipeline
    r = parse(text)
    r["rss_mb"] = int(rss) / 1024
    kind = rnd if rnd in ("rate", "memory") else "speed"
    rows[(kind, name, int(conns))].append(r)

def fmt(v, spec):
    return "–" if v is None else format(v, spec)

def med(rs, key):
    vals = [r[key] for r in rs if r[key] is not None]
    return statistics.median(vals) if vals else None

print()
print("Throughput and latency (median over rounds; latency in ms; wrk reports no p99.9):")
print()
print("| conns | tool | req/s | p50 | p99 | p99.9 | peak RSS MB | req/s in each round |")
print("|---:|---|---:|---:|---:|---:|---:|---|")
for (kind, name, conns), rs in sorted(rows.items(), key=lambda kv: (kv[0][2], kv[0][1])):
    if kind != "speed":
        continue
    print(f"| {conns} | {name} | {med(rs,'rps'):,.0f} | {fmt(med(rs,'p50'),'.3f')} | {fmt(med(rs,'p99'),'.3f')} "
          f"| {fmt(med(rs,'p999'),'.3f')} | {max(r['rss_mb'] for r in rs):.1f} "
          f"| {' '.join(format(r['rps'], ',.0f') for r in rs)} |")
for kind, title in (("rate", "Constant rate (open model, latency from the scheduled send time):"),
                    ("memory", "Memory: one long run at full speed:")):
    print()
    print(title)
    print()
    print("| conns | tool | requests | req/s | p50 | p99 | p99.9 | peak RSS MB | bytes/request |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for (k, name, conns), rs in sorted(rows.items()):
        if k != kind:
            continue
        r = rs[0]
        print(f"| {conns} | {name} | {r['requests']:,} | {r['rps']:,.0f} | {fmt(r['p50'],'.3f')} | {fmt(r['p99'],'.3f')} "
              f"| {fmt(r['p999'],'.3f')} | {r['rss_mb']:.1f} | {r['rss_mb']*1048576/max(r['requests'],1):.1f} |")
PY
