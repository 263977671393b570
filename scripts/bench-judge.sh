#!/usr/bin/env bash
# Benchmark: `pipeline analyze` against scipy on the same samples file, side by side in one run.
#
# Generates (seeded, numpy) a samples file with one latency metric of N samples per arm (default 1,000,000;
# log-normal, canary 1 % slower), then times, R times each, alternating:
#   pipeline  : pipeline analyze --json FILE   (read + parse + full judgement + report.json on stdout)
#   scipy     : python3: json.load(FILE) + scipy.stats.mannwhitneyu(canary, baseline, method="asymptotic")
# scipy computes only U and p; pipeline also computes the Hodges–Lehmann shift and its 98 % interval, the tail
# test, summaries and chart data. Prints wall and CPU (user+sys) time, min and median of R runs, and peak
# RSS (CPU time is the fairer figure on a busy shared machine), and checks that U and p
# agree between the two.
#
# Usage: scripts/bench-judge.sh [N] [R]      needs: release build, python3 with numpy and scipy
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000000}
R=${2:-5}
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
python3 -c 'import numpy, scipy' 2>/dev/null || { echo "needs numpy and scipy: pip install numpy scipy" >&2; exit 1; }
cargo build --release --quiet
BIN=target/release/pipeline
WORK=target/bench-judge
mkdir -p "$WORK"
FILE="$WORK/samples-$N.json"

if [ ! -f "$FILE" ]; then
  python3 - "$N" "$FILE" <<'PY'
import json, sys
import numpy as np
n, path = int(sys.argv[1]), sys.argv[2]
rng = np.random.default_rng(20261128)
baseline = rng.lognormal(np.log(20.0), 0.5, n)
canary = rng.lognormal(np.log(20.0), 0.5, n) * 1.01
with open(path, "w") as f:
    json.dump({"metrics": [{"name": "latency_ms", "unit": "ms", "fail_on": "increase",
                            "baseline": baseline.tolist(), "canary": canary.tolist()}]}, f)
PY
fi

cat > "$WORK/scipy_judge.py" <<'PY'
import json, sys
from scipy.stats import mannwhitneyu
with open(sys.argv[1]) as f:
    m = json.load(f)["metrics"][0]
r = mannwhitneyu(m["canary"], m["baseline"], alternative="two-sided", use_continuity=True, method="asymptotic")
print(json.dumps({"u": float(r.statistic), "p_value": float(r.pvalue)}))
PY

# time_one OUTFILE CMD... → prints "wall_s user_s sys_s max_rss_kb"
time_one() {
  local out=$1; shift
  /usr/bin/time -f "%e %U %S %M" -o "$WORK/time.txt" "$@" > "$out" || { rc=$?; [ $rc -le 5 ] || exit $rc; }
  cat "$WORK/time.txt"
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "file: $FILE ($(du -h "$FILE" | cut -f1), $N samples per arm), $R runs each, alternating"
: > "$WORK/pipeline.times"; : > "$WORK/scipy.times"
for _ in $(seq "$R"); do
  time_one "$WORK/pipeline.out" "$BIN" analyze --json "$FILE" >> "$WORK/pipeline.times"
  time_one "$WORK/scipy.out" python3 "$WORK/scipy_judge.py" "$FILE" >> "$WORK/scipy.times"
done

python3 - "$WORK" <<'PY'
import json, statistics, sys
w = sys.argv[1]
def stats(name):
    rows = [l.split() for l in open(f"{w}/{name}.times") if l[:1].isdigit()]
    t = sorted(float(r[0]) for r in rows)
    cpu = sorted(float(r[1]) + float(r[2]) for r in rows)
    rss = max(int(r[3]) for r in rows)
    return min(t), statistics.median(t), min(cpu), statistics.median(cpu), rss / 1024
p = json.load(open(f"{w}/pipeline.out"))["metrics"][0]
s = json.load(open(f"{w}/scipy.out"))
print(f"{'':10} {'wall min s':>10} {'wall median s':>13} {'CPU min s':>10} {'CPU median s':>12} {'peak RSS MB':>12}")
for name in ["pipeline", "scipy"]:
    mn, md, cmn, cmd, rss = stats(name)
    print(f"{name:10} {mn:10.2f} {md:13.2f} {cmn:10.2f} {cmd:12.2f} {rss:12.0f}")
print(f"U: pipeline {p['u']:.1f}, scipy {s['u']:.1f}; p: pipeline {p['p_value']:.12g}, scipy {s['p_value']:.12g}")
print(f"pipeline also: HL shift {p['estimate']:.6g} ms, 98% CI [{p['ci'][0]:.6g}, {p['ci'][1]:.6g}], {p['classification']}")
assert p["u"] == s["u"], "U differs"
assert abs(p["p_value"] - s["p_value"]) <= 1e-9 * max(s["p_value"], 1e-300) or abs(p["p_value"] - s["p_value"]) < 1e-12, "p differs"
PY
