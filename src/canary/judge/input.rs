//! What the judge takes: the `pipeline analyze` input format ([`JudgeInput`], [`MetricInput`]), the
//! `[judge]` settings ([`JudgeConfig`]), their validation, and the judge's error type.

use serde::{Deserialize, Serialize};

/// Which direction of change fails a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum FailOn {
    Increase,
    Decrease,
    #[default]
    Either,
}

impl FailOn {
    pub(super) fn up(self) -> bool {
        matches!(self, FailOn::Increase | FailOn::Either)
    }
    pub(super) fn down(self) -> bool {
        matches!(self, FailOn::Decrease | FailOn::Either)
    }
}

/// How a metric's samples are judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricKind {
    /// Any real-valued sample: rank test, Hodges–Lehmann shift, tail test.
    Continuous,
    /// 0/1 samples (1 = event, e.g. a 5xx): test of two proportions.
    Proportion,
}

/// One metric of the `pipeline analyze` input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricInput {
    pub name: String,
    #[serde(default)]
    pub fail_on: FailOn,
    /// Default: `proportion` when every value is 0 or 1, else `continuous`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<MetricKind>,
    /// Unit for display, e.g. `ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    pub baseline: Vec<f64>,
    pub canary: Vec<f64>,
    /// Seconds since the run started, one per baseline sample (optional; enables the over-time chart).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_time_s: Option<Vec<f64>>,
    /// Seconds since the run started, one per canary sample.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_time_s: Option<Vec<f64>>,
    /// Tolerated increase: relative for continuous metrics (0.05 = +5 %), absolute for proportions. Default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_increase: Option<f64>,
    /// Tolerated decrease, same units as `allowed_increase`. Default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_decrease: Option<f64>,
    /// Weight in the score. Default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<f64>,
    /// A critical metric that fails sets the score to 0 and the verdict to FAIL.
    #[serde(default)]
    pub critical: bool,
    /// Minimum samples per arm for this metric (default: the config's `min_samples`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_samples: Option<usize>,
    /// A 0/1 error metric that also checks the baseline itself: when the baseline's rate is above
    /// `[judge] max_baseline_error_rate`, the baseline is unhealthy and the verdict is INCONCLUSIVE.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub baseline_health: bool,
}

impl MetricInput {
    /// A metric with defaults for every optional setting.
    pub fn new(
        name: impl Into<String>,
        fail_on: FailOn,
        baseline: Vec<f64>,
        canary: Vec<f64>,
    ) -> Self {
        MetricInput {
            name: name.into(),
            fail_on,
            kind: None,
            unit: None,
            baseline,
            canary,
            baseline_time_s: None,
            canary_time_s: None,
            allowed_increase: None,
            allowed_decrease: None,
            weight: None,
            critical: false,
            min_samples: None,
            baseline_health: false,
        }
    }
}

/// The `pipeline analyze` input: `{"metrics": [...]}`. The canary command writes its samples in this format.
/// The fewest samples per arm any metric is judged on: `[judge] min_samples` and a metric's own
/// `min_samples` may not go below it.
pub const MIN_SAMPLES_FLOOR: usize = 2;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct JudgeInput {
    pub metrics: Vec<MetricInput>,
    /// Requests of the run that got no response at all and so belong to no arm (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unanswered: Option<Unanswered>,
}

/// Requests without any response (refused, reset, timed out before the proxy answered): no arm header,
/// so no arm's sample. Above `[judge] max_unanswered_share` of all requests, the comparison is incomplete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Unanswered {
    /// Requests that got no response and carried no arm.
    pub requests: u64,
    /// All requests of the run.
    pub total: u64,
}

/// How p-values of one judgement are adjusted for the number of tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum MultipleTesting {
    #[default]
    Holm,
    Bonferroni,
    None,
}

/// Judge settings: the `[judge]` section of `pipeline.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JudgeConfig {
    /// Confidence level of the intervals; α = 1 − confidence is the family-wise significance level.
    pub confidence: f64,
    /// Minimum score for PASS.
    pub pass_score: f64,
    /// Minimum score for MARGINAL.
    pub marginal_score: f64,
    /// Minimum samples per arm before a metric is judged (fewer: NoData).
    pub min_samples: usize,
    /// Quantile beyond which the tail test counts samples (upper tail; 1 − q for the lower one).
    pub tail_quantile: f64,
    pub multiple_testing: MultipleTesting,
    /// Highest baseline rate of a `baseline_health` metric (the canary's `error_rate`) for a comparison:
    /// above it the baseline is unhealthy and the verdict INCONCLUSIVE.
    pub max_baseline_error_rate: f64,
    /// Highest share of all requests that may end without any response (attributable to no arm) before
    /// a PASS or MARGINAL turns INCONCLUSIVE.
    pub max_unanswered_share: f64,
}

