//! Prometheus as a metric source: a metrics file of `[[metric]]` tables (the judge's per-metric settings
//! plus PromQL queries per arm), range queries over a window, and the resulting [`JudgeInput`] — each point
//! of an arm's single series is one sample, its time offset the seconds since the window's start.
//!
//! Used by `pipeline analyze --prometheus` (retrospective, [`retro`]) and `pipeline canary` (the load window).

pub mod canary;
pub mod client;
pub mod retro;
pub mod time;

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::canary::judge::{FailOn, JudgeInput, MetricInput, MetricKind};

pub use client::{Auth, Client, RangeSeries, MAX_POINTS};

#[derive(Debug, thiserror::Error)]
pub enum PromError {
    #[error(
        "invalid Prometheus URL `{url}`: {why}; give the server's root, e.g. http://127.0.0.1:9090"
    )]
    Url { url: String, why: String },
    #[error("cannot reach Prometheus at {url}: {cause}\n(check the URL and that Prometheus runs: curl {url}/-/ready)")]
    Unreachable { url: String, cause: String },
    #[error("Prometheus at {url} answered HTTP {status} without an API answer: {body}{}", auth_hint(*.status))]
    Http {
        url: String,
        status: u16,
        body: String,
    },
    #[error(
        "Prometheus rejected the query `{query}` (HTTP {status}, errorType {error_type}): {error}"
    )]
    Query {
        query: String,
        status: u16,
        error_type: String,
        error: String,
    },
    #[error("Prometheus at {url} gave an answer that is not a range-query result: {why}")]
    Malformed { url: String, why: String },
    #[error("metric `{metric}`: the {arm} query `{query}` returned {} series but one is judged per arm: {}\n(narrow the query with label matchers or aggregate it, e.g. avg(...) or sum by () (...))", .series.len(), .series.join(", "))]
    TooManySeries {
        metric: String,
        arm: &'static str,
        query: String,
        series: Vec<String>,
    },
    #[error("metric `{metric}`: the {arm} query `{query}` returned no series over the window")]
    EmptyResult {
        metric: String,
        arm: &'static str,
        query: String,
    },
    #[error("Prometheus credentials: {0}")]
    Auth(String),
    #[error("cannot read metrics file {} (check the path)", .path.display())]
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid metrics file {}: {why}", .path.display())]
    MetricsFile { path: PathBuf, why: String },
    #[error(transparent)]
    Time(#[from] time::TimeError),
    #[error("invalid window: {0}")]
    Window(String),
}

fn auth_hint(status: u16) -> String {
    if matches!(status, 401 | 403) {
        format!(
            "\n(set {} and {}, or {}, for a Prometheus behind authentication)",
            client::USER_ENV,
            client::PASSWORD_ENV,
            client::TOKEN_ENV
        )
    } else {
        String::new()
    }
}

impl PromError {
    /// A mistake in what the user asked for (exit 2): a query Prometheus cannot parse or evaluate
    /// (`bad_data`, `execution`), too many series, a bad file, URL, time or credentials setting. Anything
    /// else (unreachable, timeouts, server errors) is a runtime error (exit 1).
    pub fn is_usage(&self) -> bool {
        match self {
            PromError::Query { error_type, .. } => {
                matches!(error_type.as_str(), "bad_data" | "execution")
            }
            PromError::Url { .. }
            | PromError::TooManySeries { .. }
            | PromError::Auth(_)
            | PromError::MetricsFile { .. }
            | PromError::Time(_)
            | PromError::Window(_) => true,
            PromError::Unreachable { .. }
            | PromError::Http { .. }
            | PromError::Malformed { .. }
            | PromError::ReadFile { .. }
            | PromError::EmptyResult { .. } => false,
        }
    }
}

/// The names `$arm` stands for.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Arms {
    pub baseline: Option<String>,
    pub canary: Option<String>,
}

