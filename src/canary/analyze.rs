//! `pipeline analyze`, minus the printing: the samples from a file (or stdin) or from a Prometheus range
//! query over a window ([`super::prometheus::retro`]), judged once or replayed look by look
//! ([`super::judge::sequential`]). Mistakes in the input are [`UsageError`]s (exit 2) naming the source.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::judge::{judge, sequential, JudgeConfig, JudgeError, JudgeInput, Judgement};
use super::prometheus::retro::{self, Retrospective};
use super::prometheus::{self, Auth, PromError};
use super::report;
use crate::exit::UsageError;
use crate::settings::Global;

/// Where the samples come from.
#[derive(Debug, Clone)]
pub enum Samples {
    /// A samples file; `-` is stdin.
    File(PathBuf),
    /// `[[metric]]` queries of `metrics` against the Prometheus at `url` over [start, end] at `step`.
    Prometheus {
        url: String,
        metrics: PathBuf,
        start: String,
        end: String,
        step: String,
    },
}

/// What `pipeline analyze` judges and how.
#[derive(Debug, Clone)]
pub struct AnalyzeRequest {
    pub samples: Samples,
    /// `Some(look_every_s)`: replay the sequential looks.
    pub sequential: Option<f64>,
}

/// The judgement and the report's extra sections (the Prometheus run table).
pub struct Analysis {
    pub judgement: Judgement,
    pub extras: report::Extras,
}

/// Reads or queries the samples of `req` and judges them with `[judge]`.
pub async fn analyze(req: &AnalyzeRequest, global: &Global) -> anyhow::Result<Analysis> {
    let config: JudgeConfig = global.config.section("judge")?;
    let (input, source, extras) = match &req.samples {
        Samples::File(file) => {
            // The raw bytes are dropped right after parsing (a 1M-sample-per-arm file is ~40 MB).
            let input = parse_input(&read_input(file)?, file)?;
            (input, file.display().to_string(), report::Extras::default())
        }
        Samples::Prometheus {
            url,
            metrics,
            start,
            end,
            step,
        } => {
            let request = retro::Request {
                url,
                metrics,
                start,
                end,
                step,
            };
            let (input, run) = from_prometheus(&request, global).await?;
            (
                input,
                format!("metrics file {}", metrics.display()),
                report::Extras {
                    run: Some(report::RunInfo::Other(run)),
                    deploy: None,
                },
            )
        }
    };
    let judgement = match req.sequential {
        Some(look_every_s) => {
            sequential::replay(&input, &config, look_every_s, true).map_err(|e| match e {
                sequential::ReplayError::Judge(e) => judge_error(&e, &source, global),
                other => anyhow::Error::from(UsageError(format!(
                    "cannot replay the looks of {source}: {other}"
                ))),
            })?
        }
        None => judge(&input, &config).map_err(|e| judge_error(&e, &source, global))?,
    };
    Ok(Analysis { judgement, extras })
}

/// Queries every metric of the request over the window; returns the judge's input and the report's run
/// table (source, window, step, queries).
async fn from_prometheus(
    request: &retro::Request<'_>,
    global: &Global,
) -> anyhow::Result<(JudgeInput, serde_json::Value)> {
    let usage_or_runtime = |e: PromError| -> anyhow::Error {
        if e.is_usage() {
            UsageError(e.to_string()).into()
        } else {
            anyhow::Error::new(e)
        }
    };
    let auth = Auth::from_env().map_err(usage_or_runtime)?;
    let query = Retrospective::prepare(request, auth, prometheus::time::unix_now())
        .map_err(usage_or_runtime)?;
    global.ui.info(query.describe());
    let collected = query.collect().await.map_err(usage_or_runtime)?;
    for note in &collected.notes {
        global.ui.warn(note);
    }
    Ok((collected.input, query.run_table()))
}

fn judge_error(e: &JudgeError, source: &str, global: &Global) -> anyhow::Error {
    match e {
        JudgeError::Config { .. } => UsageError(format!(
            "{e} (in the [judge] section of {})",
            global
                .config
                .path()
                .map_or("the config file".into(), |p| p.display().to_string())
        ))
        .into(),
        JudgeError::Metric { .. } | JudgeError::Input(_) => UsageError(format!(
            "invalid samples from {source}: {e}; fix the file and run again"
        ))
        .into(),
    }
}

fn read_input(path: &Path) -> anyhow::Result<Vec<u8>> {
    if path == Path::new("-") {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .context("failed to read the samples from stdin")?;
        return Ok(buf);
    }
    std::fs::read(path).with_context(|| {
        format!(
            "cannot read samples file {}; check the path (use '-' for stdin)",
            path.display()
        )
    })
}

/// Parses the samples file; a malformed file is a usage error naming line and column.
pub fn parse_input(bytes: &[u8], path: &Path) -> anyhow::Result<JudgeInput> {
    serde_json::from_slice(bytes).map_err(|e| {
        UsageError(format!(
            "samples file {} is not valid analyze input: {e}; expected {{\"metrics\": [{{\"name\": .., \"fail_on\": \"increase\", \"baseline\": [..], \"canary\": [..]}}]}} (see README, analyze)",
            path.display()
        ))
        .into()
    })
}
