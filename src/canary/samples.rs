//! A canary run's observations in the `pipeline analyze` input format: every request of the load, told
//! apart by the backend header the split proxy sets, plus the CPU and memory samples of the two service
//! hosts. The canary writes this file (`samples.json`) and judges it, so `pipeline analyze` re-judges any run.
//!
//! Metrics (canary − baseline; the settings are the canary's defaults, see the README):
//! - `error_rate`: 1 per request answered 5xx, 0 otherwise; two-proportion test; critical, fails on an
//!   increase of more than half a percentage point;
//! - `latency_ms`: per request that got an answer (any status), from its scheduled send time; critical,
//!   fails on +20 % (of the median, or of the p99 by the judge's tail test);
//! - `response_bytes`: body size per answered request; fails on a change of more than 10 % either way
//!   (a broken service answers with tiny error bodies);
//! - `cpu_percent`, `memory_percent`: one value per second per host (the arm's cgroup on the local sandbox,
//!   node_exporter on droplets); fail on +25 %; weight ½ each, as host figures are noisy.
//!
//! The proxy answers a hung or dead arm itself (504/502, its timeouts are below the client's) with the arm's
//! header, so those count against that arm. A request of a known arm whose response never completed counts
//! as that arm's error. Requests that got no response at all carry no header and belong to neither arm: they
//! are reported, and passed to the judge as `unanswered`, which makes a PASS or MARGINAL INCONCLUSIVE above
//! `[judge] max_unanswered_share`. The baseline's own error rate is checked too (`baseline_health`): above
//! `[judge] max_baseline_error_rate` there is no healthy reference and the verdict is INCONCLUSIVE.

use serde::Serialize;

use crate::canary::judge::{FailOn, JudgeInput, MetricInput, MetricKind, Unanswered};
use crate::canary::metrics::HostSeries;

/// One request as the canary sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RequestObs<'a> {
    /// Seconds from the start of the load to the request's (scheduled) start.
    pub offset_s: f64,
    pub latency_ms: f64,
    /// HTTP status, `None` when no response came back.
    pub status: Option<u16>,
    pub bytes: u64,
    /// The backend header's value.
    pub backend: Option<&'a str>,
}

/// The requests of one arm, as parallel columns (value, offset).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ArmRequests {
    /// All requests of the arm (answered or not).
    pub requests: u64,
    /// 5xx answers plus requests without a complete response.
    pub errors: u64,
    /// Requests of this arm whose response never completed.
    pub no_response: u64,
    /// Answered requests: offset, latency and body size.
    pub offset_s: Vec<f64>,
    pub latency_ms: Vec<f64>,
    pub bytes: Vec<f64>,
    /// Every request: 1.0 for a 5xx answer or no complete response, else 0.0, at `error_offset_s`.
    pub error: Vec<f64>,
    pub error_offset_s: Vec<f64>,
}

/// Requests split by arm.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestSplit {
    pub baseline: ArmRequests,
    pub canary: ArmRequests,
    /// Requests that carried no (known) backend header.
    pub unattributed: Unattributed,
}

/// Requests that belong to neither arm, for the report.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Unattributed {
    pub requests: u64,
    /// Of which no response came back at all (connection refused, reset, timeout).
    pub no_response: u64,
    /// Backend header values that named neither arm.
    pub unknown_backends: Vec<String>,
}

/// Whether a response counts as an error for `error_rate`.
pub fn is_error_status(status: u16) -> bool {
    status >= 500
}

/// Splits `records` between the arms whose header values are `baseline_label` and `canary_label`, each arm
/// sorted by offset (records arrive grouped by connection).
pub fn split_requests<'a>(
    records: impl IntoIterator<Item = RequestObs<'a>>,
    baseline_label: &str,
    canary_label: &str,
) -> RequestSplit {
    // (offset, latency, bytes, error); latency and bytes are NaN for a request without a response.
    let mut rows: [Vec<(f64, f64, f64, f64)>; 2] = [Vec::new(), Vec::new()];
    let mut unattributed = Unattributed::default();
    for r in records {
        let arm = match r.backend {
            Some(b) if b == baseline_label => 0,
            Some(b) if b == canary_label => 1,
            other => {
                unattributed.requests += 1;
                if r.status.is_none() {
                    unattributed.no_response += 1;
                }
                if let Some(b) = other {
                    if !unattributed.unknown_backends.iter().any(|u| u == b) {
                        unattributed.unknown_backends.push(b.to_string());
                    }
                }
                continue;
            }
        };
        rows[arm].push(match r.status {
            Some(status) => (
                r.offset_s,
                r.latency_ms,
                r.bytes as f64,
                if is_error_status(status) { 1.0 } else { 0.0 },
            ),
            // The arm is known but its response never completed: an error of that arm, no latency.
            None => (r.offset_s, f64::NAN, f64::NAN, 1.0),
        });
    }
    let [baseline, canary] = rows.map(|mut rows| {
        rows.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut arm = ArmRequests {
            requests: rows.len() as u64,
            ..ArmRequests::default()
        };
        for (t, latency, bytes, error) in rows {
            arm.error_offset_s.push(t);
            arm.error.push(error);
            arm.errors += error as u64;
            if latency.is_nan() {
                arm.no_response += 1;
                continue;
            }
            arm.offset_s.push(t);
            arm.latency_ms.push(latency);
            arm.bytes.push(bytes);
        }
        arm
    });
    RequestSplit {
        baseline,
        canary,
        unattributed,
    }
}

