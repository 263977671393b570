//! Power of each metric's main test: the minimum detectable effect (MDE) at the achieved n, and how many
//! more samples per arm would detect the metric's allowance.
//!
//! - Level: α/k, the level the smallest p-value of a Holm family of k tests must beat (a single real
//!   change among no-changes); in a sequential judgement the always-valid boundary at that level
//!   ([`boundary::z_boundary`]) replaces the fixed critical value z_{1−α/(2k)}. Power 80 % (z = 0.8416).
//! - Continuous metrics, Mann–Whitney on a location shift (asymptotic relative efficiency 3/π against the
//!   t-test, Lehmann 1975): δ = (z_crit + z_0.8)·σ·√(1/n + 1/m)/√(3/π). For positive data (latency) the
//!   shift is taken on the log scale, σ = σ_log estimated robustly from the baseline's p50 and p90
//!   (ln(p90/p50)/1.2816), and the MDE is e^δ − 1 relative to the baseline median; otherwise σ =
//!   (p90 − p50)/1.2816 (the sample sd when that is 0) and the MDE is δ/|median|.
//! - Proportions: the smallest rate increase δ over the baseline rate p that the two-proportion test
//!   detects: δ = z_crit·√(2p̄(1−p̄)/n_h) + z_0.8·√(p(1−p)/m + (p+δ)(1−p−δ)/n), solved by iteration.
//! - Needed samples per arm: the smallest equal n at which the MDE reaches the target: the allowance in
//!   the failing direction, or, when it is 0, [`DEFAULT_TARGET_RELATIVE`] (continuous) or
//!   [`DEFAULT_TARGET_RATE`] (proportions). Never below the metric's `min_samples`.

use serde::{Deserialize, Serialize};

use super::boundary::{self, z_boundary, z_fixed};
use super::{MetricKind, MetricResult};

/// Target effect of a continuous metric without an allowance: +10 % of the baseline median.
pub const DEFAULT_TARGET_RELATIVE: f64 = 0.10;
/// Target of a proportion without an allowance: one percentage point.
pub const DEFAULT_TARGET_RATE: f64 = 0.01;
const Z_POWER: f64 = 0.841_621_233_572_914_3; // Φ⁻¹(0.8)

/// The power figures of one metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Power {
    /// Power the figures are computed for (0.8).
    pub power: f64,
    /// Level of the main test: α / (tests in the family).
    pub level: f64,
    /// Minimum detectable effect at the achieved n: relative to the baseline median (continuous) or an
    /// absolute rate difference (proportions); `null` without baseline data or spread.
    pub mde: Option<f64>,
    /// The effect the sample-size figures aim at (the allowance, or the default target).
    pub target: f64,
    /// Samples per arm needed to detect `target` at `power` (`null` when unknown).
    pub needed_per_arm: Option<u64>,
    /// Samples per arm still missing (0 when enough).
    pub more_per_arm: Option<u64>,
    /// How long the missing samples take at the run's rate (needs time offsets), seconds.
    pub more_seconds: Option<f64>,
}

/// The critical |z| of a test at `level` with information `info`: fixed-sample or always-valid.
fn z_crit(level: f64, info: f64, sequential: bool) -> f64 {
    if sequential {
        z_boundary(level, info, boundary::TAU)
    } else {
        z_fixed(level)
    }
}

/// The spread σ and whether it is on the log scale, from the baseline summary.
fn spread(m: &MetricResult) -> Option<(f64, bool)> {
    let s = &m.baseline;
    let (p50, p90, min) = (s.p50?, s.p90?, s.min?);
    if min > 0.0 && p90 > p50 {
        return Some(((p90 / p50).ln() / 1.281_551_565_544_600_5, true));
    }
    let sd = if p90 > p50 {
        (p90 - p50) / 1.281_551_565_544_600_5
    } else {
        s.std?
    };
    (sd > 0.0 && p50 != 0.0).then_some((sd, false))
}

/// MDE of a continuous metric with arms n and m.
fn continuous_mde(sigma: f64, log: bool, median: f64, n: f64, m: f64, z: f64) -> f64 {
    let delta =
        (z + Z_POWER) * sigma * (1.0 / n + 1.0 / m).sqrt() / (3.0 / std::f64::consts::PI).sqrt();
    if log {
        delta.exp() - 1.0
    } else {
        delta / median.abs()
    }
}

