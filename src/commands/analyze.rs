//! `pipeline analyze FILE`: judges recorded baseline and canary samples offline, prints the table (or
//! `report.json` with `--json`) and optionally writes all report files. Exit code = verdict.
//! `pipeline analyze --prometheus URL --metrics FILE --start T --end T` judges series queried from
//! Prometheus instead (see [`crate::canary::prometheus`]).

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use crate::canary::analyze::{analyze, Analysis, AnalyzeRequest, Samples};
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

impl AnalyzeArgs {
    /// The request the flags describe (clap has checked which flags go together).
    fn request(&self) -> anyhow::Result<AnalyzeRequest> {
        let samples = match (&self.file, &self.prometheus) {
            (Some(file), _) => Samples::File(file.clone()),
            (None, Some(url)) => Samples::Prometheus {
                url: url.clone(),
                metrics: self
                    .metrics
                    .clone()
                    .context("--prometheus needs --metrics FILE")?,
                start: self.start.clone().unwrap_or_else(|| "now".into()),
                end: self.end.clone().unwrap_or_else(|| "now".into()),
                step: self.step.clone().unwrap_or_else(|| "15s".into()),
            },
            (None, None) => {
                return Err(UsageError("give a samples FILE or --prometheus URL".into()).into())
            }
        };
        Ok(AnalyzeRequest {
            samples,
            sequential: self.sequential.then_some(self.look_every.as_secs_f64()),
        })
    }
}

pub async fn run(args: AnalyzeArgs, global: &Global) -> anyhow::Result<Outcome> {
    let Analysis { judgement, extras } = analyze(&args.request()?, global).await?;
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