fn metric(
    name: &str,
    unit: &str,
    fail_on: FailOn,
    (baseline, baseline_t): (Vec<f64>, Vec<f64>),
    (canary, canary_t): (Vec<f64>, Vec<f64>),
) -> MetricInput {
    let mut m = MetricInput::new(name, fail_on, baseline, canary);
    m.unit = Some(unit.to_string());
    m.baseline_time_s = Some(baseline_t);
    m.canary_time_s = Some(canary_t);
    m
}

fn host_column(
    series: &HostSeries,
    pick: fn(&crate::canary::metrics::HostSample) -> f64,
) -> (Vec<f64>, Vec<f64>) {
    series.samples.iter().map(|s| (pick(s), s.offset_s)).unzip()
}

/// Samples per arm from which the host metrics (one a second) are judged.
pub const HOST_MIN_SAMPLES: usize = 10;

/// The canary's metrics in the `pipeline analyze` format.
pub fn judge_input(
    split: &RequestSplit,
    baseline_host: &HostSeries,
    canary_host: &HostSeries,
) -> JudgeInput {
    let (b, c) = (&split.baseline, &split.canary);
    let col = |arm: &ArmRequests, values: &Vec<f64>| (values.clone(), arm.offset_s.clone());

    let errors = |arm: &ArmRequests| (arm.error.clone(), arm.error_offset_s.clone());
    let mut error_rate = metric(
        "error_rate",
        "ratio",
        FailOn::Increase,
        errors(b),
        errors(c),
    );
    error_rate.kind = Some(MetricKind::Proportion);
    error_rate.critical = true;
    error_rate.baseline_health = true;
    error_rate.allowed_increase = Some(0.005);

    let mut latency = metric(
        "latency_ms",
        "ms",
        FailOn::Increase,
        col(b, &b.latency_ms),
        col(c, &c.latency_ms),
    );
    latency.kind = Some(MetricKind::Continuous);
    latency.critical = true;
    latency.allowed_increase = Some(0.20);

    let mut bytes = metric(
        "response_bytes",
        "bytes",
        FailOn::Either,
        col(b, &b.bytes),
        col(c, &c.bytes),
    );
    bytes.kind = Some(MetricKind::Continuous);
    bytes.allowed_increase = Some(0.10);
    bytes.allowed_decrease = Some(0.10);

    let host_metric = |name: &str, pick: fn(&crate::canary::metrics::HostSample) -> f64| {
        let mut m = metric(
            name,
            "%",
            FailOn::Increase,
            host_column(baseline_host, pick),
            host_column(canary_host, pick),
        );
        m.kind = Some(MetricKind::Continuous);
        m.allowed_increase = Some(0.25);
        m.weight = Some(0.5);
        // One sample a second: a 15 s window holds 15, so these judge from 10 on, below the
        // per-request metrics' default of 50.
        m.min_samples = Some(HOST_MIN_SAMPLES);
        m
    };
    JudgeInput {
        metrics: vec![
            error_rate,
            latency,
            bytes,
            host_metric("cpu_percent", |s| s.cpu_percent),
            host_metric("memory_percent", |s| s.memory_percent),
        ],
        unanswered: Some(Unanswered {
            requests: split.unattributed.no_response,
            total: b.requests + c.requests + split.unattributed.requests,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canary::metrics::HostSample;

    fn req(offset_s: f64, status: Option<u16>, backend: Option<&str>) -> RequestObs<'_> {
        RequestObs {
            offset_s,
            latency_ms: offset_s * 10.0,
            status,
            bytes: if status == Some(500) { 46 } else { 1921 },
            backend,
        }
    }

    #[test]
    fn requests_split_by_backend_header_sorted_by_time_with_5xx_as_errors() {
        let split = split_requests(
            vec![
                req(2.0, Some(200), Some("baseline")),
                req(1.0, Some(500), Some("canary")),
                req(0.5, Some(200), Some("baseline")),
                req(3.0, Some(404), Some("canary")),
            ],
            "baseline",
            "canary",
        );
        assert_eq!(split.baseline.offset_s, vec![0.5, 2.0]);
        assert_eq!(split.baseline.latency_ms, vec![5.0, 20.0]);
        assert_eq!(split.baseline.errors, 0);
        assert_eq!(
            split.canary.error,
            vec![1.0, 0.0],
            "404 is no error, 500 is"
        );
        assert_eq!(split.canary.bytes, vec![46.0, 1921.0]);
        assert_eq!(split.canary.requests, 2);
        assert_eq!(split.unattributed, Unattributed::default());
    }

    #[test]
    fn requests_without_a_known_backend_are_counted_apart() {
        let split = split_requests(
            vec![
                req(0.0, None, None),
                req(0.1, Some(502), None),
                req(0.2, Some(200), Some("other")),
                req(0.3, Some(200), Some("other")),
            ],
            "baseline",
            "canary",
        );
        assert_eq!(split.baseline.requests + split.canary.requests, 0);
        assert_eq!(
            split.unattributed,
            Unattributed {
                requests: 4,
                no_response: 1,
                unknown_backends: vec!["other".into()],
            }
        );
    }

    #[test]
    fn a_request_of_a_known_arm_without_a_complete_response_is_that_arm_s_error() {
        let split = split_requests(
            vec![
                req(0.1, Some(200), Some("canary")),
                req(0.2, None, Some("canary")),
                req(0.3, Some(504), Some("canary")),
                req(0.4, Some(200), Some("baseline")),
            ],
            "baseline",
            "canary",
        );
        let c = &split.canary;
        assert_eq!((c.requests, c.errors, c.no_response), (3, 2, 1));
        assert_eq!(c.error, vec![0.0, 1.0, 1.0]);
        assert_eq!(c.error_offset_s, vec![0.1, 0.2, 0.3]);
        assert_eq!(
            c.offset_s,
            vec![0.1, 0.3],
            "no latency for the unanswered one"
        );
        assert_eq!(c.latency_ms.len(), 2);
    }

    #[test]
    fn unattributed_no_responses_reach_the_judge_and_the_baseline_gates_its_error_rate() {
        let split = split_requests(
            vec![
                req(0.1, Some(200), Some("baseline")),
                req(0.2, Some(200), Some("canary")),
                req(0.3, None, None),
                req(0.4, Some(502), None),
            ],
            "baseline",
            "canary",
        );
        let input = judge_input(&split, &host(1.0), &host(1.0));
        assert_eq!(
            input.unanswered,
            Some(Unanswered {
                requests: 1,
                total: 4
            })
        );
        assert!(input.metrics[0].baseline_health);
        assert!(input.metrics[1..].iter().all(|m| !m.baseline_health));
    }

    fn host(cpu: f64) -> HostSeries {
        HostSeries {
            host: "h".into(),
            samples: (1..=3)
                .map(|i| HostSample {
                    offset_s: i as f64,
                    cpu_percent: cpu,
                    memory_percent: 40.0,
                })
                .collect(),
            ..HostSeries::default()
        }
    }

    #[test]
    fn judge_input_holds_the_five_canary_metrics_with_times_and_settings() {
        let split = split_requests(
            vec![
                req(1.0, Some(200), Some("baseline")),
                req(1.5, Some(500), Some("canary")),
            ],
            "baseline",
            "canary",
        );
        let input = judge_input(&split, &host(10.0), &host(12.0));
        let names: Vec<&str> = input.metrics.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(
            names,
            vec![
                "error_rate",
                "latency_ms",
                "response_bytes",
                "cpu_percent",
                "memory_percent"
            ]
        );
        let errors = &input.metrics[0];
        assert!(errors.critical);
        assert_eq!(errors.kind, Some(MetricKind::Proportion));
        assert_eq!(errors.canary, vec![1.0]);
        assert_eq!(errors.canary_time_s, Some(vec![1.5]));
        let cpu = &input.metrics[3];
        assert_eq!(cpu.baseline, vec![10.0; 3]);
        assert_eq!(cpu.canary, vec![12.0; 3]);
        assert_eq!(cpu.baseline_time_s, Some(vec![1.0, 2.0, 3.0]));
        assert_eq!(cpu.weight, Some(0.5));
        // The file round-trips through the analyze format.
        let json = serde_json::to_string(&input).unwrap();
        assert_eq!(serde_json::from_str::<JudgeInput>(&json).unwrap(), input);
    }
}
