//! A retrospective query (`pipeline analyze --prometheus URL --metrics FILE --start T --end T`): the window
//! and metrics file resolved into a [`Retrospective`], the line that tells the user what will be queried,
//! the collection itself ([`super::collect`]) and the run table the report shows (source, window, step and
//! both queries of every metric).

use std::path::{Path, PathBuf};

use super::{
    collect, time, Auth, Client, Collected, MetricsFile, PlannedMetric, PromError, Window,
};

/// What the user asked for, as typed (times and step are parsed by [`Retrospective::prepare`]).
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// The Prometheus root URL.
    pub url: &'a str,
    /// The metrics file (`[[metric]]` tables with queries).
    pub metrics: &'a Path,
    pub start: &'a str,
    pub end: &'a str,
    pub step: &'a str,
}

/// A checked request: the parsed window, the planned queries and the client, before any query is sent.
#[derive(Debug)]
pub struct Retrospective {
    client: Client,
    metrics_path: PathBuf,
    planned: Vec<PlannedMetric>,
    window: Window,
}

impl Retrospective {
    /// Parses the window (relative times against `now`, Unix seconds), reads and plans the metrics file and
    /// builds the client. Sends nothing.
    pub fn prepare(req: &Request<'_>, auth: Auth, now: f64) -> Result<Retrospective, PromError> {
        let window = Window::parse(req.start, req.end, req.step, now)?;
        let planned = MetricsFile::read(req.metrics)?.plan(req.metrics)?;
        let client = Client::new(req.url, auth)?;
        Ok(Retrospective {
            client,
            metrics_path: req.metrics.to_path_buf(),
            planned,
            window,
        })
    }

    /// One line for the user: how many metrics, from where, over which window, and how many points (and
    /// queries, when a series needs more than [`super::MAX_POINTS`] per query).
    pub fn describe(&self) -> String {
        let w = &self.window;
        let points = w.points();
        let split = if points > super::MAX_POINTS {
            format!(", {} queries each", points.div_ceil(super::MAX_POINTS))
        } else {
            String::new()
        };
        format!(
            "querying {} metric(s) from {} over {} .. {} at {}s steps ({points} points per series{split})",
            self.planned.len(),
            self.client.url(),
            time::format_rfc3339(w.start),
            time::format_rfc3339(w.end),
            w.step,
        )
    }

    /// Runs both queries of every metric over the window (see [`super::collect`]).
    pub async fn collect(&self) -> Result<Collected, PromError> {
        collect(&self.client, &self.planned, &self.window).await
    }

    /// The report's run table: where the samples came from, the window, and one `query NAME` row per
    /// metric with both arms' queries.
    pub fn run_table(&self) -> serde_json::Value {
        let w = &self.window;
        let mut run = serde_json::json!({
            "source": format!("Prometheus {}", self.client.url()),
            "metrics_file": self.metrics_path.display().to_string(),
            "start": time::format_rfc3339(w.start),
            "end": time::format_rfc3339(w.end),
            "step_s": w.step,
        });
        for m in &self.planned {
            run[format!("query {}", m.spec.name.trim())] = serde_json::Value::String(format!(
                "baseline: {} | canary: {}",
                m.baseline_query, m.canary_query
            ));
        }
        run
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const METRICS: &str = r#"
[[metric]]
name = "latency_ms"
fail_on = "increase"
baseline_query = 'avg(rate(x{arm="baseline"}[1m]))'
canary_query = 'avg(rate(x{arm="canary"}[1m]))'
"#;

    fn prepared(start: &str, step: &str) -> Retrospective {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.toml");
        std::fs::write(&path, METRICS).unwrap();
        let req = Request {
            url: "http://127.0.0.1:9090",
            metrics: &path,
            start,
            end: "1700003600",
            step,
        };
        Retrospective::prepare(&req, Auth::None, 1_700_003_600.0).unwrap()
    }

    #[test]
    fn describe_names_the_metric_count_source_window_and_points() {
        let r = prepared("-1h", "15s");
        assert_eq!(
            r.describe(),
            "querying 1 metric(s) from http://127.0.0.1:9090 over 2023-11-14T22:13:20.000Z .. \
             2023-11-14T23:13:20.000Z at 15s steps (241 points per series)"
        );
    }

    #[test]
    fn describe_says_how_many_queries_a_long_window_needs() {
        let r = prepared("-1h", "0.1s");
        assert!(
            r.describe()
                .ends_with("(36001 points per series, 4 queries each)"),
            "{}",
            r.describe()
        );
    }

    #[test]
    fn run_table_holds_the_window_and_both_queries_of_every_metric() {
        let run = prepared("-1h", "15s").run_table();
        assert_eq!(run["source"], "Prometheus http://127.0.0.1:9090");
        assert_eq!(run["start"], "2023-11-14T22:13:20.000Z");
        assert_eq!(run["step_s"], 15.0);
        assert_eq!(
            run["query latency_ms"],
            r#"baseline: avg(rate(x{arm="baseline"}[1m])) | canary: avg(rate(x{arm="canary"}[1m]))"#
        );
    }

    #[test]
    fn a_window_that_ends_before_it_starts_is_refused_before_any_query() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.toml");
        std::fs::write(&path, METRICS).unwrap();
        let req = Request {
            url: "http://127.0.0.1:9090",
            metrics: &path,
            start: "now",
            end: "-1h",
            step: "15s",
        };
        let err = Retrospective::prepare(&req, Auth::None, 1_700_003_600.0).unwrap_err();
        assert!(matches!(err, PromError::Window(_)), "{err}");
    }
}
