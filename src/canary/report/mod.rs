//! Canary reports from a [`Judgement`]: the terminal table, `report.json`, `report.md` and a self-contained
//! `report.html` with inline SVG charts.
//!
//! # Use (from `pipeline analyze` and `pipeline canary`)
//! ```no_run
//! # use pipeline::canary::{judge, report};
//! # let judgement: judge::Judgement = unimplemented!();
//! let extras = report::Extras {
//!     run: Some(report::RunInfo::Other(serde_json::json!({"baseline": "master", "canary": "broken"}))),
//!     deploy: None, // or Some(pipeline::ansible::DeploySummary::of(&deploy_report, path))
//! };
//! report::print_terminal(&mut std::io::stdout(), &judgement, &extras)?;
//! let files = report::write_all(std::path::Path::new("canary-report"), &judgement, &extras)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//! - [`to_json`]: the `report.json` text. Its schema is `src/canary/report/report.schema.json` (JSON Schema,
//!   checked against real output by `tests/analyze.rs`); the top level holds `schema`, `verdict`, `score`,
//!   `reason`, `alpha`, `tests`, `config`, `metrics` and, when given, `run` and `deploy`.
//!   Deterministic: same judgement and extras, same bytes (no timestamps are added here).
//! - [`to_markdown`], [`to_html`]: rendered with the Tera templates `templates/report.md.tera` and
//!   `templates/report.html.tera` (HTML autoescaped; charts from [`svg`]).
//! - [`write_all`]: writes the three files into a directory (created if missing), each atomically.

mod sequential;
pub mod summary;
pub mod svg;

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use crate::ansible::DeploySummary;
use crate::canary::judge::{
    fmt_p, num, pct, quantile_label, Classification, Judgement, MetricKind, MetricResult,
    MultipleTesting, Side, Summary, Verdict,
};
pub use summary::RunSummary;

/// Identifies the `report.json` format; bumped on incompatible changes.
pub const SCHEMA: &str = "pipeline-canary-report/1";

/// The JSON Schema of `report.json`.
pub const JSON_SCHEMA: &str = include_str!("report.schema.json");

/// What the caller adds to a report beyond the judgement.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Extras {
    /// Run metadata, shown as a key/value table.
    pub run: Option<RunInfo>,
    /// The deploy's summary (per host, role and failure, counts as numbers), shown as a key/value table.
    pub deploy: Option<DeploySummary>,
}

/// The `run` section: the canary's typed [`RunSummary`], or another caller's object of values (e.g.
/// `pipeline analyze --prometheus`: the source, the window and the queries).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum RunInfo {
    Canary(Box<RunSummary>),
    Other(Value),
}

impl RunInfo {
    fn rows(&self) -> Vec<(String, String)> {
        match self {
            RunInfo::Canary(s) => s.rows(),
            RunInfo::Other(v) => rows_of(v),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot create report directory {path}: {source}")]
    CreateDir { path: PathBuf, source: io::Error },
    #[error("cannot write report file {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error(transparent)]
    Template(#[from] crate::templates::TemplateError),
}

/// Paths of the files [`write_all`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportFiles {
    pub json: PathBuf,
    pub markdown: PathBuf,
    pub html: PathBuf,
}

#[derive(Serialize)]
struct Document<'a> {
    schema: &'static str,
    #[serde(flatten)]
    judgement: &'a Judgement,
    #[serde(skip_serializing_if = "Option::is_none")]
    run: Option<&'a RunInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    deploy: Option<&'a DeploySummary>,
}

/// The `report.json` text (pretty-printed, trailing newline).
pub fn to_json(judgement: &Judgement, extras: &Extras) -> String {
    let doc = Document {
        schema: SCHEMA,
        judgement,
        run: extras.run.as_ref(),
        deploy: extras.deploy.as_ref(),
    };
    let mut s = serde_json::to_string_pretty(&doc).expect("a judgement always serializes");
    s.push('\n');
    s
}

/// The verdict as a sentence for people.
pub fn verdict_words(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "the canary is not measurably worse than the baseline; it can be promoted",
        Verdict::Marginal => {
            "the canary is worse on some metrics; review the failing metrics before promoting it"
        }
        Verdict::Fail => "the canary is worse than the baseline; do not promote it",
        Verdict::Inconclusive => {
            "there is not enough data to judge; run longer or with more traffic"
        }
    }
}

fn signed(v: f64) -> String {
    if v > 0.0 {
        format!("+{}", num(v))
    } else {
        num(v)
    }
}

