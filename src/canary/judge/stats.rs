//! Pure statistics for the judge: the normal distribution, the Mann–Whitney U test with its Hodges–Lehmann
//! shift and confidence interval (R `wilcox.test(exact = FALSE, correct = TRUE, conf.int = TRUE)`), the
//! two-proportion test (R `prop.test(correct = TRUE)`), and R-7 quantiles. Every function takes sorted,
//! finite samples where it says so; nothing here allocates more than O(n + m) or reads the clock or a RNG.

// The rational-approximation coefficients are kept digit for digit as published (Cody, Wichura, R).
#![allow(clippy::excessive_precision)]

use std::cmp::Ordering;

/// Upper tail of the standard normal, P(Z > z), accurate to about 1e-15 relative (W. J. Cody's rational
/// approximations, as in R's `pnorm`).
pub fn normal_sf(z: f64) -> f64 {
    normal_cdf(-z)
}

/// P(Z ≤ z) for the standard normal (Cody's algorithm, R `pnorm_both`).
pub fn normal_cdf(x: f64) -> f64 {
    const A: [f64; 5] = [
        2.235_252_035_460_683_9,
        161.028_231_068_555_88,
        1_067.689_485_460_370_9,
        18_154.981_253_343_562,
        0.065_682_337_918_207_45,
    ];
    const B: [f64; 4] = [
        47.202_581_904_688_24,
        976.098_551_737_773_3,
        10_260.932_208_618_979,
        45_507.789_335_026_73,
    ];
    const C: [f64; 9] = [
        0.398_941_512_088_134_66,
        8.883_149_794_388_376,
        93.506_656_132_177_86,
        597.270_276_394_800_3,
        2_494.537_585_290_372_6,
        6_848.190_450_536_283,
        11_602.651_437_647_35,
        9_842.714_838_383_978,
        1.076_557_677_372_019_2e-8,
    ];
    const D: [f64; 8] = [
        22.266_688_044_328_117,
        235.387_901_782_625,
        1_519.377_599_407_554_8,
        6_485.558_298_266_761,
        18_615.571_640_885_097,
        34_900.952_721_145_98,
        38_912.003_286_093_27,
        19_685.429_676_859_992,
    ];
    const P: [f64; 6] = [
        0.215_898_534_057_957,
        0.127_401_161_160_247_36,
        0.022_235_277_870_649_807,
        0.001_421_619_193_227_893_5,
        2.911_287_495_116_879_2e-5,
        0.023_073_441_764_940_174,
    ];
    const Q: [f64; 5] = [
        1.284_260_096_144_911_2,
        0.468_238_212_480_865_1,
        0.065_988_137_868_928_55,
        0.003_782_396_332_027_582_4,
        7.297_515_550_839_662e-5,
    ];
    const M_SQRT_32: f64 = 5.656_854_249_492_381;
    const M_1_SQRT_2PI: f64 = 0.398_942_280_401_432_7;

    if x.is_nan() {
        return f64::NAN;
    }
    let y = x.abs();
    // Returns (cum, ccum) for |x| via the exp(-x²/2) split that keeps precision.
    let tail = |y: f64, temp: f64| -> f64 {
        let xsq = (y * 16.0).trunc() / 16.0;
        let del = (y - xsq) * (y + xsq);
        (-xsq * xsq * 0.5).exp() * (-del * 0.5).exp() * temp
    };
    if y <= 0.674_489_75 {
        let (xnum, xden) = if y > f64::EPSILON * 0.5 {
            let xsq = x * x;
            let mut xnum = A[4] * xsq;
            let mut xden = xsq;
            for i in 0..3 {
                xnum = (xnum + A[i]) * xsq;
                xden = (xden + B[i]) * xsq;
            }
            (xnum, xden)
        } else {
            (0.0, 0.0)
        };
        let temp = x * (xnum + A[3]) / (xden + B[3]);
        0.5 + temp
    } else if y <= M_SQRT_32 {
        let mut xnum = C[8] * y;
        let mut xden = y;
        for i in 0..7 {
            xnum = (xnum + C[i]) * y;
            xden = (xden + D[i]) * y;
        }
        let temp = (xnum + C[7]) / (xden + D[7]);
        let lower_tail = tail(y, temp);
        if x > 0.0 {
            1.0 - lower_tail
        } else {
            lower_tail
        }
    } else if y < 37.5193 {
        let xsq = 1.0 / (x * x);
        let mut xnum = P[5] * xsq;
        let mut xden = xsq;
        for i in 0..4 {
            xnum = (xnum + P[i]) * xsq;
            xden = (xden + Q[i]) * xsq;
        }
        let mut temp = xsq * (xnum + P[4]) / (xden + Q[4]);
        temp = (M_1_SQRT_2PI - temp) / y;
        let lower_tail = tail(y, temp);
        if x > 0.0 {
            1.0 - lower_tail
        } else {
            lower_tail
        }
    } else if x > 0.0 {
        1.0
    } else {
        0.0
    }
}

