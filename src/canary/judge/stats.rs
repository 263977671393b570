//! Pure statistics for the judge: the normal distribution ([`super::normal`]), the Mann–Whitney U test with
//! its Hodges–Lehmann shift and confidence interval ([`super::pairwise`]; R `wilcox.test(exact = FALSE,
//! correct = TRUE, conf.int = TRUE)`), the two-proportion test (R `prop.test(correct = TRUE)`), Holm and
//! Bonferroni, and R-7 quantiles. Every function takes sorted, finite samples where it says so; nothing
//! here allocates more than O(n + m) or reads the clock or a RNG.

use std::cmp::Ordering;

pub use super::normal::*;
pub use super::pairwise::*;

/// Sorts a sample ascending (total order; callers reject NaN before this).
pub fn sorted(sample: &[f64]) -> Vec<f64> {
    let mut v = sample.to_vec();
    v.sort_unstable_by(f64::total_cmp);
    v
}

/// The R-7 (linear interpolation, numpy/R default) quantile of a sorted, non-empty sample.
pub fn quantile_sorted(s: &[f64], p: f64) -> f64 {
    debug_assert!(!s.is_empty());
    let h = (s.len() - 1) as f64 * p.clamp(0.0, 1.0);
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(s.len() - 1);
    let f = h - lo as f64;
    if f == 0.0 {
        return s[lo];
    }
    let span = s[hi] - s[lo];
    if span.is_finite() {
        s[lo] + f * span
    } else {
        // `s[hi] - s[lo]` overflows for values near ±1e308; the weighted form does not.
        s[lo] * (1.0 - f) + s[hi] * f
    }
}

/// The k-th smallest (1-based) value of the union of two sorted samples.
pub fn kth_of_union(a: &[f64], b: &[f64], k: usize) -> f64 {
    debug_assert!(k >= 1 && k <= a.len() + b.len());
    // Binary search for how many of the k smallest come from `a`.
    let (mut lo, mut hi) = (k.saturating_sub(b.len()), k.min(a.len()));
    while lo < hi {
        let i = usize::midpoint(lo, hi); // take i from a, k - i from b
        if a[i] < b[k - i - 1] {
            lo = i + 1;
        } else {
            hi = i;
        }
    }
    let i = lo;
    let from_a = if i > 0 { a[i - 1] } else { f64::NEG_INFINITY };
    let from_b = if k - i > 0 {
        b[k - i - 1]
    } else {
        f64::NEG_INFINITY
    };
    from_a.max(from_b)
}

/// The R-7 quantile of the pooled sample `a ∪ b`, both sorted, not both empty.
pub fn pooled_quantile(a: &[f64], b: &[f64], p: f64) -> f64 {
    let n = a.len() + b.len();
    let h = (n - 1) as f64 * p.clamp(0.0, 1.0);
    let lo = h.floor() as usize;
    let v_lo = kth_of_union(a, b, lo + 1);
    if lo + 1 >= n {
        return v_lo;
    }
    let v_hi = kth_of_union(a, b, lo + 2);
    let (f, span) = (h - lo as f64, v_hi - v_lo);
    if span.is_finite() {
        v_lo + f * span
    } else {
        v_lo * (1.0 - f) + v_hi * f
    }
}

/// The rank-sum statistics of sorted `x` against sorted `y`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RankSum {
    /// U of `x` against `y`: #{x_i > y_j} + ½·#{x_i = y_j} (scipy `mannwhitneyu(x, y).statistic`).
    pub u: f64,
    /// Σ (t³ − t) over groups of tied values in the pooled sample.
    pub tie_term: f64,
}

/// U and the tie term by one merge of two sorted samples: O(n + m).
pub fn rank_sum(x: &[f64], y: &[f64]) -> RankSum {
    let (mut i, mut j) = (0usize, 0usize);
    let mut u = 0.0f64;
    let mut tie_term = 0.0f64;
    while i < x.len() || j < y.len() {
        let v = match (x.get(i), y.get(j)) {
            (Some(&a), Some(&b)) => a.min(b),
            (Some(&a), None) => a,
            (None, Some(&b)) => b,
            (None, None) => unreachable!(),
        };
        let i0 = i;
        while i < x.len() && x[i] == v {
            i += 1;
        }
        let j0 = j;
        while j < y.len() && y[j] == v {
            j += 1;
        }
        let (cx, cy) = ((i - i0) as f64, (j - j0) as f64);
        // Each x equal to v beats the j0 smaller y's and ties with the cy equal ones.
        u += cx * (j0 as f64 + 0.5 * cy);
        let t = cx + cy;
        tie_term += t * t * t - t;
    }
    RankSum { u, tie_term }
}

/// Standard deviation of U under the null, with the tie correction.
pub fn u_sigma(n: f64, m: f64, tie_term: f64) -> f64 {
    let big_n = n + m;
    let var = n * m / 12.0 * ((big_n + 1.0) - tie_term / (big_n * (big_n - 1.0)));
    var.max(0.0).sqrt()
}