/// One `[[metric]]` table: the judge's per-metric settings and the queries.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricSpec {
    pub name: String,
    #[serde(default)]
    pub fail_on: FailOn,
    pub kind: Option<MetricKind>,
    pub unit: Option<String>,
    pub allowed_increase: Option<f64>,
    pub allowed_decrease: Option<f64>,
    pub weight: Option<f64>,
    #[serde(default)]
    pub critical: bool,
    pub min_samples: Option<usize>,
    /// One query for both arms; `$arm` is replaced by each arm's name.
    pub query: Option<String>,
    pub baseline_query: Option<String>,
    pub canary_query: Option<String>,
}

/// A metrics file: `[arms]` and `[[metric]]` tables.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsFile {
    #[serde(default)]
    pub arms: Arms,
    #[serde(default, rename = "metric")]
    pub metrics: Vec<MetricSpec>,
}

/// A metric's two resolved queries.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedMetric {
    pub spec: MetricSpec,
    pub baseline_query: String,
    pub canary_query: String,
}

impl MetricsFile {
    pub fn read(path: &Path) -> Result<MetricsFile, PromError> {
        let text = std::fs::read_to_string(path).map_err(|source| PromError::ReadFile {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| PromError::MetricsFile {
            path: path.to_path_buf(),
            why: e.to_string(),
        })
    }

    /// Each metric's two queries; names unique and non-empty, either `query` with `$arm` (and `[arms]`)
    /// or both `baseline_query` and `canary_query`.
    pub fn plan(&self, origin: &Path) -> Result<Vec<PlannedMetric>, PromError> {
        let bad = |why: String| PromError::MetricsFile {
            path: origin.to_path_buf(),
            why,
        };
        if self.metrics.is_empty() {
            return Err(bad(
                "it has no [[metric]] table; add one with `name` and `query` (see README, analyze --prometheus)".into(),
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        let mut planned = Vec::new();
        for m in &self.metrics {
            let name = m.name.trim();
            if name.is_empty() {
                return Err(bad("a [[metric]] has an empty `name`".into()));
            }
            if !seen.insert(name) {
                return Err(bad(format!(
                    "metric `{name}` appears twice; names must be unique"
                )));
            }
            let blank = |q: &Option<String>| q.as_deref().is_some_and(|q| q.trim().is_empty());
            if blank(&m.query) || blank(&m.baseline_query) || blank(&m.canary_query) {
                return Err(bad(format!("metric `{name}` has an empty query")));
            }
            let (baseline_query, canary_query) =
                match (&m.query, &m.baseline_query, &m.canary_query) {
                    (Some(q), None, None) => {
                        if !q.contains("$arm") {
                            return Err(bad(format!(
                                "metric `{name}`: `query` has no `$arm`, so both arms would be the same series; \
                                 put `$arm` where the arm's name goes or give baseline_query and canary_query"
                            )));
                        }
                        let (Some(b), Some(c)) = (&self.arms.baseline, &self.arms.canary) else {
                            return Err(bad(format!(
                                "metric `{name}` uses `$arm` but the file has no [arms] table with `baseline` and `canary` names"
                            )));
                        };
                        (q.replace("$arm", b), q.replace("$arm", c))
                    }
                    (None, Some(b), Some(c)) => (b.clone(), c.clone()),
                    _ => {
                        return Err(bad(format!(
                            "metric `{name}`: give either `query` (with `$arm`) or both `baseline_query` and `canary_query`"
                        )))
                    }
                };
            planned.push(PlannedMetric {
                spec: m.clone(),
                baseline_query,
                canary_query,
            });
        }
        Ok(planned)
    }
}

/// The query window, in Unix seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    pub start: f64,
    pub end: f64,
    pub step: f64,
}

impl Window {
    /// Parses `--start`, `--end` and `--step` as users type them (see [`time`]).
    pub fn parse(start: &str, end: &str, step: &str, now: f64) -> Result<Window, PromError> {
        let w = Window {
            start: time::parse_time(start, now)?,
            end: time::parse_time(end, now)?,
            step: time::parse_duration(step)?,
        };
        if w.start >= w.end {
            return Err(PromError::Window(format!(
                "the start {} is not before the end {}",
                time::format_rfc3339(w.start),
                time::format_rfc3339(w.end)
            )));
        }
        Ok(w)
    }

    /// The number of grid points `start + k·step` in `[start, end]`.
    pub fn points(&self) -> u64 {
        ((self.end - self.start) / self.step + 1e-9).floor() as u64 + 1
    }
}

/// What [`collect`] got: the judge's input and notes for the user (empty results, dropped points).
#[derive(Debug, Clone, Default)]
pub struct Collected {
    pub input: JudgeInput,
    pub notes: Vec<String>,
}

/// Runs both queries of every metric over `window` and builds the judge's input. An arm without a series
/// gets no samples (the judge then says NoData for that metric, never PASS); NaN and infinite points are
/// dropped with a note; two or more series are an error.
pub async fn collect(
    client: &Client,
    metrics: &[PlannedMetric],
    window: &Window,
) -> Result<Collected, PromError> {
    let mut out = Collected::default();
    for m in metrics {
        let name = m.spec.name.trim().to_string();
        let mut arms = Vec::new();
        for (arm, query) in [("baseline", &m.baseline_query), ("canary", &m.canary_query)] {
            let (series, warnings) = client
                .query_range(query, window.start, window.end, window.step)
                .await?;
            for w in warnings {
                out.notes.push(format!(
                    "metric `{name}`, {arm} query: Prometheus warns: {w}"
                ));
            }
            let (values, times) = match one_series(&name, arm, query, series) {
                Ok(points) => {
                    let total = points.len();
                    let (values, times): (Vec<f64>, Vec<f64>) = points
                        .into_iter()
                        .filter(|(_, v)| v.is_finite())
                        .map(|(t, v)| (v, t - window.start))
                        .unzip();
                    if values.len() < total {
                        out.notes.push(format!(
                            "metric `{name}`: dropped {} of the {arm}'s {total} points that are NaN or infinite",
                            total - values.len()
                        ));
                    }
                    (values, times)
                }
                Err(e @ PromError::EmptyResult { .. }) => {
                    out.notes.push(format!("{e} (NoData)"));
                    (Vec::new(), Vec::new())
                }
                Err(e) => return Err(e),
            };
            arms.push((values, times));
        }
        let (canary, canary_t) = arms.pop().unwrap_or_default();
        let (baseline, baseline_t) = arms.pop().unwrap_or_default();
        out.input
            .metrics
            .push(m.input((baseline, baseline_t), (canary, canary_t)));
    }
    Ok(out)
}

impl PlannedMetric {
    /// The judge's input for this metric with the given (values, time offsets) per arm.
    pub fn input(
        &self,
        baseline: (Vec<f64>, Vec<f64>),
        canary: (Vec<f64>, Vec<f64>),
    ) -> MetricInput {
        let s = &self.spec;
        let mut input = MetricInput::new(s.name.trim(), s.fail_on, baseline.0, canary.0);
        input.kind = s.kind;
        input.unit.clone_from(&s.unit);
        input.baseline_time_s = Some(baseline.1);
        input.canary_time_s = Some(canary.1);
        input.allowed_increase = s.allowed_increase;
        input.allowed_decrease = s.allowed_decrease;
        input.weight = s.weight;
        input.critical = s.critical;
        input.min_samples = s.min_samples;
        input
    }
}

/// The points of the one series a query returned.
fn one_series(
    metric: &str,
    arm: &'static str,
    query: &str,
    series: Vec<RangeSeries>,
) -> Result<Vec<(f64, f64)>, PromError> {
    let mut non_empty: Vec<RangeSeries> = series
        .into_iter()
        .filter(|s| !s.points.is_empty())
        .collect();
    match non_empty.len() {
        0 => Err(PromError::EmptyResult {
            metric: metric.to_string(),
            arm,
            query: query.to_string(),
        }),
        1 => Ok(non_empty.pop().map(|s| s.points).unwrap_or_default()),
        _ => Err(PromError::TooManySeries {
            metric: metric.to_string(),
            arm,
            query: query.to_string(),
            series: non_empty.iter().map(RangeSeries::label_text).collect(),
        }),
    }
}

#[cfg(test)]
mod tests;
