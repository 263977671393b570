//! `pipeline analyze FILE`: judges recorded baseline and canary samples offline, prints the table (or
//! `report.json` with `--json`) and optionally writes all report files. Exit code = verdict.
//! `pipeline analyze --prometheus URL --metrics FILE --start T --end T` judges series queried from
//! Prometheus instead (see [`crate::canary::prometheus`]).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;

use crate::canary::judge::{judge, sequential, JudgeConfig, JudgeError, JudgeInput};
use crate::canary::prometheus::retro::{self, Retrospective};
use crate::canary::prometheus::{self, Auth, PromError};
use crate::canary::report;
use crate::exit::UsageError;
use crate::settings::Global;
use crate::Outcome;

#[derive(Debug, Args)]
#[command(
    after_help = "Judge settings come from the [judge] section of the config file \
(--config FILE, default ./pipeline.toml). Exit codes: 0 PASS, 3 MARGINAL, 4 FAIL, 5 INCONCLUSIVE, \
1 runtime error (also: Prometheus unreachable or failing), 2 usage error (also: a query Prometheus \
rejects, a query returning several series). Prometheus credentials come from PIPELINE_PROMETHEUS_USER and \
PIPELINE_PROMETHEUS_PASSWORD (basic auth) or PIPELINE_PROMETHEUS_TOKEN (bearer)."
)]
pub struct AnalyzeArgs {
    /// Samples file: {"metrics": [{"name", "fail_on", "baseline": [..], "canary": [..]}, ..]} ('-' = stdin).
    #[arg(
        value_name = "FILE",
        required_unless_present = "prometheus",
        conflicts_with = "prometheus"
    )]
    pub file: Option<PathBuf>,
    /// Query the samples from this Prometheus (its root URL) instead of reading FILE.
    #[arg(long, value_name = "URL", requires_all = ["metrics", "start"])]
    pub prometheus: Option<String>,
    /// With --prometheus: the metrics file (TOML `[[metric]]` tables with queries; see README).
    #[arg(long, value_name = "FILE", requires = "prometheus")]
    pub metrics: Option<PathBuf>,
    /// With --prometheus: window start, RFC 3339, Unix seconds or relative (`-30m`, `now-1h`).
    #[arg(
        long,
        value_name = "TIME",
        requires = "prometheus",
        allow_hyphen_values = true
    )]
    pub start: Option<String>,
    /// With --prometheus: window end [default: now].
    #[arg(
        long,
        value_name = "TIME",
        requires = "prometheus",
        allow_hyphen_values = true
    )]
    pub end: Option<String>,
    /// With --prometheus: the range query's resolution; best equal to the scrape interval [default: 15s].
    #[arg(long, value_name = "DURATION", requires = "prometheus")]
    pub step: Option<String>,
    /// Print report.json on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Also write report.json, report.md and report.html into DIR (created if missing).
    #[arg(long, value_name = "DIR")]
    pub report_dir: Option<PathBuf>,
    /// Replay the run's interim looks over the samples' time offsets (always-valid sequential test) and
    /// say at which look the verdict became final.
    #[arg(long)]
    pub sequential: bool,
    /// Time between looks of --sequential.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "5s", value_name = "TIME", requires = "sequential")]
    pub look_every: std::time::Duration,
}

pub async fn run(args: AnalyzeArgs, global: &Global) -> anyhow::Result<Outcome> {
    let config: JudgeConfig = global.config.section("judge")?;
    let (input, source, extras) = match (&args.file, &args.prometheus) {
        (Some(file), _) => {
            // The raw bytes are dropped right after parsing (a 1M-sample-per-arm file is ~40 MB).
            let input = parse_input(&read_input(file)?, file)?;
            (input, file.display().to_string(), report::Extras::default())
        }
        (None, Some(url)) => {
            let (input, run) = from_prometheus(&args, url, global).await?;
            let metrics = args.metrics.as_deref().unwrap_or(Path::new("?"));
            (
                input,
                format!("metrics file {}", metrics.display()),
                report::Extras {
                    run: Some(report::RunInfo::Other(run)),
                    deploy: None,
                },
            )
        }
        (None, None) => {
            return Err(UsageError("give a samples FILE or --prometheus URL".into()).into())
        }
    };
    let judgement = if args.sequential {
        sequential::replay(&input, &config, args.look_every.as_secs_f64(), true).map_err(|e| {
            match e {
                sequential::ReplayError::Judge(e) => judge_error(e, &source, global),
                other => anyhow::Error::from(UsageError(format!(
                    "cannot replay the looks of {source}: {other}"
                ))),
            }
        })?
    } else {
        judge(&input, &config).map_err(|e| judge_error(e, &source, global))?
    };
    let mut stdout = std::io::stdout().lock();
    if args.json {
        stdout
            .write_all(report::to_json(&judgement, &extras).as_bytes())
            .context("failed to write the report to stdout")?;
    } else {
        report::print_terminal(&mut stdout, &judgement, &extras)
            .context("failed to write the report to stdout")?;
    }
    stdout
        .flush()
        .context("failed to write the report to stdout")?;
    if let Some(dir) = &args.report_dir {
        let files = report::write_all(dir, &judgement, &extras)
            .with_context(|| format!("failed to write the report files into {}", dir.display()))?;
        global.ui.info(format!(
            "wrote {}, {} and {}",
            files.json.display(),
            files.markdown.display(),
            files.html.display()
        ));
    }
    Ok(judgement.verdict.outcome())
}

/// Queries every metric of `--metrics` over the window; returns the judge's input and the report's run
/// table (source, window, step, queries).
async fn from_prometheus(
    args: &AnalyzeArgs,
    url: &str,
    global: &Global,
) -> anyhow::Result<(JudgeInput, serde_json::Value)> {
    let usage_or_runtime = |e: PromError| -> anyhow::Error {
        if e.is_usage() {
            UsageError(e.to_string()).into()
        } else {
            anyhow::Error::new(e)
        }
    };
    let request = retro::Request {
        url,
        metrics: args
            .metrics
            .as_deref()
            .context("--prometheus needs --metrics FILE")?,
        start: args.start.as_deref().unwrap_or("now"),
        end: args.end.as_deref().unwrap_or("now"),
        step: args.step.as_deref().unwrap_or("15s"),
    };
    let auth = Auth::from_env().map_err(usage_or_runtime)?;
    let query = Retrospective::prepare(&request, auth, prometheus::time::unix_now())
        .map_err(usage_or_runtime)?;
    global.ui.info(query.describe());
    let collected = query.collect().await.map_err(usage_or_runtime)?;
    for note in &collected.notes {
        global.ui.warn(note);
    }
    Ok((collected.input, query.run_table()))
}

fn judge_error(e: JudgeError, source: &str, global: &Global) -> anyhow::Error {
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
