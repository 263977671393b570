#!/usr/bin/env bash
# Benchmark of the judge, side by side in one run (figures for BENCHMARKS.md, section "judge"):
#
# 1. `pipeline analyze --json` against scipy on the same samples file. Generates (seeded, numpy) a samples
#    file with one latency metric of N samples per arm (default 1,000,000; log-normal, canary 1 % slower,
#    values rounded to 1 µs as the canary records them), then times with hyperfine, alternating:
#      pipeline : pipeline analyze --json FILE   (read + parse + full judgement + report.json on stdout)
#      scipy    : python3: json.load(FILE) + scipy.stats.mannwhitneyu(canary, baseline, method="asymptotic")
#    scipy computes only U and p; pipeline also computes the Hodges–Lehmann shift and its 98 % interval, the
#    tail and KS tests, power, summaries and chart data. Also one /usr/bin/time run of each for CPU time and
#    peak RSS (CPU time is the fairer figure on a busy shared machine). Checks that U and p agree.
# 2. One sequential look on 100,000 samples per arm (the 20th of 20, default metrics): the ignored test
#    `benchmark_one_sequential_look_on_100k_samples_per_arm` in tests/judge_simulation.rs, release build.
#
# Usage: scripts/bench-judge.sh [N] [R]      R = hyperfine runs per command (default 10)
# Needs: cargo, hyperfine, python3. numpy and scipy come from PyPI into target/bench-judge/venv when the
# python3 on PATH lacks them.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000000}
R=${2:-10}
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
command -v hyperfine >/dev/null || { echo "needs hyperfine (apt-get install hyperfine)" >&2; exit 1; }
WORK=target/bench-judge
mkdir -p "$WORK"
PY=python3
if ! python3 -c 'import numpy, scipy' 2>/dev/null; then
  if ! "$WORK/venv/bin/python" -c 'import numpy, scipy' 2>/dev/null; then
    echo "== creating $WORK/venv with numpy and scipy from PyPI"
    python3 -m venv "$WORK/venv"
    "$WORK/venv/bin/pip" install --quiet numpy scipy
  fi
  PY="$PWD/$WORK/venv/bin/python"
fi
cargo build --release --quiet
BIN=target/release/pipeline
FILE="$WORK/samples-$N-us.json"

if [ ! -f "$FILE" ]; then
  "$PY" - "$N" "$FILE" <<'PY'
import json, sys
import numpy as np
n, path = int(sys.argv[1]), sys.argv[2]
rng = np.random.default_rng(20261128)
baseline = np.round(rng.lognormal(np.log(20.0), 0.5, n), 3)
canary = np.round(rng.lognormal(np.log(20.0), 0.5, n) * 1.01, 3)
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

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/ {print $2}') GB RAM"
echo "pipeline $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src || echo '+changes'); $("$PY" -c 'import scipy, sys; print("scipy", scipy.__version__, "python", sys.version.split()[0])')"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "file: $FILE ($(du -h "$FILE" | cut -f1), $N samples per arm)"

echo "== 1. analyze vs scipy (hyperfine, $R runs each; pipeline exits 4 on this FAIL verdict, hence --ignore-failure)"
hyperfine --style basic --ignore-failure --warmup 1 --runs "$R" --export-json "$WORK/hyperfine.json" \
  -n pipeline "$BIN analyze --json $FILE > $WORK/pipeline.out" \
  -n scipy "$PY $WORK/scipy_judge.py $FILE > $WORK/scipy.out"
for name in pipeline scipy; do
  case $name in
    pipeline) cmd=("$BIN" analyze --json "$FILE") ;;
    scipy) cmd=("$PY" "$WORK/scipy_judge.py" "$FILE") ;;
  esac
  /usr/bin/time -f "%e %U %S %M" -o "$WORK/$name.time" "${cmd[@]}" > /dev/null || { rc=$?; [ $rc -le 5 ] || exit $rc; }
done

"$PY" - "$WORK" <<'PY'
import json, sys
w = sys.argv[1]
h = {r["command"]: r for r in json.load(open(f"{w}/hyperfine.json"))["results"]}
med = {k: v["median"] for k, v in h.items()}
print(f"{'':10} {'wall median s':>13} {'wall min s':>10} {'wall max s':>10} {'CPU s (1 run)':>13} {'peak RSS MB':>11}")
for name in ["pipeline", "scipy"]:
    wall, user, sys_, rss = open(f"{w}/{name}.time").read().strip().splitlines()[-1].split()
    r = h[name]
    print(f"{name:10} {r['median']:13.3f} {r['min']:10.3f} {r['max']:10.3f} {float(user) + float(sys_):13.2f} {int(rss) / 1024:11.0f}")
print(f"ratio pipeline/scipy of the wall medians: {med['pipeline'] / med['scipy']:.2f}x (issue 12: at most 0.5x)")
p = json.load(open(f"{w}/pipeline.out"))["metrics"][0]
s = json.load(open(f"{w}/scipy.out"))
print(f"U: pipeline {p['u']:.1f}, scipy {s['u']:.1f}; p: pipeline {p['p_value']:.12g}, scipy {s['p_value']:.12g}")
print(f"pipeline also: HL shift {p['estimate']:.6g} ms, 98% CI [{p['ci'][0]:.6g}, {p['ci'][1]:.6g}], {p['classification']}")
assert p["u"] == s["u"], "U differs"
assert abs(p["p_value"] - s["p_value"]) <= 1e-9 * max(s["p_value"], 1e-300) or abs(p["p_value"] - s["p_value"]) < 1e-12, "p differs"
PY

echo "== 2. one sequential look on 100,000 samples per arm (issue 12: at most 100 ms)"
cargo test --release --quiet --test judge_simulation -- --ignored --nocapture \
  benchmark_one_sequential_look_on_100k_samples_per_arm 2>&1 | grep -E '^look '
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
