//! The deploy report: what one `ansible-playbook` run did, per host and per role and task, built from the
//! callback's events ([`ReportBuilder`]), serializable as JSON and rendered for the terminal. Pure: no I/O.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::events::{Event, HostStats, Status};

/// How a host came out of the run, from Ansible's own end-of-run stats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HostVerdict {
    Ok,
    Failed,
    Unreachable,
}

impl HostVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            HostVerdict::Ok => "ok",
            HostVerdict::Failed => "failed",
            HostVerdict::Unreachable => "unreachable",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostReport {
    pub name: String,
    pub verdict: HostVerdict,
    pub stats: HostStats,
}

/// One task's outcome on one host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskHostResult {
    pub status: Status,
    pub duration_secs: Option<f64>,
    /// Why it failed (failed, ignored and unreachable results only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// One task (or handler) as it ran, in playbook order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskReport {
    pub role: Option<String>,
    pub name: String,
    pub handler: bool,
    /// From the task's start to its last host result.
    pub duration_secs: f64,
    pub hosts: BTreeMap<String, TaskHostResult>,
}

/// Per-role totals, in the order the roles first ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoleSummary {
    /// The role's name, or `(playbook)` for tasks outside any role.
    pub role: String,
    pub tasks: usize,
    pub changed: usize,
    pub failed: usize,
    pub duration_secs: f64,
}

/// A failed or unreachable task result that was not ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    pub host: String,
    pub role: Option<String>,
    pub task: String,
    pub status: Status,
    pub message: String,
}

/// Everything one playbook run did. `success` is true only when ansible-playbook exited 0 and no host
/// failed or was unreachable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeployReport {
    /// The run's name (`deploy-itrust`, `monitor-setup`, …).
    pub name: String,
    pub inventory: String,
    pub check_mode: bool,
    pub started_at: String,
    pub duration_secs: f64,
    pub ansible_rc: i32,
    pub success: bool,
    pub hosts: Vec<HostReport>,
    pub roles: Vec<RoleSummary>,
    pub tasks: Vec<TaskReport>,
    pub failures: Vec<Failure>,
    /// A problem with the run as a whole (non-zero exit without a failed host, no host matched).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

impl DeployReport {
    /// Sum of `changed` over all hosts (0 on an idempotent re-run).
    pub fn changed(&self) -> u32 {
        self.hosts.iter().map(|h| h.stats.changed).sum()
    }

    /// Hosts that failed or were unreachable.
    pub fn bad_hosts(&self) -> Vec<&HostReport> {
        self.hosts
            .iter()
            .filter(|h| h.verdict != HostVerdict::Ok)
            .collect()
    }

    /// The report for a terminal: a verdict line, a host table, per-role totals, then each failure.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        let verdict = if self.success { "succeeded" } else { "FAILED" };
        let mode = if self.check_mode { " (check mode)" } else { "" };
        let _ = writeln!(
            out,
            "{}{mode}: {verdict} in {} (ansible-playbook exit status {}, {})",
            self.name,
            fmt_secs(self.duration_secs),
            self.ansible_rc,
            rc_meaning(self.ansible_rc)
        );
        let _ = writeln!(
            out,
            "  {:<14} {:<12} {:>5} {:>8} {:>7} {:>12} {:>8}",
            "host", "result", "ok", "changed", "failed", "unreachable", "skipped"
        );
        for h in &self.hosts {
            let verdict = match h.verdict {
                HostVerdict::Ok => "ok".to_string(),
                bad => bad.as_str().to_uppercase(),
            };
            let _ = writeln!(
                out,
                "  {:<14} {:<12} {:>5} {:>8} {:>7} {:>12} {:>8}",
                h.name,
                verdict,
                h.stats.ok,
                h.stats.changed,
                h.stats.failures,
                h.stats.unreachable,
                h.stats.skipped
            );
        }
        if !self.roles.is_empty() {
            let _ = writeln!(
                out,
                "  {:<14} {:>6} {:>8} {:>7} {:>9}",
                "role", "tasks", "changed", "failed", "time"
            );
            for r in &self.roles {
                let _ = writeln!(
                    out,
                    "  {:<14} {:>6} {:>8} {:>7} {:>9}",
                    r.role,
                    r.tasks,
                    r.changed,
                    r.failed,
                    fmt_secs(r.duration_secs)
                );
            }
        }
        for f in &self.failures {
            let _ = writeln!(
                out,
                "  {} on {}: task \"{}\"{}: {}",
                f.status.as_str().to_uppercase(),
                f.host,
                f.task,
                f.role
                    .as_ref()
                    .map(|r| format!(" (role {r})"))
                    .unwrap_or_default(),
                f.message
            );
        }
        if let Some(p) = &self.problem {
            let _ = writeln!(out, "  problem: {p}");
        }
        out
    }
}

