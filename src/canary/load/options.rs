//! The flags of `pipeline load` ([`LoadOptions`]) and how they become a [`LoadPlan`]
//! ([`LoadOptions::plan`]): defaults, the stop condition, the method, headers and body; every mistake is
//! a [`LoadError`] the command layer reports as a usage error ([`LoadError::is_usage`]).

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use http::header::HeaderName;
use http::Method;

use super::{parse_header, LoadError, LoadPlan, Stop};

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

impl LoadOptions {
    /// The load plan these flags ask for, checked, with the body file read; a run of 10 s when neither
    /// `-n` nor `-d` is given.
    pub fn plan(&self) -> Result<LoadPlan, LoadError> {
        let mut plan = LoadPlan::new(&self.url)?;
        plan.concurrency = self.concurrency;
        plan.stop = match (self.requests, self.duration) {
            (Some(n), _) => Stop::Count(n),
            (None, Some(d)) => Stop::Duration(d),
            (None, None) => Stop::Duration(Duration::from_secs(10)),
        };
        plan.rate = self.rate;
        plan.method =
            Method::from_bytes(self.method.to_ascii_uppercase().as_bytes()).map_err(|_| {
                LoadError::InvalidPlan(format!("`{}` is not an HTTP method", self.method))
            })?;
        for h in &self.headers {
            let (name, value) = parse_header(h)?;
            plan.headers.append(name, value);
        }
        plan.timeout = self.timeout;
        plan.backend_header = self
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
        plan.threads = self.threads;
        plan.validate()?;
        if let Some(path) = &self.body_file {
            let body = std::fs::read(path).map_err(|source| LoadError::BodyFile {
                path: path.clone(),
                source,
            })?;
            plan.body = body.into();
        }
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        options: LoadOptions,
    }

    fn plan(args: &[&str]) -> Result<LoadPlan, LoadError> {
        let cli = Cli::try_parse_from(std::iter::once("load").chain(args.iter().copied()))
            .expect("the flags parse");
        cli.options.plan()
    }

    #[test]
    fn without_count_or_duration_the_plan_runs_ten_seconds_of_get() {
        let p = plan(&["http://127.0.0.1:8080/x"]).unwrap();
        assert_eq!(p.stop, Stop::Duration(Duration::from_secs(10)));
        assert_eq!(p.method, Method::GET);
        assert_eq!(p.concurrency, 10);
        assert_eq!(p.timeout, Duration::from_secs(10));
        assert!(p.body.is_empty() && p.headers.is_empty() && p.backend_header.is_none());
    }

    #[test]
    fn flags_set_the_stop_method_headers_and_backend_header() {
        let p = plan(&[
            "http://127.0.0.1:8080/",
            "-n",
            "500",
            "-c",
            "3",
            "-R",
            "50",
            "-m",
            "post",
            "-H",
            "X-A: 1",
            "-H",
            "x-a: 2",
            "--backend-header",
            "x-backend",
            "-t",
            "2",
            "--timeout",
            "2s",
        ])
        .unwrap();
        assert_eq!(p.stop, Stop::Count(500));
        assert_eq!((p.concurrency, p.rate, p.threads), (3, Some(50.0), Some(2)));
        assert_eq!(p.method, Method::POST);
        let values: Vec<_> = p.headers.get_all("x-a").iter().collect();
        assert_eq!(values, ["1", "2"]);
        assert_eq!(p.backend_header.unwrap().as_str(), "x-backend");
        assert_eq!(p.timeout, Duration::from_secs(2));
        let p = plan(&["http://127.0.0.1:8080/", "-d", "2m"]).unwrap();
        assert_eq!(p.stop, Stop::Duration(Duration::from_secs(120)));
    }

    #[test]
    fn a_bad_method_header_or_number_is_a_usage_error() {
        for (args, says) in [
            (&["-m", "GE T"][..], "`GE T` is not an HTTP method"),
            (&["--backend-header", "x y"], "not a valid header name"),
            (&["-H", "no colon"], "expected `Name: value`"),
            (&["-c", "0"], "concurrency must be at least 1"),
        ] {
            let mut all = vec!["http://127.0.0.1:8080/"];
            all.extend_from_slice(args);
            let e = plan(&all).unwrap_err();
            assert!(e.is_usage(), "{args:?}: {e}");
            assert!(e.to_string().contains(says), "{args:?}: {e}");
        }
    }

    #[test]
    fn the_body_file_becomes_the_body_and_a_missing_one_is_a_usage_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("body.json");
        std::fs::write(&file, b"{\"a\":1}").unwrap();
        let p = plan(&[
            "http://127.0.0.1:8080/",
            "--body-file",
            file.to_str().unwrap(),
        ])
        .unwrap();
        assert_eq!(&p.body[..], b"{\"a\":1}");
        let missing = dir.path().join("missing.json");
        let e = plan(&[
            "http://127.0.0.1:8080/",
            "--body-file",
            missing.to_str().unwrap(),
        ])
        .unwrap_err();
        assert!(e.is_usage());
        assert!(e
            .to_string()
            .starts_with(&format!("cannot read --body-file {}: ", missing.display())));
        assert!(e.to_string().ends_with("; give a readable file"));
    }
}
