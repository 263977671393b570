//! Summaries of a run: the numbers ([`RequestSummary`], for the whole run or one backend), the terminal
//! report (`LoadRun::write_summary`) and the `--json` object (`LoadRun::to_json`). Pure functions of the
//! recorded statistics.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use serde::Serialize;

use super::histogram::{Histogram, PERCENTILE_DEFINITION};
use super::{ErrorKind, LoadRun, Stats, Stop};

/// Latency percentiles in milliseconds (see [`PERCENTILE_DEFINITION`]); min, mean and max are exact.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatencyMs {
    pub min: f64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl LatencyMs {
    pub(crate) fn from_histogram(h: &Histogram) -> LatencyMs {
        let ms = |ns: u64| ns as f64 / 1e6;
        LatencyMs {
            min: ms(h.min()),
            mean: h.mean() / 1e6,
            p50: ms(h.quantile(0.50)),
            p90: ms(h.quantile(0.90)),
            p99: ms(h.quantile(0.99)),
            p999: ms(h.quantile(0.999)),
            max: ms(h.max()),
        }
    }
}

/// Numbers for a set of requests: a whole run or the requests one backend served.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequestSummary {
    /// Requests completed: responses plus errors.
    pub requests: u64,
    /// Requests that got a complete HTTP response (any status).
    pub responses: u64,
    /// Length of the run.
    pub duration_s: f64,
    /// `requests / duration_s`.
    pub rps: f64,
    /// Latency of the answered requests (any status) from each one's start; under a rate, from its due
    /// time (corrected for coordinated omission; see [`super::Record::offset`]). Refusals, resets and
    /// timeouts are not latencies: `None` (JSON `null`) when no request was answered.
    pub latency_ms: Option<LatencyMs>,
    /// Under a rate only: latency from the actual send, which hides queueing behind a slow server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_uncorrected_ms: Option<LatencyMs>,
    /// Responses by HTTP status.
    pub status: BTreeMap<u16, u64>,
    /// Failed requests by [`ErrorKind`] name.
    pub errors: BTreeMap<&'static str, u64>,
    /// Response body bytes received.
    pub bytes: u64,
}

impl RequestSummary {
    pub(crate) fn from_stats(s: &Stats, elapsed: Duration) -> RequestSummary {
        let requests = s.requests;
        let duration_s = elapsed.as_secs_f64();
        let errors: BTreeMap<&'static str, u64> = ErrorKind::ALL
            .iter()
            .zip(s.errors)
            .filter(|(_, n)| *n > 0)
            .map(|(k, n)| (k.as_str(), n))
            .collect();
        RequestSummary {
            requests,
            responses: requests - errors.values().sum::<u64>(),
            duration_s,
            rps: if duration_s > 0.0 {
                requests as f64 / duration_s
            } else {
                0.0
            },
            latency_ms: (s.latency.count() > 0).then(|| LatencyMs::from_histogram(&s.latency)),
            latency_uncorrected_ms: s
                .service
                .as_ref()
                .filter(|h| h.count() > 0)
                .map(LatencyMs::from_histogram),
            status: s.status.iter().copied().collect(),
            errors,
            bytes: s.bytes,
        }
    }

    /// Share of requests that failed or got a 5xx status.
    pub fn failure_ratio(&self) -> f64 {
        if self.requests == 0 {
            return 0.0;
        }
        let server_errors: u64 = self.status.range(500..600).map(|(_, n)| n).sum();
        (server_errors + self.requests - self.responses) as f64 / self.requests as f64
    }
}

#[derive(Serialize)]
struct JsonRun<'a> {
    url: String,
    method: &'a str,
    concurrency: usize,
    threads: usize,
    rate: Option<f64>,
    timeout_s: f64,
    stopped_early: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    missed: Option<u64>,
    #[serde(flatten)]
    summary: RequestSummary,
    #[serde(skip_serializing_if = "Option::is_none")]
    backends: Option<Vec<JsonBackend<'a>>>,
    percentile_definition: &'static str,
}

#[derive(Serialize)]
struct JsonBackend<'a> {
    backend: Option<&'a str>,
    #[serde(flatten)]
    summary: RequestSummary,
}

