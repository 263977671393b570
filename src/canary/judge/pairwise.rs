//! The Hodges–Lehmann shift and its confidence interval: order statistics of the n·m pairwise differences
//! of two sorted samples, selected exactly without forming them.

use super::normal::normal_quantile;
use super::stats::{rank_sum, sign, u_sigma, PARALLEL_MIN};

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
    let estimate = || hodges_lehmann_estimate(x, y);
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

/// The Hodges–Lehmann estimate alone (the median of all pairwise differences x_i − y_j), as in
/// [`hodges_lehmann`]; `x`, `y` sorted and non-empty.
pub fn hodges_lehmann_estimate(x: &[f64], y: &[f64]) -> f64 {
    let nm = x.len() as u64 * y.len() as u64;
    if nm % 2 == 1 {
        kth_pairwise_diff(x, y, nm.div_ceil(2))
    } else {
        let (a, b) = select_pairwise(x, y, nm / 2, true);
        let b = b.unwrap_or_else(|| kth_pairwise_diff(x, y, nm / 2 + 1));
        a + (b - a) / 2.0
    }
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
