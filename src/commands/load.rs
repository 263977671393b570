//! `pipeline load URL`: generate HTTP load with the canary's load generator and print a summary (or `--json`).

use std::io::Write;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use http::header::HeaderName;
use http::Method;
use indicatif::{ProgressBar, ProgressStyle};

use crate::canary::load::{self, LoadError, LoadPlan, Snapshot, Stop};
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

/// The options of `pipeline load`.
#[derive(Debug, Args)]
pub struct LoadOptions {
    /// Target URL, `http://host[:port][/path]` (plain HTTP only).
    pub url: String,
    /// Connections, each with one request in flight.
    #[arg(short = 'c', long, default_value_t = 10, value_name = "N")]
    pub concurrency: usize,
    /// How long to send requests, e.g. `30s`, `2m` (default 10s unless -n is given).
    #[arg(short = 'd', long, value_parser = humantime::parse_duration, conflicts_with = "requests", value_name = "TIME")]
    pub duration: Option<Duration>,
    /// Send exactly this many requests instead of running for a duration.
    #[arg(short = 'n', long, value_name = "COUNT")]
    pub requests: Option<u64>,
    /// Constant total rate in requests per second (open model); default: as fast as
    /// the server answers.
    #[arg(short = 'q', long, visible_short_alias = 'R', value_name = "RATE")]
    pub rate: Option<f64>,
    /// HTTP method.
    #[arg(short = 'm', long, default_value = "GET")]
    pub method: String,
    /// Send this file's contents as the request body.
    #[arg(long, value_name = "FILE")]
    pub body_file: Option<PathBuf>,
    /// Extra request header `Name: value`; repeatable.
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    pub headers: Vec<String>,
    /// Limit for one request, connecting included, e.g. `2s`.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s", value_name = "TIME")]
    pub timeout: Duration,
    /// Response header that names the backend that served a request; adds per-backend summaries.
    #[arg(long, value_name = "NAME")]
    pub backend_header: Option<String>,
    /// OS threads (default: one per core, at most one per connection).
    #[arg(short = 't', long, value_name = "N")]
    pub threads: Option<usize>,
    /// Print one JSON object with the results on stdout instead of the text summary.
    #[arg(long)]
    pub json: bool,
}

/// Builds the load plan from the command line; every mistake is a usage error.
pub fn plan(args: &LoadOptions) -> Result<LoadPlan, LoadError> {
    let mut plan = LoadPlan::new(&args.url)?;
    plan.concurrency = args.concurrency;
    plan.stop = match (args.requests, args.duration) {
        (Some(n), _) => Stop::Count(n),
        (None, Some(d)) => Stop::Duration(d),
        (None, None) => Stop::Duration(Duration::from_secs(10)),
    };
    plan.rate = args.rate;
    plan.method = Method::from_bytes(args.method.to_ascii_uppercase().as_bytes())
        .map_err(|_| LoadError::InvalidPlan(format!("`{}` is not an HTTP method", args.method)))?;
    for h in &args.headers {
        let (name, value) = load::parse_header(h)?;
        plan.headers.append(name, value);
    }
    plan.timeout = args.timeout;
    plan.backend_header = args
        .backend_header
        .as_deref()
        .map(|h| {
            HeaderName::from_bytes(h.as_bytes()).map_err(|_| {
                LoadError::InvalidPlan(format!(
                    "`{h}` is not a valid header name for --backend-header"
                ))
            })
        })
        .transpose()?;
    plan.threads = args.threads;
    plan.validate()?;
    Ok(plan)
}

fn usage(e: LoadError) -> anyhow::Error {
    match e {
        LoadError::InvalidUrl { .. }
        | LoadError::InvalidHeader { .. }
        | LoadError::InvalidPlan(_) => UsageError(e.to_string()).into(),
        other => other.into(),
    }
}

pub async fn run(args: LoadArgs, global: &Global) -> anyhow::Result<Outcome> {
    let args = args.options;
    let mut plan = plan(&args).map_err(usage)?;
    if let Some(path) = &args.body_file {
        let body = std::fs::read(path).map_err(|e| {
            UsageError(format!(
                "cannot read --body-file {}: {e}; give a readable file",
                path.display()
            ))
        })?;
        plan.body = body.into();
    }
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
    let mut last = Snapshot {
        elapsed: Duration::ZERO,
        requests: 0,
        errors: 0,
    };
    let mut progress = |s: &Snapshot| {
        let dt = s.elapsed.saturating_sub(last.elapsed).as_secs_f64();
        let rps = if dt > 0.0 {
            (s.requests - last.requests) as f64 / dt
        } else {
            0.0
        };
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
    if summary.requests > 0 && summary.responses == 0 {
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
