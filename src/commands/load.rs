//! `pipeline load URL`: turns the flags into a plan ([`LoadOptions::plan`]), runs it with the canary's load
//! generator behind a progress bar (Ctrl-C stops it early) and prints the summary (or `--json`).

use std::io::Write;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use crate::canary::load::{self, LoadError, LoadOptions, Snapshot, Stop};
use crate::exit::UsageError;
use crate::settings::Global;
use crate::Outcome;

/// Generate HTTP/1.1 load against one URL: keep-alive connections, every request recorded, latency
/// percentiles, status and error counts at the end. Closed model by default; `-R` switches to a constant
/// arrival rate with latency measured from each request's scheduled send time.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Boxed to keep the `Command` enum small.
    #[command(flatten)]
    pub options: Box<LoadOptions>,
}

/// A mistake in the flags is exit 2; anything else keeps its own error.
fn usage(e: LoadError) -> anyhow::Error {
    if e.is_usage() {
        UsageError(e.to_string()).into()
    } else {
        e.into()
    }
}

pub async fn run(args: LoadArgs, global: &Global) -> anyhow::Result<Outcome> {
    let args = args.options;
    let plan = args.plan().map_err(usage)?;
    let stop = plan.stop;

    let interrupted = Arc::new(AtomicBool::new(false));
    let watcher = {
        let interrupted = interrupted.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                interrupted.store(true, Ordering::Relaxed);
            }
        })
    };
    let bar = global.ui.multi().add(match stop {
        Stop::Duration(d) => ProgressBar::new(d.as_millis() as u64),
        Stop::Count(n) => ProgressBar::new(n),
    });
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {elapsed:>4} {msg}")
            .expect("static template")
            .progress_chars("=> "),
    );
    let mut last = Snapshot::START;
    let mut progress = |s: &Snapshot| {
        let rps = s.rate_since(&last);
        last = *s;
        bar.set_position(match stop {
            Stop::Duration(_) => s.elapsed.as_millis() as u64,
            Stop::Count(_) => s.requests,
        });
        bar.set_message(format!(
            "{} requests, {} req/s, {} errors",
            load::thousands(s.requests),
            load::thousands(rps.round() as u64),
            load::thousands(s.errors)
        ));
        if interrupted.load(Ordering::Relaxed) {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    };
    let url = plan.url.to_string();
    let result = load::run(plan, &mut progress).await;
    watcher.abort();
    bar.finish_and_clear();
    let run = result
        .map_err(usage)
        .with_context(|| format!("load against {url} failed"))?;

    let mut out = std::io::stdout().lock();
    if args.json {
        run.write_json(&mut out)
            .context("cannot write JSON to stdout")?;
        writeln!(out).context("cannot write to stdout")?;
    } else {
        run.write_summary(&mut out)
            .context("cannot write the summary to stdout")?;
    }
    let summary = run.summary();
    if summary.nothing_answered() {
        let errors: Vec<String> = summary
            .errors
            .iter()
            .map(|(k, n)| format!("{k}: {n}"))
            .collect();
        anyhow::bail!(
            "no request to {url} got a response ({}); check that a server is listening there",
            errors.join(", ")
        );
    }
    Ok(Outcome::Success)
}