fn summary_text(kind: MetricKind, s: &Summary) -> String {
    match (kind, s.mean) {
        (_, None) => format!("n={}", s.n),
        (MetricKind::Proportion, Some(rate)) => {
            format!("n={} rate={}%", s.n, num(rate * 100.0))
        }
        (MetricKind::Continuous, Some(_)) => format!(
            "n={} p50={} p99={}",
            s.n,
            num(s.p50.unwrap_or(f64::NAN)),
            num(s.p99.unwrap_or(f64::NAN))
        ),
    }
}

fn delta_text(m: &MetricResult) -> String {
    let (Some(est), Some([lo, hi])) = (m.estimate, m.ci) else {
        return "–".into();
    };
    match m.kind {
        MetricKind::Proportion => format!(
            "{} pp [{}, {}]",
            signed(est * 100.0),
            signed(lo * 100.0),
            signed(hi * 100.0)
        ),
        MetricKind::Continuous => {
            let unit = m
                .unit
                .as_deref()
                .map(|u| format!(" {u}"))
                .unwrap_or_default();
            let rel = m
                .relative_change
                .map(|r| format!(" ({})", pct(r)))
                .unwrap_or_default();
            format!(
                "{}{unit} [{}, {}]{rel}",
                signed(est),
                signed(lo),
                signed(hi)
            )
        }
    }
}

fn effect_text(m: &MetricResult) -> String {
    match &m.effect {
        Some(e) if e.measure == "cles" => format!("A={}", num(e.value)),
        Some(e) => format!("h={}", num(e.value)),
        None => "–".into(),
    }
}

/// Display strings of one metric, shared by the terminal, Markdown and HTML renderers.
#[derive(Debug, Serialize)]
struct MetricView {
    name: String,
    kind: &'static str,
    classification: &'static str,
    css: &'static str,
    reason: String,
    baseline: String,
    canary: String,
    delta: String,
    p_value: String,
    p_adjusted: String,
    effect: String,
    mde: String,
    details: Vec<(String, String)>,
    charts: Vec<String>,
}

fn class_name(c: Classification) -> (&'static str, &'static str) {
    match c {
        Classification::Pass => ("Pass", "pass"),
        Classification::High => ("High", "fail"),
        Classification::Low => ("Low", "fail"),
        Classification::NoData => ("NoData", "nodata"),
    }
}

fn metric_view(m: &MetricResult, with_charts: bool) -> MetricView {
    let (classification, css) = class_name(m.classification);
    let opt = |v: Option<f64>, f: fn(f64) -> String| v.map(f).unwrap_or_else(|| "–".into());
    let mut details = vec![
        (
            "test".to_string(),
            m.test.clone().unwrap_or_else(|| "none (no data)".into()),
        ),
        (
            "fail on".into(),
            format!(
                "{:?}{}",
                m.fail_on,
                if m.critical { ", critical" } else { "" }
            )
            .to_lowercase(),
        ),
        (
            "allowed increase / decrease".into(),
            match m.kind {
                MetricKind::Continuous => format!(
                    "{} / {} of the baseline median",
                    pct(m.allowed_increase),
                    pct(-m.allowed_decrease)
                ),
                MetricKind::Proportion => format!(
                    "{} / {} percentage points",
                    signed(m.allowed_increase * 100.0),
                    signed(-m.allowed_decrease * 100.0)
                ),
            },
        ),
        ("weight".into(), num(m.weight)),
        ("U (canary vs baseline)".into(), opt(m.u, num)),
        ("z".into(), opt(m.z, num)),
        ("p (two-sided)".into(), opt(m.p_value, fmt_p)),
        ("p adjusted".into(), opt(m.p_adjusted, fmt_p)),
    ];
    for s in [("baseline", &m.baseline), ("canary", &m.canary)] {
        let (arm, s) = s;
        let text = match (m.kind, s.mean) {
            (_, None) => format!("n={} (no samples)", s.n),
            (MetricKind::Proportion, Some(r)) => format!(
                "n={}, events={}, rate={}%",
                s.n,
                (r * s.n as f64).round(),
                num(r * 100.0)
            ),
            (MetricKind::Continuous, Some(mean)) => format!(
                "n={}, mean={}, sd={}, min={}, p50={}, p90={}, p99={}, p99.9={}, max={}",
                s.n,
                num(mean),
                opt(s.std, num),
                opt(s.min, num),
                opt(s.p50, num),
                opt(s.p90, num),
                opt(s.p99, num),
                opt(s.p999, num),
                opt(s.max, num)
            ),
        };
        details.push((arm.to_string(), text));
    }
    for t in &m.tails {
        let word = match t.side {
            Side::Upper => "at or above",
            Side::Lower => "at or below",
        };
        details.push((
            format!("tail test ({word} pooled p{})", quantile_label(t.quantile)),
            format!(
                "threshold {}; baseline {} of {}, canary {} of {}; p{} baseline {} vs canary {}; p = {}, p_adj = {}{}",
                num(t.threshold),
                t.baseline_beyond,
                m.baseline.n,
                t.canary_beyond,
                m.canary.n,
                quantile_label(t.quantile),
                num(t.baseline_quantile),
                num(t.canary_quantile),
                fmt_p(t.p_value),
                fmt_p(t.p_adjusted),
                if t.flagged { " — flagged" } else { "" }
            ),
        ));
    }
    for t in &m.shapes {
        details.push((
            format!("shape test ({:?}, Kolmogorov–Smirnov)", t.side).to_lowercase(),
            format!(
                "D = {}, baseline shifted by {}; p = {}, p_adj = {}{}",
                num(t.statistic),
                num(t.baseline_shift),
                fmt_p(t.p_value),
                fmt_p(t.p_adjusted),
                if t.flagged { " — flagged" } else { "" }
            ),
        ));
    }
    details.extend(sequential::power_row(m));
    MetricView {
        mde: sequential::mde_text(m),
        name: m.name.clone(),
        kind: match m.kind {
            MetricKind::Continuous => "continuous",
            MetricKind::Proportion => "proportion",
        },
        classification,
        css,
        reason: m.reason.clone(),
        baseline: summary_text(m.kind, &m.baseline),
        canary: summary_text(m.kind, &m.canary),
        delta: delta_text(m),
        p_value: opt(m.p_value, fmt_p),
        p_adjusted: opt(m.p_adjusted, fmt_p),
        effect: effect_text(m),
        details,
        charts: if with_charts {
            svg::charts(m)
        } else {
            Vec::new()
        },
    }
}