/// What an `ansible-playbook` exit status means (ansible's `TaskQueueManager` constants).
pub fn rc_meaning(rc: i32) -> &'static str {
    match rc {
        0 => "success",
        1 => "fatal error",
        2 => "a task failed on some host",
        4 => "a host was unreachable, or the playbook did not parse",
        5 => "bad or incomplete options",
        8 => "a failure stopped the play",
        99 => "interrupted",
        250 | 255 => "unexpected error",
        _ => "unknown status",
    }
}

/// `0.4s`, `12.3s`, `2m05s`.
pub fn fmt_secs(secs: f64) -> String {
    if secs < 60.0 {
        format!("{secs:.1}s")
    } else {
        let total = secs.round() as u64;
        format!("{}m{:02}s", total / 60, total % 60)
    }
}

/// Folds callback events into a [`DeployReport`].
#[derive(Debug, Default)]
pub struct ReportBuilder {
    tasks: Vec<TaskReport>,
    task_start: Vec<f64>,
    current: BTreeMap<String, usize>,
    stats: Option<BTreeMap<String, HostStats>>,
    no_hosts_matched: bool,
}

impl ReportBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the end-of-run stats event has arrived (Ansible did not abort).
    pub fn has_stats(&self) -> bool {
        self.stats.is_some()
    }

    pub fn apply(&mut self, event: &Event) {
        match event {
            Event::TaskStart {
                task,
                handler,
                time,
            } => {
                self.current.insert(task.task_id.clone(), self.tasks.len());
                self.tasks.push(TaskReport {
                    role: task.role.clone(),
                    name: task.task.clone(),
                    handler: *handler,
                    duration_secs: 0.0,
                    hosts: BTreeMap::new(),
                });
                self.task_start.push(*time);
            }
            Event::Result(r) => {
                let idx = match self.current.get(&r.task.task_id) {
                    Some(i) => *i,
                    None => {
                        // A result without a start (e.g. a task Ansible runs implicitly): record it anyway.
                        self.current
                            .insert(r.task.task_id.clone(), self.tasks.len());
                        self.tasks.push(TaskReport {
                            role: r.task.role.clone(),
                            name: r.task.task.clone(),
                            handler: false,
                            duration_secs: 0.0,
                            hosts: BTreeMap::new(),
                        });
                        self.task_start.push(r.time);
                        self.tasks.len() - 1
                    }
                };
                let task = &mut self.tasks[idx];
                task.duration_secs = task.duration_secs.max(r.time - self.task_start[idx]);
                let message = matches!(
                    r.status,
                    Status::Failed | Status::Unreachable | Status::Ignored
                )
                .then(|| r.message());
                task.hosts.insert(
                    r.host.clone(),
                    TaskHostResult {
                        status: r.status,
                        duration_secs: r.duration,
                        message,
                    },
                );
            }
            Event::Stats { hosts } => self.stats = Some(hosts.clone()),
            Event::NoHostsMatched => self.no_hosts_matched = true,
            Event::PlaybookStart { .. } | Event::PlayStart { .. } | Event::Retry { .. } => {}
        }
    }

    /// The report, given how the run ended. `stderr_tail` explains a non-zero exit that no host accounts for.
    pub fn finish(self, run: RunFacts, rc: i32, stderr_tail: &str) -> DeployReport {
        let stats = self.stats.unwrap_or_default();
        let hosts: Vec<HostReport> = stats
            .iter()
            .map(|(name, s)| HostReport {
                name: name.clone(),
                verdict: if s.unreachable > 0 {
                    HostVerdict::Unreachable
                } else if s.failures > 0 {
                    HostVerdict::Failed
                } else {
                    HostVerdict::Ok
                },
                stats: *s,
            })
            .collect();
        let failures: Vec<Failure> = self
            .tasks
            .iter()
            .flat_map(|t| {
                t.hosts
                    .iter()
                    .filter(|(_, r)| matches!(r.status, Status::Failed | Status::Unreachable))
                    .map(move |(host, r)| Failure {
                        host: host.clone(),
                        role: t.role.clone(),
                        task: t.name.clone(),
                        status: r.status,
                        message: r.message.clone().unwrap_or_default(),
                    })
            })
            .collect();
        let any_bad = hosts.iter().any(|h| h.verdict != HostVerdict::Ok);
        let problem = if self.no_hosts_matched || hosts.is_empty() {
            Some("no host of the inventory matched the play's group".to_string())
        } else if rc != 0 && !any_bad {
            let tail = stderr_tail.trim();
            Some(format!(
                "ansible-playbook exited with status {rc} ({}) although every host succeeded{}",
                rc_meaning(rc),
                if tail.is_empty() {
                    String::new()
                } else {
                    format!(": {tail}")
                }
            ))
        } else {
            None
        };
        DeployReport {
            name: run.name,
            inventory: run.inventory,
            check_mode: run.check_mode,
            started_at: run.started_at,
            duration_secs: run.duration_secs,
            ansible_rc: rc,
            success: rc == 0 && !any_bad && problem.is_none(),
            hosts,
            roles: summarize_roles(&self.tasks),
            tasks: self.tasks,
            failures,
            problem,
        }
    }
}