/// The result of a two-sided Mann–Whitney U test of `x` (canary) against `y` (baseline).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MannWhitney {
    /// U of x against y.
    pub u: f64,
    /// The continuity-corrected z statistic (0 when every value is tied).
    pub z: f64,
    /// Two-sided p-value, normal approximation with tie and continuity correction.
    pub p_value: f64,
    /// Common-language effect size U/(n·m): P(canary > baseline) + ½·P(tie).
    pub cles: f64,
}

/// Mann–Whitney U, two-sided, as R `wilcox.test(x, y, exact = FALSE, correct = TRUE)`.
/// `x`, `y` sorted and non-empty. When every value is tied the test has no information: z = 0, p = 1.
pub fn mann_whitney(x: &[f64], y: &[f64]) -> MannWhitney {
    let (n, m) = (x.len() as f64, y.len() as f64);
    let rs = rank_sum(x, y);
    let sigma = u_sigma(n, m, rs.tie_term);
    let dz = rs.u - n * m / 2.0;
    let z = if sigma > 0.0 {
        (dz - 0.5 * sign(dz)) / sigma
    } else {
        0.0
    };
    MannWhitney {
        u: rs.u,
        z,
        p_value: two_sided_p(z),
        cles: rs.u / (n * m),
    }
}

pub(super) fn sign(v: f64) -> f64 {
    if v > 0.0 {
        1.0
    } else if v < 0.0 {
        -1.0
    } else {
        0.0
    }
}

/// Samples (both arms together) from which work is split across threads; below it a thread costs more
/// than it saves.
pub const PARALLEL_MIN: usize = 100_000;

/// Both arms sorted ([`sorted`]), on two threads when the samples are large.
pub fn sorted_pair(a: &[f64], b: &[f64]) -> (Vec<f64>, Vec<f64>) {
    if a.len() + b.len() < PARALLEL_MIN {
        return (sorted(a), sorted(b));
    }
    std::thread::scope(|s| {
        let sa = s.spawn(|| sorted(a));
        let sb = sorted(b);
        (sa.join().expect("sort thread"), sb)
    })
}

/// The result of a two-sided test of two proportions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Proportions {
    /// Canary rate minus baseline rate.
    pub estimate: f64,
    pub lower: f64,
    pub upper: f64,
    /// Signed z (√χ² with the sign of the difference).
    pub z: f64,
    pub p_value: f64,
}

/// Two-sided test of `a`/`n` (canary) against `b`/`m` (baseline) with Yates' continuity correction and the
/// Wald interval for the difference, as R `prop.test(c(a, b), c(n, m), correct = TRUE, conf.level = level)`.
/// When both arms have no events (or only events) the test has no information: p = 1.
pub fn two_proportions(a: u64, n: u64, b: u64, m: u64, level: f64) -> Proportions {
    let (af, nf, bf, mf) = (a as f64, n as f64, b as f64, m as f64);
    let (p1, p2) = (af / nf, bf / mf);
    let delta = p1 - p2;
    let inv = 1.0 / nf + 1.0 / mf;
    let yates = 0.5f64.min(delta.abs() / inv);
    let zq = normal_quantile(1.0 - (1.0 - level) / 2.0);
    let width = zq * (p1 * (1.0 - p1) / nf + p2 * (1.0 - p2) / mf).sqrt() + yates * inv;
    let pooled = (af + bf) / (nf + mf);
    let (z, p_value) = if pooled <= 0.0 || pooled >= 1.0 {
        (0.0, 1.0)
    } else {
        let observed = [af, nf - af, bf, mf - bf];
        let expected = [
            nf * pooled,
            nf * (1.0 - pooled),
            mf * pooled,
            mf * (1.0 - pooled),
        ];
        let chi2: f64 = observed
            .iter()
            .zip(expected)
            .map(|(o, e)| {
                let d = (o - e).abs() - yates;
                d * d / e
            })
            .sum();
        let z = chi2.sqrt() * sign(delta);
        (z, two_sided_p(z))
    };
    Proportions {
        estimate: delta,
        lower: (delta - width).max(-1.0),
        upper: (delta + width).min(1.0),
        z,
        p_value,
    }
}

/// Holm's step-down adjusted p-values (R `p.adjust(p, "holm")`); ties keep input order.
pub fn holm(p: &[f64]) -> Vec<f64> {
    let k = p.len();
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by(|&a, &b| p[a].partial_cmp(&p[b]).unwrap_or(Ordering::Equal));
    let mut adjusted = vec![0.0; k];
    let mut running = 0.0f64;
    for (rank, &i) in order.iter().enumerate() {
        running = running.max(((k - rank) as f64 * p[i]).min(1.0));
        adjusted[i] = running;
    }
    adjusted
}

/// Bonferroni-adjusted p-values (R `p.adjust(p, "bonferroni")`).
pub fn bonferroni(p: &[f64]) -> Vec<f64> {
    p.iter().map(|&v| (v * p.len() as f64).min(1.0)).collect()
}