/// Key/value rows of an extras value: an object's fields (non-string values as compact JSON), or one row.
fn rows_of(v: &Value) -> Vec<(String, String)> {
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match v {
        Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), text(v))).collect(),
        other => vec![("value".into(), text(other))],
    }
}

#[derive(Serialize)]
struct View {
    verdict: &'static str,
    verdict_css: &'static str,
    verdict_words: &'static str,
    score: String,
    reason: String,
    method: String,
    ci_label: String,
    run: Vec<(String, String)>,
    deploy: Vec<(String, String)>,
    metrics: Vec<MetricView>,
    sequential: Option<String>,
    looks: Vec<Vec<String>>,
}

fn view(j: &Judgement, extras: &Extras, with_charts: bool) -> View {
    let mt = match j.config.multiple_testing {
        MultipleTesting::Holm => "Holm-adjusted",
        MultipleTesting::Bonferroni => "Bonferroni-adjusted",
        MultipleTesting::None => "not adjusted for multiple testing",
    };
    View {
        verdict: j.verdict.as_str(),
        verdict_css: match j.verdict {
            Verdict::Pass => "pass",
            Verdict::Marginal => "marginal",
            Verdict::Fail => "fail",
            Verdict::Inconclusive => "nodata",
        },
        verdict_words: verdict_words(j.verdict),
        score: num(j.score),
        reason: j.reason.clone(),
        method: format!(
            "{} tests in one family, p-values {mt}, α = {}; Δ = canary − baseline (Hodges–Lehmann shift or difference of rates) with {}% intervals; pass ≥ {}, marginal ≥ {}.",
            j.tests,
            num(j.alpha),
            num(j.config.confidence * 100.0),
            num(j.config.pass_score),
            num(j.config.marginal_score)
        ),
        ci_label: format!("{}% CI", num(j.config.confidence * 100.0)),
        run: extras.run.as_ref().map(RunInfo::rows).unwrap_or_default(),
        deploy: extras
            .deploy
            .as_ref()
            .map(DeploySummary::rows)
            .unwrap_or_default(),
        metrics: j.metrics.iter().map(|m| metric_view(m, with_charts)).collect(),
        sequential: sequential::summary(j),
        looks: j
            .sequential
            .as_ref()
            .map(|s| sequential::look_rows(s).split_off(1))
            .unwrap_or_default(),
    }
}

/// A judgement as the report templates see it (verdict, score, reason, the metrics' display strings and,
/// `with_charts`, their SVG charts, the looks), for reports that show judgements of their own: the rollout's
/// report renders each step's with the `judge` macro of `templates/report/judge.html.tera`.
pub fn judge_view(judgement: &Judgement, with_charts: bool) -> Value {
    serde_json::to_value(view(judgement, &Extras::default(), with_charts))
        .expect("the view serializes")
}

