#!/usr/bin/env python3
"""Reference values for src/canary/judge/shape.rs (one-sided two-sample KS, scipy method='asymp').

Run: python3 scripts/ks-reference.py   (needs scipy; the values are committed in the unit test)."""
import numpy as np
from scipy.stats import ks_2samp

b = np.array([((i * 37) % 101) + 0.25 * (i % 7) for i in range(300)], dtype=float)
c = np.array([((i * 53) % 97) * 1.08 + 0.5 * (i % 3) for i in range(200)], dtype=float)
bi = np.array([i % 10 for i in range(500)], dtype=float)
ci = np.array([min(i % 11, 9) for i in range(400)], dtype=float)
out = []
for x, y in [(b, c), (bi, ci)]:
    for alt in ["greater", "less"]:
        r = ks_2samp(x, y, alternative=alt, method="asymp")
        out += [float(r.statistic), float(r.pvalue)]
print("const REF: [f64; 8] = [" + ", ".join(repr(v) for v in out) + "];")