/// The standard normal quantile Φ⁻¹(p) (Wichura's AS 241, as in R's `qnorm`), accurate to about 1e-16.
pub fn normal_quantile(p: f64) -> f64 {
    if p.is_nan() || !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    if p == 0.0 {
        return f64::NEG_INFINITY;
    }
    if p == 1.0 {
        return f64::INFINITY;
    }
    let q = p - 0.5;
    if q.abs() <= 0.425 {
        let r = 0.180_625 - q * q;
        return q
            * (((((((r * 2_509.080_928_730_122_7 + 33_430.575_583_588_13) * r
                + 67_265.770_927_008_7)
                * r
                + 45_921.953_931_549_87)
                * r
                + 13_731.693_765_509_461)
                * r
                + 1_971.590_950_306_551_3)
                * r
                + 133.141_667_891_784_38)
                * r
                + 3.387_132_872_796_366_5)
            / (((((((r * 5_226.495_278_852_546 + 28_729.085_735_721_943) * r
                + 39_307.895_800_092_71)
                * r
                + 21_213.794_301_586_597)
                * r
                + 5_394.196_021_424_751)
                * r
                + 687.187_007_492_057_9)
                * r
                + 42.313_330_701_600_91)
                * r
                + 1.0);
    }
    let mut r = if q < 0.0 { p } else { 1.0 - p };
    r = (-r.ln()).sqrt();
    let val = if r <= 5.0 {
        r -= 1.6;
        (((((((r * 7.745_450_142_783_414e-4 + 0.022_723_844_989_269_184) * r
            + 0.241_780_725_177_450_6)
            * r
            + 1.270_458_252_452_368_4)
            * r
            + 3.647_848_324_763_204_5)
            * r
            + 5.769_497_221_460_691)
            * r
            + 4.630_337_846_156_545)
            * r
            + 1.423_437_110_749_683_5)
            / (((((((r * 1.050_750_071_644_416_9e-9 + 5.475_938_084_995_345e-4) * r
                + 0.015_198_666_563_616_457)
                * r
                + 0.148_103_976_427_480_08)
                * r
                + 0.689_767_334_985_1)
                * r
                + 1.676_384_830_183_803_8)
                * r
                + 2.053_191_626_637_759)
                * r
                + 1.0)
    } else {
        r -= 5.0;
        (((((((r * 2.010_334_399_292_288_1e-7 + 2.711_555_568_743_487_6e-5) * r
            + 0.001_242_660_947_388_078_4)
            * r
            + 0.026_532_189_526_576_124)
            * r
            + 0.296_560_571_828_504_9)
            * r
            + 1.784_826_539_917_291_3)
            * r
            + 5.463_784_911_164_114)
            * r
            + 6.657_904_643_501_103_5)
            / (((((((r * 2.044_263_103_389_939_8e-15 + 1.421_511_758_316_445_9e-7) * r
                + 1.846_318_317_510_054_8e-5)
                * r
                + 7.868_691_311_456_133e-4)
                * r
                + 0.014_875_361_290_850_615)
                * r
                + 0.136_929_880_922_735_8)
                * r
                + 0.599_832_206_555_888)
                * r
                + 1.0)
    };
    if q < 0.0 {
        -val
    } else {
        val
    }
}

/// Two-sided p-value of a standard normal statistic, 2·P(Z > |z|), capped at 1.
pub fn two_sided_p(z: f64) -> f64 {
    (2.0 * normal_sf(z.abs())).min(1.0)
}

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
        let i = (lo + hi) / 2; // take i from a, k - i from b
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

fn sign(v: f64) -> f64 {
    if v > 0.0 {
        1.0
    } else if v < 0.0 {
        -1.0
    } else {
        0.0
    }
}

/// Hodges–Lehmann shift of x over y with its confidence interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shift {
    /// Median of all pairwise differences x_i − y_j.
    pub estimate: f64,
    pub lower: f64,
    pub upper: f64,
}

