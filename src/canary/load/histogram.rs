//! A log-linear latency histogram in the style of HdrHistogram: constant memory, O(1) recording, percentiles
//! with a bounded relative error. Values are nanoseconds.
//!
//! Layout: values below 2048 ns get one bucket each (exact). Above, every power-of-two range `[2^e, 2^(e+1))`
//! is split into 1024 equal buckets, so a bucket is at most 1/1024 (≈0.1 %) of its values wide: three
//! significant digits, like HdrHistogram configured with 3 digits. Values up to 2^44 ns (≈4.9 h) are stored;
//! larger ones land in the last bucket (the exact maximum is still tracked separately).

/// Sub-buckets per power of two above the exact range (2^10).
const HALF: u64 = 1 << 10;
/// Values below this are stored exactly, one bucket each.
const EXACT: u64 = HALF * 2;
/// Largest exponent stored in its own range; `2^(MAX_EXP+1) - 1` ns is the largest distinct value.
const MAX_EXP: u32 = 43;
const BUCKETS: usize = (EXACT + (MAX_EXP as u64 - 10) * HALF) as usize;

/// Percentile definition used everywhere in the load generator's output.
pub const PERCENTILE_DEFINITION: &str = "nearest rank: pX is the smallest recorded latency L such that at least X% \
of requests took <= L, read from a log-linear histogram with buckets at most 0.1% wide (the bucket's upper bound \
is reported, never above the exact maximum)";

#[derive(Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    min: u64,
    max: u64,
    sum: u128,
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("total", &self.total)
            .field("min", &self.min)
            .field("max", &self.max)
            .finish_non_exhaustive()
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

fn bucket_of(v: u64) -> usize {
    if v < EXACT {
        return v as usize;
    }
    let e = v.ilog2().min(MAX_EXP);
    let v = v.min((1u64 << (MAX_EXP + 1)) - 1);
    let shift = e - 10;
    (EXACT + (e as u64 - 11) * HALF + ((v >> shift) - HALF)) as usize
}

/// The largest value that falls into bucket `i`.
fn upper_bound(i: usize) -> u64 {
    let i = i as u64;
    if i < EXACT {
        return i;
    }
    let e = (i - EXACT) / HALF + 11;
    let sub = (i - EXACT) % HALF + HALF;
    let shift = e - 10;
    ((sub + 1) << shift) - 1
}

impl Histogram {
    /// An empty histogram (about 290 KiB of counters, allocated zeroed so untouched pages cost no memory).
    pub fn new() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
            total: 0,
            min: u64::MAX,
            max: 0,
            sum: 0,
        }
    }

    #[inline]
    pub fn record(&mut self, nanos: u64) {
        self.counts[bucket_of(nanos)] += 1;
        self.total += 1;
        self.min = self.min.min(nanos);
        self.max = self.max.max(nanos);
        self.sum += nanos as u128;
    }

    pub fn add(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.sum += other.sum;
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    /// Exact largest recorded value (0 when empty).
    pub fn max(&self) -> u64 {
        self.max
    }

    /// Exact smallest recorded value (0 when empty).
    pub fn min(&self) -> u64 {
        if self.total == 0 {
            0
        } else {
            self.min
        }
    }

    /// Exact arithmetic mean (0 when empty).
    pub fn mean(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.sum as f64 / self.total as f64
        }
    }

    /// The `q`-quantile (0 < q <= 1) by [`PERCENTILE_DEFINITION`]; 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        // Nearest rank: the ceil(q * n)-th smallest value (at least the first).
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return upper_bound(i).min(self.max).max(self.min);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_at_most_a_thousandth_wide() {
        let mut prev_upper = None;
        for i in 0..BUCKETS {
            let hi = upper_bound(i);
            let lo = prev_upper.map_or(0, |p: u64| p + 1);
            assert_eq!(bucket_of(lo), i, "lower bound of bucket {i}");
            assert_eq!(bucket_of(hi), i, "upper bound of bucket {i}");
            assert!(
                (hi - lo) as f64 <= lo as f64 / 1000.0 + 1.0,
                "bucket {i} [{lo},{hi}] too wide"
            );
            prev_upper = Some(hi);
        }
        assert_eq!(prev_upper, Some((1u64 << (MAX_EXP + 1)) - 1));
    }

    #[test]
    fn values_beyond_the_range_land_in_the_last_bucket_and_keep_the_exact_max() {
        let mut h = Histogram::new();
        h.record(1);
        h.record(u64::MAX / 2);
        assert_eq!(bucket_of(u64::MAX / 2), BUCKETS - 1);
        assert_eq!(h.max(), u64::MAX / 2);
        assert_eq!(h.quantile(1.0), (1u64 << (MAX_EXP + 1)) - 1);
    }

    #[test]
    fn small_values_are_exact_nearest_rank_percentiles() {
        let mut h = Histogram::new();
        for v in 1..=100 {
            h.record(v);
        }
        assert_eq!(h.quantile(0.5), 50);
        assert_eq!(h.quantile(0.9), 90);
        assert_eq!(h.quantile(0.99), 99);
        assert_eq!(h.quantile(0.999), 100);
        assert_eq!(h.quantile(0.001), 1);
        assert_eq!(h.min(), 1);
        assert_eq!(h.max(), 100);
        assert!((h.mean() - 50.5).abs() < 1e-9);
    }

    #[test]
    fn large_values_are_within_a_thousandth_and_never_above_max() {
        let mut h = Histogram::new();
        let values: Vec<u64> = (0..10_000u64).map(|i| 50_000 + i * 97_331).collect();
        for &v in &values {
            h.record(v);
        }
        for q in [0.5, 0.9, 0.99, 0.999] {
            let exact = values[((q * values.len() as f64).ceil() as usize) - 1];
            let got = h.quantile(q);
            assert!(got >= exact, "q={q}: {got} < {exact}");
            assert!(
                (got - exact) as f64 <= exact as f64 / 1000.0,
                "q={q}: {got} vs {exact}"
            );
        }
        assert_eq!(h.quantile(1.0), *values.last().unwrap());
    }

    #[test]
    fn adding_histograms_equals_recording_into_one() {
        let (mut a, mut b, mut both) = (Histogram::new(), Histogram::new(), Histogram::new());
        for v in [5u64, 3_000, 7_000_000] {
            a.record(v);
            both.record(v);
        }
        for v in [1u64, 40_000, 9_000_000_000] {
            b.record(v);
            both.record(v);
        }
        a.add(&b);
        assert_eq!(a.count(), both.count());
        assert_eq!((a.min(), a.max()), (both.min(), both.max()));
        for q in [0.1, 0.5, 0.9, 1.0] {
            assert_eq!(a.quantile(q), both.quantile(q));
        }
    }

    #[test]
    fn empty_histogram_reports_zeros() {
        let h = Histogram::new();
        assert_eq!((h.count(), h.min(), h.max(), h.quantile(0.5)), (0, 0, 0, 0));
        assert_eq!(h.mean(), 0.0);
    }
}