impl Default for JudgeConfig {
    fn default() -> Self {
        JudgeConfig {
            confidence: 0.98,
            pass_score: 95.0,
            marginal_score: 75.0,
            min_samples: 50,
            tail_quantile: 0.99,
            multiple_testing: MultipleTesting::Holm,
            max_baseline_error_rate: 0.05,
            max_unanswered_share: 0.01,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum JudgeError {
    #[error("invalid judge setting `{key}` = {value}: {expected}")]
    Config {
        key: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("invalid input: {0}")]
    Input(String),
    #[error("metric #{index} `{name}`: {problem}")]
    Metric {
        index: usize,
        name: String,
        problem: String,
    },
}

impl JudgeConfig {
    /// Checks every setting's range; the message names the setting and the allowed range.
    pub fn validate(&self) -> Result<(), JudgeError> {
        let bad = |key, value: f64, expected| {
            Err(JudgeError::Config {
                key,
                value: value.to_string(),
                expected,
            })
        };
        if !(self.confidence > 0.5 && self.confidence < 1.0) {
            return bad(
                "confidence",
                self.confidence,
                "expected a level between 0.5 and 1 (exclusive), e.g. 0.98",
            );
        }
        if !(0.0..=100.0).contains(&self.pass_score) {
            return bad("pass_score", self.pass_score, "expected 0 to 100");
        }
        if !(0.0..=self.pass_score).contains(&self.marginal_score) {
            return bad(
                "marginal_score",
                self.marginal_score,
                "expected 0 up to pass_score",
            );
        }
        if self.min_samples < MIN_SAMPLES_FLOOR {
            return bad(
                "min_samples",
                self.min_samples as f64,
                "expected at least 2",
            );
        }
        if !(self.tail_quantile > 0.5 && self.tail_quantile < 1.0) {
            return bad(
                "tail_quantile",
                self.tail_quantile,
                "expected a quantile between 0.5 and 1 (exclusive), e.g. 0.99",
            );
        }
        for (key, v) in [
            ("max_baseline_error_rate", self.max_baseline_error_rate),
            ("max_unanswered_share", self.max_unanswered_share),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return bad(key, v, "expected a share from 0 to 1, e.g. 0.05");
            }
        }
        Ok(())
    }

    /// The family-wise significance level α = 1 − confidence.
    pub fn alpha(&self) -> f64 {
        1.0 - self.confidence
    }
}

impl JudgeInput {
    /// Checks names (non-empty, unique), values (finite; 0/1 for proportions), time offsets (one per sample,
    /// finite), weights and allowances (finite, ≥ 0).
    pub fn validate(&self) -> Result<(), JudgeError> {
        self.validate_with(None)
    }

    /// [`JudgeInput::validate`], and with a config: a per-metric `min_samples` below the least the config
    /// itself accepts ([`MIN_SAMPLES_FLOOR`]) is refused: no metric is judged on fewer samples than any
    /// configuration could allow. A metric may set a lower floor than the config's default on purpose (the
    /// canary's host metrics are sampled once a second, so a 15 s window holds 15 of them).
    pub fn validate_with(&self, config: Option<&JudgeConfig>) -> Result<(), JudgeError> {
        let mut seen = std::collections::BTreeSet::new();
        for (index, m) in self.metrics.iter().enumerate() {
            let err = |problem: String| JudgeError::Metric {
                index,
                name: m.name.clone(),
                problem,
            };
            if m.name.trim().is_empty() {
                return Err(err("the name is empty".into()));
            }
            if !seen.insert(m.name.as_str()) {
                return Err(err(
                    "the name appears twice; metric names must be unique".into()
                ));
            }
            for (arm, values) in [("baseline", &m.baseline), ("canary", &m.canary)] {
                if let Some(i) = values.iter().position(|v| !v.is_finite()) {
                    return Err(err(format!("{arm}[{i}] is not a finite number")));
                }
                if m.kind == Some(MetricKind::Proportion) {
                    if let Some(i) = values.iter().position(|&v| v != 0.0 && v != 1.0) {
                        return Err(err(format!(
                            "{arm}[{i}] = {} but a proportion metric takes only 0 and 1",
                            values[i]
                        )));
                    }
                }
            }
            for (key, times, values) in [
                ("baseline_time_s", &m.baseline_time_s, &m.baseline),
                ("canary_time_s", &m.canary_time_s, &m.canary),
            ] {
                if let Some(t) = times {
                    if t.len() != values.len() {
                        return Err(err(format!(
                            "{key} has {} offsets for {} samples; give one offset per sample",
                            t.len(),
                            values.len()
                        )));
                    }
                    if let Some(i) = t.iter().position(|v| !v.is_finite()) {
                        return Err(err(format!("{key}[{i}] is not a finite number")));
                    }
                }
            }
            for (key, v) in [
                ("allowed_increase", m.allowed_increase),
                ("allowed_decrease", m.allowed_decrease),
                ("weight", m.weight),
            ] {
                if let Some(v) = v {
                    if !(v.is_finite() && v >= 0.0) {
                        return Err(err(format!("{key} = {v}; expected a number ≥ 0")));
                    }
                }
            }
            if m.min_samples == Some(0) {
                return Err(err("min_samples = 0; expected at least 1".into()));
            }
            if let (Some(own), Some(_)) = (m.min_samples, config) {
                if own < MIN_SAMPLES_FLOOR {
                    return Err(err(format!(
                        "min_samples = {own} is below the judge's minimum of {MIN_SAMPLES_FLOOR} samples per arm; raise it"
                    )));
                }
            }
        }
        if let Some(u) = self.unanswered {
            if u.requests > u.total {
                return Err(JudgeError::Input(format!(
                    "unanswered.requests = {} is more than unanswered.total = {}",
                    u.requests, u.total
                )));
            }
        }
        Ok(())
    }
}
