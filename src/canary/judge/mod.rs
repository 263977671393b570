//! The statistical judge: baseline against canary, metric by metric, then one score and verdict.
//!
//! # Use
//! ```no_run
//! use pipeline::canary::judge::{judge, JudgeConfig, JudgeInput};
//! let input: JudgeInput = serde_json::from_str(r#"{"metrics":[{"name":"latency_ms","fail_on":"increase",
//!     "baseline":[10.0,11.0,12.0],"canary":[10.5,11.5,30.0]}]}"#).unwrap();
//! let judgement = judge(&input, &JudgeConfig::default()).unwrap();
//! println!("{:?} {}", judgement.verdict, judgement.score);
//! ```
//! [`JudgeInput`] is exactly the `pipeline analyze` file format (documented in the README, section `analyze`);
//! [`JudgeConfig`] is the `[judge]` section of `pipeline.toml`. [`judge`] is pure: same input and config,
//! same [`Judgement`], field for field (no clock, no unseeded randomness).
//!
//! # Method, per metric
//! - Fewer than `min_samples` values in either arm: **NoData**.
//! - Continuous metrics (latency, size, CPU …): two-sided Mann–Whitney U with tie and continuity correction
//!   (R `wilcox.test(exact = FALSE, correct = TRUE)`), the Hodges–Lehmann shift Δ = canary − baseline with its
//!   confidence interval at `confidence` (default 0.98, as Kayenta), and the effect size CLES = U/(n·m).
//!   A location test misses a slow tail (2 % of requests 10× slower moves the median by almost nothing), so
//!   each failing direction also gets a **tail test**: the share of each arm at or beyond the pooled
//!   `tail_quantile` (default p99; p1 for decreases), compared with the two-proportion test.
//! - 0/1 metrics (error rate; `kind = "proportion"`, or every value 0 or 1): two-proportion test with Yates'
//!   correction (R `prop.test`), Δ = difference of rates with its Wald interval, effect size Cohen's h.
//! - **Multiple testing**: all tests of a judgement form one family; p-values are adjusted with Holm's
//!   method (default; `bonferroni` or `none` selectable) and compared with α = 1 − `confidence`, so the
//!   chance that an A/A run (no real difference) fails any metric is at most α (2 %), whatever the number
//!   of metrics.
//! - **High** (Low symmetric) when the metric may fail on an increase, a test's adjusted p < α, the change
//!   points up, and its size exceeds the allowance: for the location test Δ / |baseline median| >
//!   `allowed_increase`; for the tail test (canary quantile / baseline quantile − 1) > `allowed_increase`;
//!   for proportions the rate difference (absolute, e.g. 0.01 = one percentage point) > `allowed_increase`.
//!   Otherwise **Pass**.
//!
//! # Score and verdict
//! Score = 100 · (weight of passing metrics) / (weight of metrics with data), two decimals; 0 when a
//! `critical` metric is High or Low. Verdict: FAIL on a critical failure; else PASS (score ≥ `pass_score`,
//! 95), MARGINAL (≥ `marginal_score`, 75) or FAIL; but any metric without data turns a PASS or MARGINAL
//! into **INCONCLUSIVE** (never a PASS without data), as does having no metric with data at all.

pub mod boundary;
mod input;
pub mod power;
pub mod sequential;
pub mod series;
pub mod shape;
pub mod stats;

pub use input::*;

use serde::{Deserialize, Serialize};

use crate::Outcome;

use series::{Cdf, Timeline};
use shape::{shape_findings, shape_tests};
use stats::{hodges_lehmann, mann_whitney, pooled_quantile, quantile_sorted, two_proportions};

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

