//! [`RunSummary`]: the `run` section `pipeline canary` adds to `report.json`, typed (request counts,
//! durations and samples as numbers), with the rows the Markdown, HTML and terminal reports show. Its
//! properties are described in `report.schema.json` (`$defs/run_summary`).

use serde::Serialize;

/// One arm as deployed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArmSummary {
    pub branch: String,
    pub commit: String,
    pub host: String,
    pub address: String,
}

/// The load the canary sent through the proxy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadSummary {
    pub method: String,
    pub path: String,
    pub duration_secs: f64,
    pub connections: usize,
    /// Requests per second (open model); `None`: closed model.
    pub rate: Option<f64>,
}

/// How many requests went where.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequestCounts {
    pub total: u64,
    pub baseline: u64,
    pub baseline_5xx: u64,
    pub canary: u64,
    pub canary_5xx: u64,
    /// Requests no arm answered (no or an unknown backend header).
    pub unattributed: u64,
    /// Of the unattributed, those without any response.
    pub no_response: u64,
}

/// The host samples of one arm's host.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HostSamples {
    pub host: String,
    pub samples: usize,
    pub failed_scrapes: u64,
    pub last_error: Option<String>,
}

/// How long one stage took.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageSummary {
    pub name: String,
    pub seconds: f64,
}

/// What one canary run did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunSummary {
    pub baseline: ArmSummary,
    pub canary: ArmSummary,
    pub repository: String,
    pub provider: String,
    pub environment: String,
    pub proxy: String,
    /// Share of the requests the proxy sends to the canary, in percent.
    pub split_percent: u8,
    pub load: LoadSummary,
    pub requests: RequestCounts,
    pub host_samples: Vec<HostSamples>,
    pub stages: Vec<StageSummary>,
    /// What the host metrics measure, in words.
    pub host_metrics: String,
    /// The samples file (re-judge it with `pipeline analyze FILE`).
    pub samples: String,
}

fn arm_row(a: &ArmSummary) -> String {
    format!(
        "{} ({}) on {} {}",
        a.branch,
        &a.commit[..a.commit.len().min(10)],
        a.host,
        a.address
    )
}