/// The Hodges–Lehmann estimate of x − y and its two-sided confidence interval at `level`, the roots R's
/// `wilcox.test(x, y, conf.int = TRUE, exact = FALSE, correct = TRUE)` finds with `uniroot`.
///
/// R's root function f(d) = (U(x − d, y) − nm/2 − ½·sign(·))/σ(d) − z_q is a step function of the shift d
/// that only jumps at pairwise differences x_i − y_j, and between jumps σ is the constant σ₀ of the
/// within-arm ties. So each root is an order statistic of the pairwise differences: the count c of pairs
/// above the root follows from σ₀ and z_q in O(1) (a binary search on c), and the order statistic is found
/// without forming the n·m differences ([`kth_pairwise_diff`]). R returns a point within its tolerance
/// (1e-4) of the same jump; this returns the jump itself, so the result is exact and reproducible.
///
/// `x`, `y` sorted and non-empty.
pub fn hodges_lehmann(x: &[f64], y: &[f64], level: f64) -> Shift {
    let (n, m) = (x.len() as u64, y.len() as u64);
    let nm = n * m;
    let estimate = || {
        if nm % 2 == 1 {
            kth_pairwise_diff(x, y, nm.div_ceil(2))
        } else {
            let (a, b) = select_pairwise(x, y, nm / 2, true);
            let b = b.unwrap_or_else(|| kth_pairwise_diff(x, y, nm / 2 + 1));
            a + (b - a) / 2.0
        }
    };
    let within_ties = rank_sum(x, &[]).tie_term + rank_sum(y, &[]).tie_term;
    let sigma0 = u_sigma(n as f64, m as f64, within_ties);
    let zq = normal_quantile(1.0 - (1.0 - level) / 2.0);
    let root = |zq: f64| -> f64 {
        let half = nm as f64 / 2.0;
        let h = |c: u64| {
            let dz = c as f64 - half;
            (dz - 0.5 * sign(dz)) / sigma0
        };
        // Largest c in 0..=nm with h(c) < zq (h is non-decreasing in c): the interval right of the root
        // has exactly c pairs above it.
        if h(0) >= zq {
            return kth_pairwise_diff(x, y, nm);
        }
        let (mut lo, mut hi) = (0u64, nm); // invariant: h(lo) < zq; answer in [lo, hi]
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            if h(mid) < zq {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        kth_pairwise_diff(x, y, (nm - lo).max(1))
    };
    // The three order statistics are independent searches over the same read-only samples: on large
    // samples they run on their own threads (same functions, so the same values, bit for bit).
    if x.len() + y.len() < PARALLEL_MIN {
        return Shift {
            estimate: estimate(),
            lower: root(zq),
            upper: root(-zq),
        };
    }
    std::thread::scope(|s| {
        let est = s.spawn(estimate);
        let lower = s.spawn(|| root(zq));
        let upper = root(-zq);
        Shift {
            estimate: est.join().expect("HL estimate thread"),
            lower: lower.join().expect("HL interval thread"),
            upper,
        }
    })
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

/// Number of pairs with x_i − y_j ≤ v (computed in floating point), the largest such difference and the
/// smallest difference above v, by two pointers: O(n + m).
fn count_le(x: &[f64], y: &[f64], v: f64) -> (u64, f64, f64) {
    #[cfg(test)]
    COUNT_PASSES.with(|c| c.set(c.get() + 1));
    let m = y.len();
    let mut j = 0usize;
    let mut count = 0u64;
    let mut largest = f64::NEG_INFINITY;
    let mut smallest_above = f64::INFINITY;
    for &xi in x {
        // x_i − y_j decreases in j; the pairs with difference ≤ v are a suffix starting at j, whose first
        // element is the row's largest difference ≤ v (and the element before it the smallest above v).
        while j < m && xi - y[j] > v {
            j += 1;
        }
        if j < m {
            largest = largest.max(xi - y[j]);
        }
        if j > 0 {
            smallest_above = smallest_above.min(xi - y[j - 1]);
        }
        count += (m - j) as u64;
    }
    (count, largest, smallest_above)
}

#[cfg(test)]
thread_local! {
    /// Passes of [`count_le`] on this thread (tests check how many a search needs).
    pub(super) static COUNT_PASSES: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Maps a finite f64 to an integer with the same order, for bisection on representable values.
fn ordered_bits(v: f64) -> i64 {
    let b = v.to_bits() as i64;
    if b < 0 {
        b ^ i64::MAX
    } else {
        b
    }
}

fn from_ordered_bits(b: i64) -> f64 {
    f64::from_bits(if b < 0 { b ^ i64::MAX } else { b } as u64)
}

/// The k-th smallest (1-based) pairwise difference x_i − y_j of sorted samples in O(n + m) memory.
///
/// Root finding on count(v) = #{x_i − y_j ≤ v}, each evaluation O(n + m): the bracket (lo, hi] with
/// count(lo) < k ≤ count(hi) shrinks by regula falsi with the Illinois modification (superlinear on the
/// smooth count of many pairs; about 6–12 evaluations at a million per arm instead of ~25 halvings), falling
/// back to halving the representable values if it ever stalls. `hi` snaps to the largest actual difference
/// ≤ hi, so a heavily tied answer (integer data) is recognised as soon as it is reached. Once at most n + m
/// candidate pairs remain in the bracket they are listed and the answer selected among them.
pub fn kth_pairwise_diff(x: &[f64], y: &[f64], k: u64) -> f64 {
    select_pairwise(x, y, k, false).0
}

/// [`kth_pairwise_diff`], and with `want_next` also the (k+1)-th when it is among the listed candidates
/// (the two middle differences of an even count come from one search).
pub(super) fn select_pairwise(x: &[f64], y: &[f64], k: u64, want_next: bool) -> (f64, Option<f64>) {
    let (n, m) = (x.len(), y.len());
    let total = n as u64 * m as u64;
    debug_assert!(k >= 1 && k <= total);
    let dmin = x[0] - y[m - 1];
    let dmax = x[n - 1] - y[0];
    let mut lo = dmin;
    let (mut c_lo, _, _) = count_le(x, y, lo);
    if c_lo >= k {
        return (dmin, None);
    }
    let (mut hi, mut c_hi) = (dmax, total);
    // Invariant: count(lo) < k <= count(hi); the answer is in (lo, hi].
    let limit = (n + m).max(1024) as u64;
    // Illinois weights: signed distances of the counts from the target (k − ½), halved for a stuck end.
    let target = k as f64 - 0.5;
    let (mut f_lo, mut f_hi) = (c_lo as f64 - target, c_hi as f64 - target);
    let mut last_moved_hi: Option<bool> = None;
    let mut steps = 0;
    while c_hi - c_lo > limit {
        steps += 1;
        let mut v = if steps <= 40 {
            lo + (hi - lo) * (-f_lo / (f_hi - f_lo))
        } else {
            f64::NAN
        };
        if !(v > lo && v < hi) {
            let (a, b) = (ordered_bits(lo) as i128, ordered_bits(hi) as i128);
            v = from_ordered_bits(((a + b) / 2) as i64);
            if !(v > lo && v < hi) {
                return (hi, None); // adjacent floats: every candidate equals hi
            }
        }
        let (c, largest, smallest_above) = count_le(x, y, v);
        if c >= k {
            // No difference lies in (largest, v]: the bracket can end at an actual difference.
            let same_end = largest == hi;
            hi = largest;
            c_hi = c;
            f_hi = c as f64 - target;
            if last_moved_hi == Some(true) {
                f_lo /= 2.0;
            }
            last_moved_hi = Some(true);
            // hi came back to the same difference: it may be a tied answer (integer data), i.e. nothing
            // between lo and hi except copies of hi.
            let below = from_ordered_bits(ordered_bits(hi) - 1);
            if below <= lo || (same_end && count_le(x, y, below).0 < k) {
                return (hi, None);
            }
        } else {
            // No difference lies in (v, smallest_above): when that reaches hi, every candidate equals hi
            // (a tied answer approached from below, which halving alone would take ~60 more passes to see).
            if smallest_above >= hi {
                return (hi, None);
            }
            lo = v;
            c_lo = c;
            f_lo = c as f64 - target;
            if last_moved_hi == Some(false) {
                f_hi /= 2.0;
            }
            last_moved_hi = Some(false);
        }
    }
    let mut candidates = Vec::with_capacity((c_hi - c_lo) as usize);
    let (mut j_hi, mut j_lo) = (0usize, 0usize);
    for &xi in x {
        while j_hi < m && xi - y[j_hi] > hi {
            j_hi += 1;
        }
        while j_lo < m && xi - y[j_lo] > lo {
            j_lo += 1;
        }
        candidates.extend(y[j_hi..j_lo].iter().map(|&yj| xi - yj));
    }
    let idx = (k - c_lo - 1) as usize;
    let (_, v, above) = candidates.select_nth_unstable_by(idx, f64::total_cmp);
    let next = if want_next {
        above.iter().copied().min_by(f64::total_cmp)
    } else {
        None
    };
    (*v, next)
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
