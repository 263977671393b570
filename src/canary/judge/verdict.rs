//! From tests to labels and a verdict: each metric classified against α and its allowances, the
//! weighted score, and the comparability rules that turn a verdict INCONCLUSIVE.

use super::shape::shape_findings;
use super::text::{fmt_p, num, pct, pct_plain, quantile_label};
use super::{
    Classification, JudgeConfig, JudgeInput, MetricKind, MetricResult, Prepared, Side, Verdict,
};

/// Whether a change exceeds its allowance. With no allowance (0) every significant change in the failing
/// direction counts, even when the point estimate is 0 (discrete data: a quarter of the responses shrinking
/// leaves the median shift at 0). `change` None means the reference was 0: any change in the direction counts.
pub(super) fn beyond_allowance(change: Option<f64>, fallback: f64, allowed: f64, up: bool) -> bool {
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

pub(super) fn classify(p: Prepared, alpha: f64) -> MetricResult {
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

pub(super) fn score(metrics: &[MetricResult], config: &JudgeConfig) -> (Verdict, f64, String) {
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
pub(super) fn comparability(
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