/// Minimum detectable rate increase over `p` with arms n (canary) and m (baseline).
fn rate_mde(p: f64, n: f64, m: f64, z: f64) -> f64 {
    let nh = 2.0 / (1.0 / n + 1.0 / m);
    let mut d = (z + Z_POWER) * ((p * (1.0 - p)).max(1e-12) * (1.0 / n + 1.0 / m)).sqrt();
    for _ in 0..50 {
        let q = (p + d).min(1.0);
        let pbar = f64::midpoint(p, q);
        let next = z * (2.0 * pbar * (1.0 - pbar) / nh).sqrt()
            + Z_POWER * (p * (1.0 - p) / m + q * (1.0 - q) / n).sqrt();
        if (next - d).abs() < 1e-12 {
            break;
        }
        d = next.min(1.0 - p);
    }
    d
}

/// Computes a metric's power figures; `tests` is the family size, `sequential` selects the
/// always-valid boundary.
pub fn power(m: &MetricResult, alpha: f64, tests: usize, sequential: bool) -> Power {
    let level = alpha / tests.max(1) as f64;
    let (nb, nc) = (m.baseline.n, m.canary.n);
    let allowed = if m.fail_on.up() {
        m.allowed_increase
    } else {
        m.allowed_decrease
    };
    let target = if allowed > 0.0 {
        allowed
    } else {
        match m.kind {
            MetricKind::Continuous => DEFAULT_TARGET_RELATIVE,
            MetricKind::Proportion => DEFAULT_TARGET_RATE,
        }
    };
    // mde_at(n_b, n_c) for this metric, when the baseline tells the spread.
    let mde_at: Option<Box<dyn Fn(f64, f64) -> f64>> = match m.kind {
        _ if nb < 2 => None,
        MetricKind::Continuous => spread(m).map(|(sigma, log)| {
            let median = m.baseline.p50.unwrap_or(0.0);
            Box::new(move |b: f64, c: f64| {
                let z = z_crit(level, b * c / (b + c), sequential);
                continuous_mde(sigma, log, median, b, c, z)
            }) as Box<dyn Fn(f64, f64) -> f64>
        }),
        MetricKind::Proportion => {
            let p = m.baseline.mean.unwrap_or(0.0);
            Some(Box::new(move |b: f64, c: f64| {
                let z = z_crit(level, b * c / (b + c), sequential);
                rate_mde(p, c, b, z)
            }))
        }
    };
    let mde = mde_at
        .as_ref()
        .filter(|_| nc >= 2)
        .map(|f| f(nb as f64, nc as f64));
    let needed = mde_at.as_ref().map(|f| {
        // Smallest equal n with mde(n, n) ≤ target: doubling, then bisection (mde falls with n).
        let (mut lo, mut hi) = (1u64, 2u64);
        while f(hi as f64, hi as f64) > target && hi < 1 << 40 {
            lo = hi;
            hi *= 2;
        }
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if f(mid as f64, mid as f64) > target {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        hi.max(m.min_samples as u64)
    });
    let have = nb.min(nc) as u64;
    let more = needed
        .or((have < m.min_samples as u64).then_some(m.min_samples as u64))
        .map(|n| n.saturating_sub(have));
    let more_seconds = match (more, rate_per_arm(m)) {
        (Some(k), Some(rate)) if rate > 0.0 => Some((k as f64 / rate * 10.0).ceil() / 10.0),
        _ => None,
    };
    Power {
        power: 0.8,
        level,
        mde,
        target,
        needed_per_arm: needed,
        more_per_arm: more,
        more_seconds,
    }
}

/// Samples per second of the slower arm, from the timeline (first to last non-empty bin).
fn rate_per_arm(m: &MetricResult) -> Option<f64> {
    let t = m.series.timeline.as_ref()?;
    let arm = |bins: &[super::series::Bin]| -> Option<f64> {
        let n: usize = bins.iter().map(|b| b.n).sum();
        let last = bins.iter().rposition(|b| b.n > 0)?;
        Some(n as f64 / ((last + 1) as f64 * t.bin_s))
    };
    Some(arm(&t.baseline)?.min(arm(&t.canary)?))
}

/// One line per metric without data or without power for its target, for an INCONCLUSIVE reason.
pub fn more_data_text(metrics: &[MetricResult]) -> Option<String> {
    let parts: Vec<String> = metrics
        .iter()
        .filter_map(|m| {
            let p = m.power.as_ref()?;
            let more = p.more_per_arm.filter(|&k| k > 0)?;
            let time = p
                .more_seconds
                .map(|s| format!(", about {} s more at this run's rate", super::num(s)))
                .unwrap_or_default();
            Some(format!("{}: {more} more samples per arm{time}", m.name))
        })
        .collect();
    (!parts.is_empty()).then(|| format!("to decide: {}", parts.join("; ")))
}