impl LoadRun {
    /// The `--json` object (as [`LoadRun::write_json`] prints it) as a value.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self.json_run()).expect("a load summary serializes to JSON")
    }

    /// Writes the `--json` object, keys in a fixed order: plan, overall [`RequestSummary`] fields at the top level,
    /// `backends` (per-backend summaries) when the plan names a backend header, the percentile definition.
    pub fn write_json(&self, w: &mut impl Write) -> serde_json::Result<()> {
        serde_json::to_writer(w, &self.json_run())
    }

    fn json_run(&self) -> JsonRun<'_> {
        let plan = self.plan();
        JsonRun {
            url: plan.url.to_string(),
            method: plan.method.as_str(),
            concurrency: plan.concurrency,
            threads: self.threads(),
            rate: plan.rate,
            timeout_s: plan.timeout.as_secs_f64(),
            stopped_early: self.stopped_early(),
            missed: plan.rate.map(|_| self.missed()),
            summary: self.summary(),
            backends: plan.backend_header.as_ref().map(|_| {
                self.backend_summaries()
                    .into_iter()
                    .map(|(backend, summary)| JsonBackend { backend, summary })
                    .collect()
            }),
            percentile_definition: PERCENTILE_DEFINITION,
        }
    }

    /// The human-readable summary printed at the end of `pipeline load`.
    pub fn write_summary(&self, w: &mut impl Write) -> std::io::Result<()> {
        let plan = self.plan();
        let s = self.summary();
        let stop = match plan.stop {
            Stop::Duration(d) => humantime::format_duration(d).to_string(),
            Stop::Count(n) => format!("{} requests", thousands(n)),
        };
        let pace = match plan.rate {
            Some(r) => format!("at {} req/s (open model)", thousands(r.round() as u64)),
            None => "as fast as possible (closed model)".to_string(),
        };
        writeln!(
            w,
            "{} {} — {} on {}, {stop}, {pace}{}",
            plan.method,
            plan.url,
            plural(plan.concurrency, "connection"),
            plural(self.threads(), "thread"),
            if self.stopped_early() {
                " (stopped early)"
            } else {
                ""
            }
        )?;
        writeln!(
            w,
            "  {:<13}{} in {:.2} s = {} req/s",
            "requests",
            thousands(s.requests),
            s.duration_s,
            thousands(s.rps.round() as u64)
        )?;
        let label = if plan.rate.is_some() {
            "latency ms*"
        } else {
            "latency ms"
        };
        writeln!(
            w,
            "  {label:<13}{}",
            s.latency_ms
                .as_ref()
                .map_or("none: no request was answered".to_string(), latency_line)
        )?;
        if let Some(u) = &s.latency_uncorrected_ms {
            writeln!(w, "  {:<13}{}", "uncorrected", latency_line(u))?;
            writeln!(
                w,
                "  {:<13}* from each request's scheduled send time (no coordinated omission)",
                ""
            )?;
        }
        writeln!(
            w,
            "  {:<13}{}",
            "status",
            counts_line(s.status.iter().map(|(k, v)| (k.to_string(), *v)))
        )?;
        writeln!(
            w,
            "  {:<13}{}",
            "errors",
            counts_line(s.errors.iter().map(|(k, v)| (k.to_string(), *v)))
        )?;
        writeln!(w, "  {:<13}{}", "body bytes", thousands(s.bytes))?;
        if plan.rate.is_some() && matches!(plan.stop, Stop::Duration(_)) {
            writeln!(
                w,
                "  {:<13}{} requests due but never sent{}",
                "missed",
                thousands(self.missed()),
                if self.missed() > 0 {
                    " (every connection was busy: raise -c)"
                } else {
                    ""
                }
            )?;
        }
        if plan.backend_header.is_some() {
            writeln!(
                w,
                "  per backend ({}):",
                plan.backend_header.as_ref().map_or("", |h| h.as_str())
            )?;
            for (name, b) in self.backend_summaries() {
                writeln!(
                    w,
                    "    {:<16}{:>12} req  {}  status {}  errors {}",
                    name.unwrap_or("(no header)"),
                    thousands(b.requests),
                    b.latency_ms
                        .as_ref()
                        .map_or("no answer".to_string(), |l| format!(
                            "p50 {:.3}  p99 {:.3}  max {:.3} ms",
                            l.p50, l.p99, l.max
                        )),
                    counts_line(b.status.iter().map(|(k, v)| (k.to_string(), *v))),
                    counts_line(b.errors.iter().map(|(k, v)| (k.to_string(), *v))),
                )?;
            }
        }
        writeln!(
            w,
            "  percentiles: nearest rank, from a histogram with buckets at most 0.1% wide"
        )
    }
}

