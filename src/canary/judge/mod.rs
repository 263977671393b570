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
mod normal;
mod pairwise;
pub mod power;
mod result;
pub mod sequential;
pub mod series;
pub mod shape;
pub mod stats;
mod text;
mod verdict;

pub use input::*;
pub use result::*;
pub use text::{fmt_p, num, pct, quantile_label};

use shape::shape_tests;
use stats::{hodges_lehmann, mann_whitney, pooled_quantile, quantile_sorted, two_proportions};
use text::pct_plain;
use verdict::{classify, comparability, score};

/// Judges every metric of `input` and scores the run. Errors only on invalid input or config.
pub fn judge(input: &JudgeInput, config: &JudgeConfig) -> Result<Judgement, JudgeError> {
    config.validate()?;
    input.validate_with(Some(config))?;
    let prepared: Vec<Prepared> = input
        .metrics
        .iter()
        .map(|m| prepare(m, config, Detail::Full))
        .collect();
    let raw: Vec<f64> = prepared.iter().flat_map(Prepared::raw_p).collect();
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
    let mut padded = raw;
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

/// How much of a metric's result [`prepare`] computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Detail {
    /// Everything the report shows.
    Full,
    /// Only what the verdict depends on, for an interim look that may never be reported: no confidence
    /// interval of the shift, no timeline and no CDF (the verdict is the same as with `Full`).
    Verdict,
}

fn prepare(m: &MetricInput, config: &JudgeConfig, detail: Detail) -> Prepared {
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
    if let (Some(tb), Some(tc), Detail::Full) = (&m.baseline_time_s, &m.canary_time_s, detail) {
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
    if kind == MetricKind::Continuous && detail == Detail::Full {
        result.series.cdf = Some(series::cdf(&b, &c));
    }
    let mw = mann_whitney(&c, &b);
    result.u = Some(mw.u);
    let direction = match kind {
        MetricKind::Continuous => {
            let estimate = match detail {
                Detail::Full => {
                    let shift = hodges_lehmann(&c, &b, config.confidence);
                    result.ci = Some([shift.lower, shift.upper]);
                    shift.estimate
                }
                Detail::Verdict => stats::hodges_lehmann_estimate(&c, &b),
            };
            result.test = Some("mann-whitney-u".into());
            result.z = Some(mw.z);
            result.p_value = Some(mw.p_value);
            result.estimate = Some(estimate);
            let median = quantile_sorted(&b, 0.5).abs();
            result.relative_change = (median > 0.0).then(|| estimate / median);
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

#[cfg(test)]
mod comparability_tests;
#[cfg(test)]
mod tests;
