//! The judgement's types: a metric's label and result, the run's verdict, per-arm summaries, tail tests
//! and chart data, as `report.json` serializes them.

use serde::{Deserialize, Serialize};

use super::series::{Cdf, Timeline};
use super::stats::quantile_sorted;
use super::{power, shape};
use super::{sequential, FailOn, JudgeConfig, MetricKind};
use crate::Outcome;

/// A metric's label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Classification {
    Pass,
    High,
    Low,
    NoData,
}

/// The run's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Verdict {
    Pass,
    Marginal,
    Fail,
    Inconclusive,
}

impl Verdict {
    /// The exit outcome: 0 PASS, 3 MARGINAL, 4 FAIL, 5 INCONCLUSIVE.
    pub fn outcome(self) -> Outcome {
        match self {
            Verdict::Pass => Outcome::Success,
            Verdict::Marginal => Outcome::Marginal,
            Verdict::Fail => Outcome::Fail,
            Verdict::Inconclusive => Outcome::Inconclusive,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Marginal => "MARGINAL",
            Verdict::Fail => "FAIL",
            Verdict::Inconclusive => "INCONCLUSIVE",
        }
    }
}

/// One arm's descriptive statistics (quantiles R-7; `null` when the arm is empty).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub n: usize,
    pub mean: Option<f64>,
    /// Sample standard deviation (n − 1).
    pub std: Option<f64>,
    pub min: Option<f64>,
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
    pub p999: Option<f64>,
    pub max: Option<f64>,
}

pub(super) fn summarize(sorted: &[f64]) -> Summary {
    let n = sorted.len();
    if n == 0 {
        return Summary {
            n,
            mean: None,
            std: None,
            min: None,
            p50: None,
            p90: None,
            p99: None,
            p999: None,
            max: None,
        };
    }
    // Scaled by the largest magnitude so that sums of values near ±1e308 cannot overflow; a standard
    // deviation too large for an f64 is `null`, never `inf`.
    let scale = sorted[0].abs().max(sorted[n - 1].abs());
    let (mean, std) = if scale == 0.0 {
        (0.0, (n > 1).then_some(0.0))
    } else {
        let mean_scaled = sorted.iter().map(|v| v / scale).sum::<f64>() / n as f64;
        let mean = (mean_scaled * scale).clamp(sorted[0], sorted[n - 1]);
        let std = (n > 1)
            .then(|| {
                let ss: f64 = sorted
                    .iter()
                    .map(|v| (v / scale - mean_scaled) * (v / scale - mean_scaled))
                    .sum();
                (ss / (n - 1) as f64).sqrt() * scale
            })
            .filter(|s| s.is_finite());
        (mean + 0.0, std)
    };
    let q = |p| Some(quantile_sorted(sorted, p));
    Summary {
        n,
        mean: Some(mean),
        std,
        min: Some(sorted[0]),
        p50: q(0.5),
        p90: q(0.9),
        p99: q(0.99),
        p999: q(0.999),
        max: Some(sorted[n - 1]),
    }
}

/// Which tail a tail test looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Upper,
    Lower,
}

/// The share of each arm beyond a pooled quantile, compared with the two-proportion test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TailTest {
    pub side: Side,
    /// The pooled quantile's probability (e.g. 0.99 upper, 0.01 lower).
    pub quantile: f64,
    /// The pooled quantile's value: samples at or beyond it count (ties at a mass point count in both arms).
    pub threshold: f64,
    pub baseline_beyond: u64,
    pub canary_beyond: u64,
    /// Each arm's own quantile at `quantile`.
    pub baseline_quantile: f64,
    pub canary_quantile: f64,
    /// canary_quantile / baseline_quantile − 1 (`null` when the baseline quantile is 0).
    pub relative_change: Option<f64>,
    pub p_value: f64,
    pub p_adjusted: f64,
    /// Whether this test made the metric fail.
    pub flagged: bool,
}

/// A named effect-size measure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Effect {
    /// `cles` (P(canary > baseline) + ½ P(tie); 0.5 = no effect) or `cohens_h` (0 = no effect).
    pub measure: String,
    pub value: f64,
}

/// Chart data of a metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Series {
    pub cdf: Option<Cdf>,
    pub timeline: Option<Timeline>,
}

/// One metric's judgement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricResult {
    pub name: String,
    pub kind: MetricKind,
    pub unit: Option<String>,
    pub fail_on: FailOn,
    pub critical: bool,
    pub weight: f64,
    pub allowed_increase: f64,
    pub allowed_decrease: f64,
    pub min_samples: usize,
    pub classification: Classification,
    /// The rule that fired, in words.
    pub reason: String,
    /// `mann-whitney-u` or `two-proportions` (`null` without data).
    pub test: Option<String>,
    /// U of canary against baseline (scipy `mannwhitneyu(canary, baseline)`), for every kind.
    pub u: Option<f64>,
    /// The main test's z statistic (continuity-corrected).
    pub z: Option<f64>,
    /// The main test's two-sided p-value, unadjusted.
    pub p_value: Option<f64>,
    /// `p_value` adjusted for multiple testing (see the judgement's `multiple_testing`).
    pub p_adjusted: Option<f64>,
    /// Canary − baseline: Hodges–Lehmann shift, or difference of rates.
    pub estimate: Option<f64>,
    /// Confidence interval of `estimate` at `ci_level`.
    pub ci: Option<[f64; 2]>,
    pub ci_level: f64,
    /// estimate / |baseline median| (continuous) or canary rate / baseline rate − 1 (proportion);
    /// `null` when the denominator is 0.
    pub relative_change: Option<f64>,
    pub effect: Option<Effect>,
    pub tails: Vec<TailTest>,
    /// One-sided Kolmogorov–Smirnov tests, one per failing direction (continuous metrics).
    #[serde(default)]
    pub shapes: Vec<shape::ShapeTest>,
    /// Minimum detectable effect and the samples still needed ([`power`]).
    #[serde(default)]
    pub power: Option<power::Power>,
    pub baseline: Summary,
    pub canary: Summary,
    pub series: Series,
}

/// The outcome of judging a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Judgement {
    pub verdict: Verdict,
    pub score: f64,
    /// Why this verdict, in words.
    pub reason: String,
    /// The family-wise significance level (1 − confidence).
    pub alpha: f64,
    /// Number of hypothesis tests in the family.
    pub tests: usize,
    pub config: JudgeConfig,
    pub metrics: Vec<MetricResult>,
    /// The looks of a sequential judgement ([`sequential`]); absent for a single look.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequential: Option<sequential::SequentialReport>,
}