/// `1 thread`, `2 threads`.
fn plural(n: usize, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

fn latency_line(l: &LatencyMs) -> String {
    format!(
        "min {:.3}  p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}  mean {:.3}",
        l.min, l.p50, l.p90, l.p99, l.p999, l.max, l.mean
    )
}

fn counts_line(items: impl Iterator<Item = (String, u64)>) -> String {
    let parts: Vec<String> = items
        .map(|(k, n)| format!("{k}: {}", thousands(n)))
        .collect();
    if parts.is_empty() {
        "none".to_string()
    } else {
        parts.join(", ")
    }
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::record::RequestOutcome;
    use super::*;

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }

    #[test]
    fn summary_counts_statuses_errors_and_rate() {
        let mut s = Stats::new(false);
        for _ in 0..8 {
            s.record(RequestOutcome::Status(200), 1_000_000, 1_000_000, 10);
        }
        s.record(RequestOutcome::Status(503), 2_000_000, 2_000_000, 3);
        s.record(
            RequestOutcome::Error(ErrorKind::Timeout),
            9_000_000,
            9_000_000,
            0,
        );
        let sum = RequestSummary::from_stats(&s, Duration::from_secs(2));
        assert_eq!((sum.requests, sum.responses, sum.bytes), (10, 9, 83));
        assert_eq!(sum.rps, 5.0);
        assert_eq!(sum.status, BTreeMap::from([(200, 8), (503, 1)]));
        assert_eq!(sum.errors, BTreeMap::from([("timeout", 1)]));
        // Percentiles are bucket upper bounds (at most 0.1% above); max is exact.
        // The timeout is a request but not a latency: percentiles cover the 9 answered ones.
        let lat = sum.latency_ms.unwrap();
        assert!(lat.p50 >= 1.0 && lat.p50 <= 1.001);
        assert_eq!(lat.max, 2.0);
        assert!((sum.failure_ratio() - 0.2).abs() < 1e-12);
        assert!(sum.latency_uncorrected_ms.is_none());
    }

    fn run_with_two_backends() -> LoadRun {
        let mut plan = super::super::LoadPlan::new("http://127.0.0.1:8080/x").unwrap();
        plan.rate = Some(100.0);
        plan.backend_header = Some("x-backend".parse().unwrap());
        let (mut blue, mut green) = (Stats::new(true), Stats::new(true));
        for _ in 0..3 {
            blue.record(RequestOutcome::Status(200), 2_000_000, 1_000_000, 5);
        }
        green.record(RequestOutcome::Status(503), 4_000_000, 3_000_000, 1);
        let mut none = Stats::new(true);
        none.record(
            RequestOutcome::Error(ErrorKind::Reset),
            1_000_000,
            1_000_000,
            0,
        );
        let mut overall = Stats::new(true);
        for s in [&none, &blue, &green] {
            overall.add(s);
        }
        LoadRun {
            plan,
            threads: 1,
            started_at: std::time::SystemTime::UNIX_EPOCH,
            elapsed: Duration::from_secs(1),
            stopped_early: false,
            missed: 2,
            streams: Vec::new(),
            backends: vec!["blue".into(), "green".into()],
            overall,
            per_backend: vec![none, blue, green],
        }
    }

    #[test]
    fn text_summary_shows_corrected_and_uncorrected_latency_counts_and_backends() {
        let mut out = Vec::new();
        run_with_two_backends().write_summary(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        for expected in [
            "GET http://127.0.0.1:8080/x — 10 connections on 1 thread, 10s, at 100 req/s (open model)",
            "requests     5 in 1.00 s = 5 req/s",
            // The reset (1 ms) is not a latency: the fastest answer took 2 ms.
            "latency ms*  min 2.000",
            "uncorrected  min 1.000",
            "(no header)                1 req  no answer",
            "status       200: 3, 503: 1",
            "errors       reset: 1",
            "missed       2 requests due but never sent (every connection was busy: raise -c)",
            "(no header)",
            "blue                       3 req",
            "green                      1 req",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
        }
    }

    #[test]
    fn json_has_the_documented_keys_in_order() {
        let mut out = Vec::new();
        run_with_two_backends().write_json(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let keys = [
            "\"url\"",
            "\"rate\"",
            "\"missed\"",
            "\"requests\"",
            "\"duration_s\"",
            "\"rps\"",
            "\"latency_ms\"",
            "\"latency_uncorrected_ms\"",
            "\"status\"",
            "\"errors\"",
            "\"backends\"",
            "\"percentile_definition\"",
        ];
        let positions: Vec<usize> = keys
            .iter()
            .map(|k| text.find(k).unwrap_or_else(|| panic!("{k} missing")))
            .collect();
        assert!(
            positions.windows(2).all(|w| w[0] < w[1]),
            "keys out of order: {text}"
        );
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["status"]["503"], 1);
        assert_eq!(v["errors"]["reset"], 1);
        assert_eq!(v["backends"][1]["backend"], "blue");
        assert_eq!(v["backends"][0]["backend"], serde_json::Value::Null);
        assert_eq!(v["latency_ms"]["p999"], v["latency_ms"]["max"]);
    }

    #[test]
    fn empty_summary_has_zero_rate_and_no_failures() {
        let sum = RequestSummary::from_stats(&Stats::new(true), Duration::ZERO);
        assert_eq!((sum.requests, sum.rps, sum.failure_ratio()), (0, 0.0, 0.0));
        assert_eq!((sum.latency_ms, sum.latency_uncorrected_ms), (None, None));
    }
}