/// The terminal lines of a judgement without run or deploy sections: the metrics table, the reasons, the
/// looks, the score and the verdict in words (as [`print_terminal`]).
pub fn terminal_text(judgement: &Judgement) -> String {
    let mut out = Vec::new();
    print_terminal(&mut out, judgement, &Extras::default()).expect("writing to memory");
    String::from_utf8_lossy(&out).into_owned()
}

/// The Markdown report.
pub fn to_markdown(judgement: &Judgement, extras: &Extras) -> Result<String, ReportError> {
    let ctx = tera::Context::from_serialize(view(judgement, extras, false))
        .expect("the view serializes to an object");
    Ok(crate::templates::render("report.md.tera", &ctx)?)
}

/// The self-contained HTML report (inline CSS and SVG, no scripts, no external assets).
pub fn to_html(judgement: &Judgement, extras: &Extras) -> Result<String, ReportError> {
    let ctx = tera::Context::from_serialize(view(judgement, extras, true))
        .expect("the view serializes to an object");
    Ok(crate::templates::render("report.html.tera", &ctx)?)
}

/// Writes `report.json`, `report.md` and `report.html` into `dir` (created when missing).
pub fn write_all(
    dir: &Path,
    judgement: &Judgement,
    extras: &Extras,
) -> Result<ReportFiles, ReportError> {
    std::fs::create_dir_all(dir).map_err(|source| ReportError::CreateDir {
        path: dir.to_owned(),
        source,
    })?;
    let files = ReportFiles {
        json: dir.join("report.json"),
        markdown: dir.join("report.md"),
        html: dir.join("report.html"),
    };
    let contents = [
        (&files.json, to_json(judgement, extras)),
        (&files.markdown, to_markdown(judgement, extras)?),
        (&files.html, to_html(judgement, extras)?),
    ];
    for (path, text) in contents {
        crate::fsutil::write_atomic(path, text.as_bytes(), 0o644).map_err(|source| {
            ReportError::Write {
                path: path.clone(),
                source,
            }
        })?;
    }
    Ok(files)
}

/// Pads cells to column widths (by characters) and joins them with two spaces.
pub fn table(rows: &[Vec<String>]) -> Vec<String> {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    rows.iter()
        .map(|r| {
            let cells: Vec<String> = r
                .iter()
                .enumerate()
                .map(|(c, s)| format!("{s}{}", " ".repeat(widths[c] - s.chars().count())))
                .collect();
            cells.join("  ").trim_end().to_string()
        })
        .collect()
}

/// The terminal report: a table per metric, the reasons, then score and verdict in words.
pub fn print_terminal(
    w: &mut impl Write,
    judgement: &Judgement,
    extras: &Extras,
) -> io::Result<()> {
    let v = view(judgement, extras, false);
    if !v.run.is_empty() {
        writeln!(w, "Run")?;
        for line in table(
            &v.run
                .iter()
                .map(|(k, v)| vec![format!("  {k}"), v.clone()])
                .collect::<Vec<_>>(),
        ) {
            writeln!(w, "{line}")?;
        }
        writeln!(w)?;
    }
    let mut rows = vec![vec![
        "METRIC".to_string(),
        "RESULT".into(),
        "BASELINE".into(),
        "CANARY".into(),
        format!("Δ CANARY−BASELINE [{}]", v.ci_label),
        "p".into(),
        "p_adj".into(),
        "EFFECT".into(),
        "MDE (80%)".into(),
    ]];
    for m in &v.metrics {
        rows.push(vec![
            m.name.clone(),
            m.classification.to_string(),
            m.baseline.clone(),
            m.canary.clone(),
            m.delta.clone(),
            m.p_value.clone(),
            m.p_adjusted.clone(),
            m.effect.clone(),
            m.mde.clone(),
        ]);
    }
    for line in table(&rows) {
        writeln!(w, "{line}")?;
    }
    writeln!(w)?;
    for m in &v.metrics {
        writeln!(w, "  {} ({}): {}", m.name, m.classification, m.reason)?;
    }
    writeln!(w, "  {}", v.method)?;
    writeln!(w)?;
    if let (Some(text), Some(s)) = (&v.sequential, &judgement.sequential) {
        writeln!(w, "{text}")?;
        for line in table(&sequential::look_rows(s)) {
            writeln!(w, "  {line}")?;
        }
        writeln!(w)?;
    }
    writeln!(
        w,
        "Score {} / 100 → {}: {}",
        v.score, v.verdict, v.verdict_words
    )?;
    writeln!(w, "  because {}", v.reason)?;
    Ok(())
}

#[cfg(test)]
mod tests;