/// Facts about the run itself that the events do not carry.
#[derive(Debug, Clone)]
pub struct RunFacts {
    pub name: String,
    pub inventory: String,
    pub check_mode: bool,
    pub started_at: String,
    pub duration_secs: f64,
}

fn summarize_roles(tasks: &[TaskReport]) -> Vec<RoleSummary> {
    let mut out: Vec<RoleSummary> = Vec::new();
    for t in tasks {
        let role = t.role.clone().unwrap_or_else(|| "(playbook)".to_string());
        let idx = match out.iter().position(|r| r.role == role) {
            Some(i) => i,
            None => {
                out.push(RoleSummary {
                    role,
                    tasks: 0,
                    changed: 0,
                    failed: 0,
                    duration_secs: 0.0,
                });
                out.len() - 1
            }
        };
        let s = &mut out[idx];
        s.tasks += 1;
        s.duration_secs += t.duration_secs;
        s.changed += t
            .hosts
            .values()
            .filter(|r| r.status == Status::Changed)
            .count();
        s.failed += t
            .hosts
            .values()
            .filter(|r| matches!(r.status, Status::Failed | Status::Unreachable))
            .count();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ansible::events::{parse_line, Line};

    fn events(lines: &[&str]) -> ReportBuilder {
        let mut b = ReportBuilder::new();
        for l in lines {
            match parse_line(l) {
                Line::Event(e) => b.apply(&e),
                Line::Other(o) => panic!("test line did not parse: {o}"),
            }
        }
        b
    }

    fn facts() -> RunFacts {
        RunFacts {
            name: "deploy-itrust".into(),
            inventory: "inventory.ini".into(),
            check_mode: false,
            started_at: "2026-01-01T00:00:00Z".into(),
            duration_secs: 75.0,
        }
    }

    const START_COMMON: &str = r#"{"event":"task_start","task_id":"t1","task":"Update apt cache","role":"common","handler":false,"time":100.0}"#;
    const START_MYSQL: &str = r#"{"event":"task_start","task_id":"t2","task":"Create the database","role":"mysql","handler":false,"time":103.0}"#;

    #[test]
    fn failed_task_names_host_role_and_task_and_marks_the_host_failed() {
        let b = events(&[
            START_COMMON,
            r#"{"event":"result","task_id":"t1","task":"Update apt cache","role":"common","host":"itrust","status":"changed","duration":2.5,"time":102.5}"#,
            r#"{"event":"result","task_id":"t1","task":"Update apt cache","role":"common","host":"checkbox","status":"ok","duration":1.0,"time":101.0}"#,
            START_MYSQL,
            r#"{"event":"result","task_id":"t2","task":"Create the database","role":"mysql","host":"itrust","status":"failed","duration":0.5,"time":103.5,"msg":"Access denied"}"#,
            r#"{"event":"stats","time":104.0,"hosts":{"itrust":{"ok":1,"changed":1,"failures":1},"checkbox":{"ok":1}}}"#,
        ]);
        let r = b.finish(facts(), 2, "");
        assert!(!r.success);
        assert_eq!(r.failures.len(), 1);
        let f = &r.failures[0];
        assert_eq!(
            (f.host.as_str(), f.role.as_deref(), f.task.as_str()),
            ("itrust", Some("mysql"), "Create the database")
        );
        assert_eq!(f.message, "Access denied");
        let itrust = r.hosts.iter().find(|h| h.name == "itrust").unwrap();
        assert_eq!(itrust.verdict, HostVerdict::Failed);
        assert_eq!(r.bad_hosts().len(), 1);
        assert_eq!(r.tasks[0].duration_secs, 2.5);
        assert_eq!(r.roles[0].role, "common");
        assert_eq!(r.roles[0].changed, 1);
        assert_eq!(r.roles[1].failed, 1);
        let text = r.render_text();
        assert!(text.contains("FAILED"), "{text}");
        assert!(
            text.contains(
                "FAILED on itrust: task \"Create the database\" (role mysql): Access denied"
            ),
            "{text}"
        );
    }

    #[test]
    fn unreachable_wins_over_failed_in_the_host_verdict() {
        let b = events(&[
            START_COMMON,
            r#"{"event":"result","task_id":"t1","task":"Update apt cache","role":"common","host":"itrust","status":"unreachable","time":130.0,"msg":"ssh: connect to host 10.0.0.2 port 22: No route to host"}"#,
            r#"{"event":"stats","time":131.0,"hosts":{"itrust":{"unreachable":1,"failures":1}}}"#,
        ]);
        let r = b.finish(facts(), 4, "");
        assert_eq!(r.hosts[0].verdict, HostVerdict::Unreachable);
        assert_eq!(r.failures[0].status, Status::Unreachable);
        assert!(r.failures[0].message.contains("No route to host"));
    }

    #[test]
    fn clean_run_succeeds_and_counts_zero_changed() {
        let b = events(&[
            START_COMMON,
            r#"{"event":"result","task_id":"t1","task":"Update apt cache","role":"common","host":"itrust","status":"ok","time":100.2}"#,
            r#"{"event":"stats","time":101.0,"hosts":{"itrust":{"ok":1}}}"#,
        ]);
        let r = b.finish(facts(), 0, "");
        assert!(r.success);
        assert_eq!(r.changed(), 0);
        assert!(r.problem.is_none());
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["hosts"][0]["verdict"], "ok");
        assert_eq!(json["tasks"][0]["hosts"]["itrust"]["status"], "ok");
    }

    #[test]
    fn non_zero_exit_without_a_failed_host_is_a_problem_not_a_success() {
        let b = events(&[r#"{"event":"stats","time":1.0,"hosts":{"itrust":{"ok":3}}}"#]);
        let r = b.finish(facts(), 1, "ERROR! callback crashed");
        assert!(!r.success);
        assert!(r.problem.as_deref().unwrap().contains("callback crashed"));
    }

    #[test]
    fn ignored_failures_do_not_fail_the_host_but_keep_their_message() {
        let b = events(&[
            START_COMMON,
            r#"{"event":"result","task_id":"t1","task":"Update apt cache","role":"common","host":"itrust","status":"ignored","time":100.2,"msg":"meh"}"#,
            r#"{"event":"stats","time":101.0,"hosts":{"itrust":{"ok":1,"ignored":1}}}"#,
        ]);
        let r = b.finish(facts(), 0, "");
        assert!(r.success);
        assert!(r.failures.is_empty());
        assert_eq!(r.tasks[0].hosts["itrust"].message.as_deref(), Some("meh"));
    }

    #[test]
    fn durations_render_in_seconds_then_minutes() {
        assert_eq!(fmt_secs(0.42), "0.4s");
        assert_eq!(fmt_secs(125.0), "2m05s");
    }
}
