//! [`DeploySummary`]: the `deploy` section of the canary's `report.json`, a typed digest of a
//! [`DeployReport`] (counts as numbers; the full report is a separate file it points to), with the rows
//! the Markdown, HTML and terminal reports show. Its properties are described in
//! `src/canary/report/report.schema.json` (`$defs/deploy_summary`).

use serde::{Deserialize, Serialize};

use super::events::HostStats;
use super::report::{DeployReport, RoleSummary};

/// One host's end-of-run counters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostSummary {
    pub name: String,
    /// `ok`, `failed` or `unreachable`.
    pub verdict: String,
    pub stats: HostStats,
}

/// A failed or unreachable task on one host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailureSummary {
    pub host: String,
    pub role: Option<String>,
    pub task: String,
    pub message: String,
}

/// What the deploy of a run did, in numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploySummary {
    /// The run's name (`canary`, `deploy-itrust`, …).
    pub name: String,
    pub success: bool,
    pub duration_secs: f64,
    /// Sum of `changed` over all hosts.
    pub changed: u32,
    pub ansible_rc: i32,
    pub hosts: Vec<HostSummary>,
    pub roles: Vec<RoleSummary>,
    pub failures: Vec<FailureSummary>,
    /// Where the full report (per task and host) is.
    pub report: String,
}

impl DeploySummary {
    /// The summary of `report`, whose full JSON is in `file`.
    pub fn of(report: &DeployReport, file: &std::path::Path) -> DeploySummary {
        DeploySummary {
            name: report.name.clone(),
            success: report.success,
            duration_secs: report.duration_secs,
            changed: report.changed(),
            ansible_rc: report.ansible_rc,
            hosts: report
                .hosts
                .iter()
                .map(|h| HostSummary {
                    name: h.name.clone(),
                    verdict: h.verdict.as_str().to_string(),
                    stats: h.stats,
                })
                .collect(),
            roles: report.roles.clone(),
            failures: report
                .failures
                .iter()
                .map(|f| FailureSummary {
                    host: f.host.clone(),
                    role: f.role.clone(),
                    task: f.task.clone(),
                    message: f.message.clone(),
                })
                .collect(),
            report: file.display().to_string(),
        }
    }

    /// The rows the human-readable reports show: a result line, one per host, role and failure, and
    /// where the full report is.
    pub fn rows(&self) -> Vec<(String, String)> {
        let secs = |s: f64| format!("{s:.1} s");
        let mut rows = vec![(
            "result".to_string(),
            format!(
                "{} in {}, {} changed (ansible-playbook exit status {})",
                if self.success { "succeeded" } else { "FAILED" },
                secs(self.duration_secs),
                self.changed,
                self.ansible_rc
            ),
        )];
        for h in &self.hosts {
            let s = &h.stats;
            rows.push((
                format!("host {}", h.name),
                format!(
                    "ok {}, changed {}, failed {}, unreachable {}, skipped {}",
                    s.ok, s.changed, s.failures, s.unreachable, s.skipped
                ),
            ));
        }
        for r in &self.roles {
            rows.push((
                format!("role {}", r.role),
                format!(
                    "{} tasks, {} changed, {} failed, {}",
                    r.tasks,
                    r.changed,
                    r.failed,
                    secs(r.duration_secs)
                ),
            ));
        }
        for f in &self.failures {
            rows.push((
                format!("failure on {}", f.host),
                format!("{}: {}", f.task, f.message),
            ));
        }
        rows.push(("full report".into(), self.report.clone()));
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ansible::report::{Failure, HostReport, HostVerdict};
    use crate::ansible::Status;

    fn sample() -> DeployReport {
        DeployReport {
            name: "canary".into(),
            inventory: "inventory.ini".into(),
            check_mode: false,
            started_at: "2026-01-01T00:00:00Z".into(),
            duration_secs: 12.34,
            ansible_rc: 2,
            success: false,
            hosts: vec![HostReport {
                name: "blue".into(),
                verdict: HostVerdict::Failed,
                stats: HostStats {
                    ok: 5,
                    changed: 2,
                    failures: 1,
                    ..HostStats::default()
                },
            }],
            roles: vec![RoleSummary {
                role: "preview_service".into(),
                tasks: 6,
                changed: 2,
                failed: 1,
                duration_secs: 3.0,
            }],
            tasks: vec![],
            failures: vec![Failure {
                host: "blue".into(),
                role: Some("preview_service".into()),
                task: "Start".into(),
                status: Status::Failed,
                message: "boom".into(),
            }],
            problem: None,
        }
    }

    #[test]
    fn summary_keeps_the_counts_as_numbers_and_rows_say_them_in_words() {
        let s = DeploySummary::of(&sample(), std::path::Path::new("r/deploy.json"));
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["changed"], 2);
        assert_eq!(json["hosts"][0]["stats"]["failures"], 1);
        assert_eq!(json["roles"][0]["tasks"], 6);
        assert_eq!(json["failures"][0]["message"], "boom");
        let rows = s.rows();
        assert_eq!(
            rows[0],
            (
                "result".to_string(),
                "FAILED in 12.3 s, 2 changed (ansible-playbook exit status 2)".to_string()
            )
        );
        assert!(rows.contains(&(
            "role preview_service".into(),
            "6 tasks, 2 changed, 1 failed, 3.0 s".into()
        )));
        assert_eq!(rows.last().unwrap().1, "r/deploy.json");
    }

    /// Every object in `value` has exactly the properties `schema` lists (all required), recursively.
    fn same_keys(schema: &serde_json::Value, value: &serde_json::Value, path: &str) {
        if let Some(items) = schema.get("items") {
            for (i, v) in value.as_array().unwrap().iter().enumerate() {
                same_keys(items, v, &format!("{path}[{i}]"));
            }
        }
        let Some(props) = schema.get("properties").and_then(|p| p.as_object()) else {
            return;
        };
        let obj = value
            .as_object()
            .unwrap_or_else(|| panic!("{path} is not an object"));
        let mut want: Vec<&String> = props.keys().collect();
        let mut have: Vec<&String> = obj.keys().collect();
        want.sort();
        have.sort();
        assert_eq!(want, have, "{path}: schema properties vs serialized fields");
        let required: Vec<&str> = schema["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap())
            .collect();
        assert_eq!(
            required.len(),
            props.len(),
            "{path}: every property is required"
        );
        assert_eq!(schema["additionalProperties"], false, "{path}");
        for (k, v) in obj {
            same_keys(&props[k], v, &format!("{path}.{k}"));
        }
    }

    #[test]
    fn the_report_schema_describes_every_field_of_the_summary() {
        let schema: serde_json::Value =
            serde_json::from_str(crate::canary::report::JSON_SCHEMA).unwrap();
        assert_eq!(
            schema["properties"]["deploy"]["$ref"],
            "#/$defs/deploy_summary"
        );
        let summary = DeploySummary::of(&sample(), std::path::Path::new("deploy.json"));
        let value = serde_json::to_value(&summary).unwrap();
        same_keys(&schema["$defs"]["deploy_summary"], &value, "deploy");
    }
}
