//! `pipeline analyze FILE`: judges recorded baseline and canary samples offline, prints the table (or
//! `report.json` with `--json`) and optionally writes all report files. Exit code = verdict.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;

use crate::canary::judge::{judge, sequential, JudgeConfig, JudgeError, JudgeInput};
use crate::canary::report;
use crate::exit::UsageError;
use crate::settings::Global;
use crate::Outcome;

#[derive(Debug, Args)]
#[command(
    after_help = "Judge settings come from the [judge] section of the config file \
(--config FILE, default ./pipeline.toml). Exit codes: 0 PASS, 3 MARGINAL, 4 FAIL, 5 INCONCLUSIVE, \
1 runtime error, 2 usage error."
)]
pub struct AnalyzeArgs {
    /// Samples file: {"metrics": [{"name", "fail_on", "baseline": [..], "canary": [..]}, ..]} ('-' = stdin).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
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
    // The raw bytes are dropped right after parsing (a 1M-sample-per-arm file is ~40 MB).
    let input = parse_input(&read_input(&args.file)?, &args.file)?;
    let judgement = if args.sequential {
        sequential::replay(&input, &config, args.look_every.as_secs_f64(), true).map_err(|e| {
            match e {
                sequential::ReplayError::Judge(e) => judge_error(e, &args, global),
                other => anyhow::Error::from(UsageError(format!(
                    "cannot replay the looks of {}: {other}",
                    args.file.display()
                ))),
            }
        })?
    } else {
        judge(&input, &config).map_err(|e| judge_error(e, &args, global))?
    };
    let extras = report::Extras::default();
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

fn judge_error(e: JudgeError, args: &AnalyzeArgs, global: &Global) -> anyhow::Error {
    match e {
        JudgeError::Config { .. } => UsageError(format!(
            "{e} (in the [judge] section of {})",
            global
                .config
                .path()
                .map_or("the config file".into(), |p| p.display().to_string())
        ))
        .into(),
        JudgeError::Metric { .. } => UsageError(format!(
            "invalid samples file {}: {e}; fix the file and run again",
            args.file.display()
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