impl RunSummary {
    /// The rows the human-readable reports show, in words.
    pub fn rows(&self) -> Vec<(String, String)> {
        let l = &self.load;
        let r = &self.requests;
        let rows = [
            ("baseline", arm_row(&self.baseline)),
            ("canary", arm_row(&self.canary)),
            ("repository", self.repository.clone()),
            ("provider", self.provider.clone()),
            ("environment", self.environment.clone()),
            ("proxy", self.proxy.clone()),
            ("split", format!("{}% canary", self.split_percent)),
            (
                "load",
                format!(
                    "{} {} for {}, {} connections, {}",
                    l.method,
                    l.path,
                    humantime::format_duration(std::time::Duration::from_millis(
                        (l.duration_secs * 1000.0).round() as u64
                    )),
                    l.connections,
                    l.rate
                        .map(|r| format!("{r} req/s (open model)"))
                        .unwrap_or_else(|| "closed model".into())
                ),
            ),
            (
                "requests",
                format!(
                    "{} total: {} baseline ({} 5xx), {} canary ({} 5xx), {} without an arm ({} without a response)",
                    r.total, r.baseline, r.baseline_5xx, r.canary, r.canary_5xx, r.unattributed, r.no_response
                ),
            ),
            (
                "host_samples",
                self.host_samples
                    .iter()
                    .map(|h| {
                        format!(
                            "{}: {} samples, {} failed scrapes{}",
                            h.host,
                            h.samples,
                            h.failed_scrapes,
                            h.last_error
                                .as_ref()
                                .map(|e| format!(" (last: {e})"))
                                .unwrap_or_default()
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            (
                "stages",
                self.stages
                    .iter()
                    .map(|s| format!("{} {:.1} s", s.name, s.seconds))
                    .collect::<Vec<_>>()
                    .join(" · "),
            ),
            ("host_metrics", self.host_metrics.clone()),
            (
                "samples",
                format!(
                    "{} (re-judge with `pipeline analyze {}`)",
                    self.samples, self.samples
                ),
            ),
        ];
        // The order the reports have always shown: the keys sorted, as the JSON object they came from.
        let mut rows: Vec<(String, String)> =
            rows.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> RunSummary {
        let arm = |b: &str, h: &str| ArmSummary {
            branch: b.into(),
            commit: "0123456789abcdef".into(),
            host: h.into(),
            address: "10.0.0.2".into(),
        };
        RunSummary {
            baseline: arm("master", "blue"),
            canary: arm("broken", "green"),
            repository: "https://example.org/x.git".into(),
            provider: "local".into(),
            environment: "canary".into(),
            proxy: "http://10.0.0.4:80/preview".into(),
            split_percent: 50,
            load: LoadSummary {
                method: "POST".into(),
                path: "/preview".into(),
                duration_secs: 90.0,
                connections: 8,
                rate: Some(100.0),
            },
            requests: RequestCounts {
                total: 6000,
                baseline: 2990,
                baseline_5xx: 0,
                canary: 3000,
                canary_5xx: 12,
                unattributed: 10,
                no_response: 4,
            },
            host_samples: vec![HostSamples {
                host: "blue".into(),
                samples: 90,
                failed_scrapes: 1,
                last_error: Some("timeout".into()),
            }],
            stages: vec![StageSummary {
                name: "provision".into(),
                seconds: 12.3,
            }],
            host_metrics: "cgroups".into(),
            samples: "r/samples.json".into(),
        }
    }

    #[test]
    fn counts_are_numbers_in_json_and_words_in_the_rows_sorted_by_key() {
        let s = sample();
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["requests"]["total"], 6000);
        assert_eq!(json["requests"]["canary_5xx"], 12);
        assert_eq!(json["load"]["rate"], 100.0);
        let rows = s.rows();
        let keys: Vec<&str> = rows.iter().map(|(k, _)| k.as_str()).collect();
        let mut sorted = keys.clone();
        sorted.sort_unstable();
        assert_eq!(keys, sorted);
        let get = |k: &str| rows.iter().find(|(key, _)| key == k).unwrap().1.clone();
        assert_eq!(
            get("requests"),
            "6000 total: 2990 baseline (0 5xx), 3000 canary (12 5xx), 10 without an arm (4 without a response)"
        );
        assert_eq!(get("baseline"), "master (0123456789) on blue 10.0.0.2");
        assert_eq!(
            get("load"),
            "POST /preview for 1m 30s, 8 connections, 100 req/s (open model)"
        );
        assert_eq!(
            get("host_samples"),
            "blue: 90 samples, 1 failed scrapes (last: timeout)"
        );
        assert_eq!(get("stages"), "provision 12.3 s");
        assert_eq!(get("split"), "50% canary");
    }

    #[test]
    fn the_report_schema_describes_every_field_of_the_run_summary() {
        let schema: serde_json::Value = serde_json::from_str(super::super::JSON_SCHEMA).unwrap();
        let defs = &schema["$defs"];
        let value = serde_json::to_value(sample()).unwrap();
        let keys = |v: &serde_json::Value| {
            let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
            k.sort();
            k
        };
        let required = |d: &serde_json::Value| {
            let mut k: Vec<String> = d["required"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_str().unwrap().to_string())
                .collect();
            k.sort();
            assert_eq!(k, keys(&d["properties"]), "every property is required");
            k
        };
        let run = &defs["run_summary"];
        assert_eq!(required(run), keys(&value));
        assert_eq!(required(&defs["arm_summary"]), keys(&value["baseline"]));
        for k in ["load", "requests"] {
            assert_eq!(required(&run["properties"][k]), keys(&value[k]), "{k}");
        }
        for k in ["host_samples", "stages"] {
            assert_eq!(
                required(&run["properties"][k]["items"]),
                keys(&value[k][0]),
                "{k}"
            );
        }
    }
}
