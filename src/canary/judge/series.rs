//! Chart data computed while judging: a per-arm CDF (quantiles at fixed probabilities) and per-arm time
//! bins (median and p99, or rate for 0/1 metrics). Small, fixed-size summaries of the raw samples, so the
//! report writers never need the samples and `report.json` stays a few kilobytes per metric.

use serde::{Deserialize, Serialize};

use super::stats::quantile_sorted;

/// Quantiles of each arm at the same probabilities (for a CDF plot).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cdf {
    pub probabilities: Vec<f64>,
    pub baseline: Vec<f64>,
    pub canary: Vec<f64>,
}

/// The probabilities a CDF is sampled at: every 0.5 % plus the far tail.
pub fn cdf_probabilities() -> Vec<f64> {
    let mut p: Vec<f64> = (0..=200).map(|i| i as f64 / 200.0).collect();
    p.extend([0.9975, 0.999, 0.9995, 0.9999]);
    p.sort_by(f64::total_cmp);
    p
}

/// CDF points of two sorted, non-empty samples.
pub fn cdf(baseline: &[f64], canary: &[f64]) -> Cdf {
    let probabilities = cdf_probabilities();
    let at = |s: &[f64]| {
        probabilities
            .iter()
            .map(|&p| quantile_sorted(s, p))
            .collect()
    };
    Cdf {
        baseline: at(baseline),
        canary: at(canary),
        probabilities,
    }
}

/// One time bin of one arm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bin {
    pub n: usize,
    /// Median of the bin (continuous metrics; `null` when the bin is empty).
    pub p50: Option<f64>,
    /// 99th percentile of the bin (continuous metrics).
    pub p99: Option<f64>,
    /// Share of 1s in the bin (0/1 metrics).
    pub rate: Option<f64>,
}

/// Samples over time, in equal bins shared by both arms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timeline {
    /// Offset of the first bin's start, seconds.
    pub start_s: f64,
    /// Width of every bin, seconds.
    pub bin_s: f64,
    pub baseline: Vec<Bin>,
    pub canary: Vec<Bin>,
}

/// At most this many bins per timeline.
pub const MAX_BINS: usize = 60;

/// Bins `(time, value)` samples of both arms; `proportion` selects rates instead of quantiles.
/// Times and values are paired by index (validated by the caller).
pub fn timeline(
    baseline: (&[f64], &[f64]),
    canary: (&[f64], &[f64]),
    proportion: bool,
) -> Option<Timeline> {
    let times = baseline.0.iter().chain(canary.0.iter());
    let (lo, hi) = times.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &t| {
        (lo.min(t), hi.max(t))
    });
    if !lo.is_finite() {
        return None;
    }
    let start_s = lo.floor();
    let span = (hi - start_s).max(1.0);
    // Whole seconds per bin when the run is long enough, so bins line up with the clock.
    let raw = span / MAX_BINS as f64;
    let bin_s = if raw >= 1.0 { raw.ceil() } else { raw };
    let bins = ((span / bin_s).floor() as usize + 1).min(MAX_BINS + 1);
    let arm = |(t, v): (&[f64], &[f64])| -> Vec<Bin> {
        let mut groups: Vec<Vec<f64>> = vec![Vec::new(); bins];
        for (&ti, &vi) in t.iter().zip(v) {
            let i = (((ti - start_s) / bin_s).floor() as usize).min(bins - 1);
            groups[i].push(vi);
        }
        groups
            .into_iter()
            .map(|mut g| {
                let n = g.len();
                if n == 0 {
                    return Bin {
                        n,
                        p50: None,
                        p99: None,
                        rate: None,
                    };
                }
                if proportion {
                    let ones = g.iter().filter(|&&v| v == 1.0).count();
                    Bin {
                        n,
                        p50: None,
                        p99: None,
                        rate: Some(ones as f64 / n as f64),
                    }
                } else {
                    g.sort_unstable_by(f64::total_cmp);
                    Bin {
                        n,
                        p50: Some(quantile_sorted(&g, 0.5)),
                        p99: Some(quantile_sorted(&g, 0.99)),
                        rate: None,
                    }
                }
            })
            .collect()
    };
    Some(Timeline {
        start_s,
        bin_s,
        baseline: arm(baseline),
        canary: arm(canary),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeline_bins_both_arms_on_shared_edges() {
        // 120 s run → 2 s bins.
        let tb = [0.2, 0.7, 1.5, 119.0];
        let vb = [1.0, 3.0, 5.0, 7.0];
        let tc = [0.1, 2.5];
        let vc = [0.0, 1.0];
        let t = timeline((&tb, &vb), (&tc, &vc), false).unwrap();
        assert_eq!((t.start_s, t.bin_s), (0.0, 2.0));
        assert_eq!(t.baseline.len(), t.canary.len());
        assert_eq!(t.baseline[0].n, 3);
        assert_eq!(t.baseline[0].p50, Some(3.0));
        assert_eq!((t.canary[0].n, t.canary[1].n), (1, 1));
        assert_eq!(t.canary[2].p50, None);
    }

    #[test]
    fn timeline_of_zero_one_samples_reports_rates() {
        let t = timeline((&[0.0, 0.01], &[0.0, 1.0]), (&[0.001], &[1.0]), true).unwrap();
        assert_eq!(t.baseline[0].rate, Some(0.5));
        assert_eq!(t.canary[0].rate, Some(1.0));
        assert_eq!(t.baseline[0].p50, None);
    }

    #[test]
    fn long_runs_are_cut_into_at_most_max_bins_whole_seconds() {
        let t: Vec<f64> = (0..600).map(|i| i as f64 * 0.5).collect();
        let v = vec![1.0; 600];
        let tl = timeline((&t, &v), (&t, &v), false).unwrap();
        assert!(tl.baseline.len() <= MAX_BINS + 1);
        assert_eq!(tl.bin_s, 5.0);
        assert_eq!(tl.baseline.iter().map(|b| b.n).sum::<usize>(), 600);
    }

    #[test]
    fn cdf_is_monotone_and_ends_at_min_and_max() {
        let b = [1.0, 2.0, 3.0, 10.0];
        let c = [2.0, 4.0];
        let d = cdf(&b, &c);
        assert_eq!(d.baseline.first(), Some(&1.0));
        assert_eq!(d.baseline.last(), Some(&10.0));
        assert!(d.canary.windows(2).all(|w| w[0] <= w[1]));
    }
}