fn summarize(sorted: &[f64]) -> Summary {
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

/// Judges every metric of `input` and scores the run. Errors only on invalid input or config.
pub fn judge(input: &JudgeInput, config: &JudgeConfig) -> Result<Judgement, JudgeError> {
    config.validate()?;
    input.validate_with(Some(config))?;
    let prepared: Vec<Prepared> = input.metrics.iter().map(|m| prepare(m, config)).collect();
    let raw: Vec<f64> = prepared.iter().flat_map(|p| p.raw_p()).collect();
    let family = raw.len();
    Ok(conclude(input, prepared, raw, family, config, false))
}

/// Adjusts the family's p-values `raw` (one per test of `prepared`, in order; padded with 1s up to
/// `family` tests), classifies, scores, and adds the power figures.
fn conclude(
    input: &JudgeInput,
    mut prepared: Vec<Prepared>,
    raw: Vec<f64>,
    family: usize,
    config: &JudgeConfig,
    sequential: bool,
) -> Judgement {
    let alpha = config.alpha();
    let tests = family.max(raw.len());
    let mut padded = raw.clone();
    padded.resize(tests, 1.0);
    // One family of tests across all metrics; adjust, then classify.
    let adjusted = match config.multiple_testing {
        MultipleTesting::Holm => stats::holm(&padded),
        MultipleTesting::Bonferroni => stats::bonferroni(&padded),
        MultipleTesting::None => padded,
    };
    let mut next = adjusted.into_iter();
    for p in &mut prepared {
        p.set_adjusted(&mut next);
    }
    let mut metrics: Vec<MetricResult> = prepared
        .into_iter()
        .map(|p| finite_only(classify(p, alpha)))
        .collect();
    for m in &mut metrics {
        m.power = Some(power::power(m, alpha, tests, sequential));
    }
    let (verdict, score, reason) = score(&metrics, config);
    let (verdict, score, mut reason) =
        comparability(input, &metrics, config, (verdict, score, reason));
    if verdict == Verdict::Inconclusive {
        if let Some(more) = power::more_data_text(&metrics) {
            reason.push_str(&format!("; {more}"));
        }
    }
    Judgement {
        verdict,
        score,
        reason,
        alpha,
        tests,
        config: config.clone(),
        metrics,
        sequential: None,
    }
}

/// A metric with its tests run but not yet classified (p-values still unadjusted).
struct Prepared {
    result: MetricResult,
    /// Direction of the main test: +1 canary higher, −1 lower, 0 none.
    direction: f64,
}

impl Prepared {
    fn raw_p(&self) -> Vec<f64> {
        let r = &self.result;
        r.p_value
            .into_iter()
            .chain(r.tails.iter().map(|t| t.p_value))
            .chain(r.shapes.iter().map(|t| t.p_value))
            .collect()
    }

    fn set_adjusted(&mut self, next: &mut impl Iterator<Item = f64>) {
        let r = &mut self.result;
        if r.p_value.is_some() {
            r.p_adjusted = next.next();
        }
        for t in &mut r.tails {
            t.p_adjusted = next.next().expect("one adjusted p per test");
        }
        for t in &mut r.shapes {
            t.p_adjusted = next.next().expect("one adjusted p per test");
        }
    }
}

fn prepare(m: &MetricInput, config: &JudgeConfig) -> Prepared {
    let kind = m.kind.unwrap_or_else(|| {
        let zero_one = |v: &f64| *v == 0.0 || *v == 1.0;
        let all = m.baseline.iter().chain(&m.canary);
        if m.baseline.len() + m.canary.len() > 0 && all.clone().all(zero_one) {
            MetricKind::Proportion
        } else {
            MetricKind::Continuous
        }
    });
    let (b, c) = stats::sorted_pair(&m.baseline, &m.canary);
    let min_samples = m.min_samples.unwrap_or(config.min_samples);
    let mut result = MetricResult {
        name: m.name.clone(),
        kind,
        unit: m.unit.clone(),
        fail_on: m.fail_on,
        critical: m.critical,
        weight: m.weight.unwrap_or(1.0),
        allowed_increase: m.allowed_increase.unwrap_or(0.0),
        allowed_decrease: m.allowed_decrease.unwrap_or(0.0),
        min_samples,
        classification: Classification::NoData,
        reason: String::new(),
        test: None,
        u: None,
        z: None,
        p_value: None,
        p_adjusted: None,
        estimate: None,
        ci: None,
        ci_level: config.confidence,
        relative_change: None,
        effect: None,
        tails: Vec::new(),
        shapes: Vec::new(),
        power: None,
        baseline: summarize(&b),
        canary: summarize(&c),
        series: Series {
            cdf: None,
            timeline: None,
        },
    };
    if let (Some(tb), Some(tc)) = (&m.baseline_time_s, &m.canary_time_s) {
        result.series.timeline = series::timeline(
            (tb, &m.baseline),
            (tc, &m.canary),
            kind == MetricKind::Proportion,
        );
    }
    if b.len() < min_samples || c.len() < min_samples {
        result.reason = format!(
            "not enough data: baseline has {} samples, canary {}; at least {min_samples} per arm are needed",
            b.len(),
            c.len()
        );
        return Prepared {
            result,
            direction: 0.0,
        };
    }
    if kind == MetricKind::Continuous {
        result.series.cdf = Some(series::cdf(&b, &c));
    }
    let mw = mann_whitney(&c, &b);
    result.u = Some(mw.u);
    let direction = match kind {
        MetricKind::Continuous => {
            let shift = hodges_lehmann(&c, &b, config.confidence);
            result.test = Some("mann-whitney-u".into());
            result.z = Some(mw.z);
            result.p_value = Some(mw.p_value);
            result.estimate = Some(shift.estimate);
            result.ci = Some([shift.lower, shift.upper]);
            let median = quantile_sorted(&b, 0.5).abs();
            result.relative_change = (median > 0.0).then(|| shift.estimate / median);
            result.effect = Some(Effect {
                measure: "cles".into(),
                value: mw.cles,
            });
            let q = config.tail_quantile;
            if m.fail_on.up() {
                result.tails.push(tail_test(&b, &c, Side::Upper, q, config));
            }
            if m.fail_on.down() {
                result
                    .tails
                    .push(tail_test(&b, &c, Side::Lower, 1.0 - q, config));
            }
            result.shapes = shape_tests(&b, &c, &result);
            mw.z.signum() * (mw.z != 0.0) as u8 as f64 + 0.0
        }
        MetricKind::Proportion => {
            let events = |s: &[f64]| s.iter().filter(|&&v| v == 1.0).count() as u64;
            let (ec, eb) = (events(&c), events(&b));
            let pt = two_proportions(ec, c.len() as u64, eb, b.len() as u64, config.confidence);
            result.test = Some("two-proportions".into());
            result.z = Some(pt.z);
            result.p_value = Some(pt.p_value);
            result.estimate = Some(pt.estimate);
            result.ci = Some([pt.lower, pt.upper]);
            let (rc, rb) = (ec as f64 / c.len() as f64, eb as f64 / b.len() as f64);
            result.relative_change = (rb > 0.0).then(|| rc / rb - 1.0);
            result.effect = Some(Effect {
                measure: "cohens_h".into(),
                value: 2.0 * rc.sqrt().asin() - 2.0 * rb.sqrt().asin(),
            });
            pt.estimate.signum() * (pt.estimate != 0.0) as u8 as f64 + 0.0
        }
    };
    Prepared { result, direction }
}

fn tail_test(b: &[f64], c: &[f64], side: Side, q: f64, config: &JudgeConfig) -> TailTest {
    let threshold = pooled_quantile(b, c, q);
    let beyond = |s: &[f64]| -> u64 {
        match side {
            Side::Upper => (s.len() - s.partition_point(|&v| v < threshold)) as u64,
            Side::Lower => s.partition_point(|&v| v <= threshold) as u64,
        }
    };
    let (bb, cb) = (beyond(b), beyond(c));
    let pt = two_proportions(cb, c.len() as u64, bb, b.len() as u64, config.confidence);
    let (bq, cq) = (quantile_sorted(b, q), quantile_sorted(c, q));
    TailTest {
        side,
        quantile: q,
        threshold,
        baseline_beyond: bb,
        canary_beyond: cb,
        baseline_quantile: bq,
        canary_quantile: cq,
        relative_change: (bq != 0.0).then(|| (cq - bq) / bq.abs()),
        p_value: pt.p_value,
        p_adjusted: pt.p_value,
        flagged: false,
    }
}

/// Whether a change exceeds its allowance. With no allowance (0) every significant change in the failing
/// direction counts, even when the point estimate is 0 (discrete data: a quarter of the responses shrinking
/// leaves the median shift at 0). `change` None means the reference was 0: any change in the direction counts.
fn beyond_allowance(change: Option<f64>, fallback: f64, allowed: f64, up: bool) -> bool {
    if allowed <= 0.0 {
        return true;
    }
    let v = change.unwrap_or(if fallback == 0.0 {
        0.0
    } else {
        fallback.signum() * f64::INFINITY
    });
    if up {
        v > allowed
    } else {
        -v > allowed
    }
}

/// Drops estimates that overflowed f64 (samples near ±1e308): `null` where the report schema allows it,
/// never `inf` or `NaN` (JSON has neither). The reason, written before, says the value was out of range.
fn finite_only(mut r: MetricResult) -> MetricResult {
    let keep = |v: Option<f64>| v.filter(|x| x.is_finite());
    r.estimate = keep(r.estimate);
    r.relative_change = keep(r.relative_change);
    r.z = keep(r.z);
    r.u = keep(r.u);
    r.ci = r.ci.filter(|c| c.iter().all(|x| x.is_finite()));
    r.effect = r.effect.filter(|e| e.value.is_finite());
    r
}

fn classify(p: Prepared, alpha: f64) -> MetricResult {
    let Prepared {
        mut result,
        direction,
    } = p;
    let Some(p_adj) = result.p_adjusted else {
        return result; // NoData, reason already set
    };
    let r = &result;
    let est = r.estimate.unwrap_or(0.0);
    let unit = r
        .unit
        .as_deref()
        .map(|u| format!(" {u}"))
        .unwrap_or_default();
    let delta = match r.kind {
        MetricKind::Continuous => format!("{}{unit}", num(est)),
        MetricKind::Proportion => format!("{} pp", pct(est).trim_end_matches('%')),
    };
    let (main_change, main_allow_text) = match r.kind {
        MetricKind::Continuous => (r.relative_change, "of the baseline median"),
        MetricKind::Proportion => (Some(est), "absolute"),
    };
    let sig = p_adj < alpha;
    let mut findings: Vec<(f64, Classification, String)> = Vec::new();
    for (up, allowed) in [(true, r.allowed_increase), (false, r.allowed_decrease)] {
        let allowed_dir = if up { r.fail_on.up() } else { r.fail_on.down() };
        let points = if up { direction > 0.0 } else { direction < 0.0 };
        if allowed_dir && sig && points && beyond_allowance(main_change, est, allowed, up) {
            let class = if up {
                Classification::High
            } else {
                Classification::Low
            };
            let change = match (r.kind, main_change) {
                (MetricKind::Continuous, Some(c)) => format!("{} {main_allow_text}", pct(c)),
                (MetricKind::Continuous, None) => "from a zero baseline median".into(),
                (MetricKind::Proportion, _) => {
                    format!("rate {}", pct_plain(r.canary.mean.unwrap_or(0.0)))
                }
            };
            findings.push((
                p_adj,
                class,
                format!(
                    "canary {}: Δ = {delta} ({change}, allowed {}{}), p_adj = {} < α = {}",
                    if up { "higher" } else { "lower" },
                    if up { "+" } else { "−" },
                    match r.kind {
                        MetricKind::Continuous => pct_plain(allowed),
                        MetricKind::Proportion => format!("{} pp", num(allowed * 100.0)),
                    },
                    fmt_p(p_adj),
                    num(alpha)
                ),
            ));
        }
    }
    for t in &mut result.tails {
        let up = t.side == Side::Upper;
        let allowed = if up {
            result.allowed_increase
        } else {
            result.allowed_decrease
        };
        let (nb, nc) = (result.baseline.n as f64, result.canary.n as f64);
        let more_in_canary = t.canary_beyond as f64 / nc > t.baseline_beyond as f64 / nb;
        let quantile_moved = beyond_allowance(
            t.relative_change,
            t.canary_quantile - t.baseline_quantile,
            allowed,
            up,
        );
        if t.p_adjusted < alpha && more_in_canary && quantile_moved {
            t.flagged = true;
            let (class, word, sym) = if up {
                (Classification::High, "at or above", "≥")
            } else {
                (Classification::Low, "at or below", "≤")
            };
            findings.push((
                t.p_adjusted,
                class,
                format!(
                    "tail: {} of canary vs {} of baseline {word} the pooled p{} ({sym} {}{unit}); canary p{} = {}{unit} vs {}{unit}, p_adj = {} < α = {}",
                    pct_plain(t.canary_beyond as f64 / nc),
                    pct_plain(t.baseline_beyond as f64 / nb),
                    quantile_label(t.quantile),
                    num(t.threshold),
                    quantile_label(t.quantile),
                    num(t.canary_quantile),
                    num(t.baseline_quantile),
                    fmt_p(t.p_adjusted),
                    num(alpha)
                ),
            ));
        }
    }
    findings.extend(shape_findings(&mut result, alpha));
    findings.sort_by(|a, b| a.0.total_cmp(&b.0));
    match findings.first() {
        Some((_, class, _)) => {
            result.classification = *class;
            result.reason = findings
                .iter()
                .map(|f| f.2.as_str())
                .collect::<Vec<_>>()
                .join("; ");
        }
        None => {
            result.classification = Classification::Pass;
            result.reason = if sig {
                format!(
                    "significant change Δ = {delta} (p_adj = {}) but within the allowance or not in a failing direction",
                    fmt_p(p_adj)
                )
            } else {
                format!(
                    "no significant difference: Δ = {delta}, p_adj = {} ≥ α = {}",
                    fmt_p(p_adj),
                    num(alpha)
                )
            };
        }
    }
    result
}

fn score(metrics: &[MetricResult], config: &JudgeConfig) -> (Verdict, f64, String) {
    let failed =
        |m: &MetricResult| matches!(m.classification, Classification::High | Classification::Low);
    let with_data: Vec<&MetricResult> = metrics
        .iter()
        .filter(|m| m.classification != Classification::NoData)
        .collect();
    let no_data: Vec<&str> = metrics
        .iter()
        .filter(|m| m.classification == Classification::NoData)
        .map(|m| m.name.as_str())
        .collect();
    if let Some(m) = metrics.iter().find(|m| m.critical && failed(m)) {
        return (
            Verdict::Fail,
            0.0,
            format!(
                "critical metric `{}` is {:?}: {}",
                m.name, m.classification, m.reason
            ),
        );
    }
    if with_data.is_empty() {
        let why = if metrics.is_empty() {
            "no metrics were given".to_string()
        } else {
            format!("no metric has enough data ({})", no_data.join(", "))
        };
        return (Verdict::Inconclusive, 0.0, why);
    }
    let total: f64 = with_data.iter().map(|m| m.weight).sum();
    if total <= 0.0 {
        // Nothing has weight: a score would be 100 out of nothing. Not a PASS.
        return (
            Verdict::Inconclusive,
            0.0,
            format!(
                "every metric with data has weight 0 ({}), so there is nothing to score; give at least one metric a weight above 0",
                with_data.iter().map(|m| m.name.as_str()).collect::<Vec<_>>().join(", ")
            ),
        );
    }
    let passed: f64 = with_data
        .iter()
        .filter(|m| m.classification == Classification::Pass)
        .map(|m| m.weight)
        .sum();
    let raw = 100.0 * passed / total;
    // `+ 0.0` turns a `-0` into `0`: a score is never printed or serialized as `-0`.
    let score = (raw * 100.0).round() / 100.0 + 0.0;
    let failing: Vec<String> = with_data
        .iter()
        .filter(|m| failed(m))
        .map(|m| format!("{} {:?}", m.name, m.classification))
        .collect();
    let (verdict, mut reason) = if score >= config.pass_score {
        (
            Verdict::Pass,
            format!("score {score} ≥ pass threshold {}", config.pass_score),
        )
    } else if score >= config.marginal_score {
        (
            Verdict::Marginal,
            format!(
                "score {score} is below the pass threshold {} but ≥ marginal {}",
                config.pass_score, config.marginal_score
            ),
        )
    } else {
        (
            Verdict::Fail,
            format!(
                "score {score} < marginal threshold {}",
                config.marginal_score
            ),
        )
    };
    if !failing.is_empty() {
        reason.push_str(&format!(" (failing: {})", failing.join(", ")));
    }
    if !no_data.is_empty() && verdict != Verdict::Fail {
        return (
            Verdict::Inconclusive,
            score,
            format!(
                "not enough data for {}; the metrics with data: {reason}",
                no_data.join(", ")
            ),
        );
    }
    (verdict, score, reason)
}

/// The rules that make a comparison meaningless or incomplete, applied after scoring: a baseline whose own
/// error rate (a `baseline_health` metric) is above `max_baseline_error_rate` is no reference, so the verdict
/// is INCONCLUSIVE whatever the canary did; more requests without any response (no arm to blame) than
/// `max_unanswered_share` of all turn a PASS or MARGINAL into INCONCLUSIVE (a FAIL shown by the attributed
/// requests stands).
fn comparability(
    input: &JudgeInput,
    metrics: &[MetricResult],
    config: &JudgeConfig,
    (verdict, score, reason): (Verdict, f64, String),
) -> (Verdict, f64, String) {
    for (m, r) in input.metrics.iter().zip(metrics) {
        let rate = r.baseline.mean.unwrap_or(0.0);
        if m.baseline_health && r.baseline.n > 0 && rate > config.max_baseline_error_rate {
            return (
                Verdict::Inconclusive,
                score,
                format!(
                    "the baseline is unhealthy: its own `{}` is {} (above max_baseline_error_rate {}), so there is no healthy reference to judge the canary against (the scoring said: {reason})",
                    r.name,
                    pct_plain(rate),
                    pct_plain(config.max_baseline_error_rate)
                ),
            );
        }
    }
    if let Some(u) = input.unanswered {
        let share = if u.total > 0 {
            u.requests as f64 / u.total as f64
        } else {
            0.0
        };
        if share > config.max_unanswered_share && verdict != Verdict::Fail {
            return (
                Verdict::Inconclusive,
                score,
                format!(
                    "{} of {} requests ({}) got no response at all and belong to no arm (above max_unanswered_share {}): the proxy or the network failed, so the comparison is incomplete (the metrics with data: {reason})",
                    u.requests,
                    u.total,
                    pct_plain(share),
                    pct_plain(config.max_unanswered_share)
                ),
            );
        }
    }
    (verdict, score, reason)
}

/// A number with up to 4 significant digits, for messages and tables.
pub fn num(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    if !v.is_finite() {
        return "out of the f64 range".into();
    }
    let mag = v.abs().log10().floor() as i32;
    if !(-4..6).contains(&mag) {
        return format!("{v:.3e}");
    }
    let decimals = (3 - mag).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// A p-value for messages: 4 significant digits, scientific below 1e-4.
pub fn fmt_p(p: f64) -> String {
    if p < 1e-4 {
        format!("{p:.2e}")
    } else {
        num(p)
    }
}

/// A signed relative change as a percentage, e.g. `+10.2%`.
pub fn pct(v: f64) -> String {
    let s = num(v * 100.0);
    if v > 0.0 {
        format!("+{s}%")
    } else {
        format!("{s}%")
    }
}

fn pct_plain(v: f64) -> String {
    format!("{}%", num(v * 100.0))
}

/// `0.99` → `99`, `0.999` → `99.9`, `0.01` → `1`.
pub fn quantile_label(q: f64) -> String {
    num(q * 100.0)
}

#[cfg(test)]
mod comparability_tests;
#[cfg(test)]
mod tests;
