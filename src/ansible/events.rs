//! The events `pipeline`'s callback plugin (`pipeline_events.py`) writes, one JSON object per line, and
//! their parsing. Pure: no I/O.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// How one task ended on one host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Changed,
    Skipped,
    /// Failed, but the task says `ignore_errors`.
    Ignored,
    Failed,
    Unreachable,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Changed => "changed",
            Status::Skipped => "skipped",
            Status::Ignored => "ignored",
            Status::Failed => "failed",
            Status::Unreachable => "unreachable",
        }
    }
}

/// Which task an event is about.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TaskRef {
    pub task_id: String,
    pub task: String,
    pub role: Option<String>,
}

/// One failing loop item.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct FailedItem {
    pub item: Option<String>,
    pub msg: Option<String>,
}

/// A task's result on one host.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct HostResult {
    #[serde(flatten)]
    pub task: TaskRef,
    pub host: String,
    pub status: Status,
    /// Seconds from the task starting on this host to its result (absent if the start was not seen).
    pub duration: Option<f64>,
    /// When the result arrived (seconds since the epoch).
    #[serde(default)]
    pub time: f64,
    pub msg: Option<String>,
    /// Ansible's note that a `no_log` task's result is hidden.
    pub censored: Option<String>,
    pub stderr: Option<String>,
    pub stdout: Option<String>,
    pub module_stderr: Option<String>,
    pub module_stdout: Option<String>,
    pub exception: Option<String>,
    pub rc: Option<i64>,
    #[serde(default)]
    pub failed_items: Vec<FailedItem>,
}

impl HostResult {
    /// A one-paragraph explanation of a failure: the message, then rc and the end of stderr, or the
    /// failing loop items.
    pub fn message(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        if let Some(m) = &self.msg {
            parts.push(m.clone());
        }
        if let Some(c) = &self.censored {
            parts.push(format!(
                "{c} (run the emitted command.sh with -v to see it)"
            ));
        }
        for item in &self.failed_items {
            parts.push(format!(
                "item {}: {}",
                item.item.as_deref().unwrap_or("?"),
                item.msg.as_deref().unwrap_or("failed")
            ));
        }
        if let Some(rc) = self.rc {
            if rc != 0 {
                parts.push(format!("rc={rc}"));
            }
        }
        for text in [&self.stderr, &self.module_stderr, &self.module_stdout]
            .into_iter()
            .flatten()
        {
            if !parts.iter().any(|p| p.contains(text.as_str())) {
                parts.push(text.clone());
            }
        }
        if parts.is_empty() {
            if let Some(out) = &self.stdout {
                parts.push(out.clone());
            }
        }
        if parts.is_empty() {
            format!("{} (no message)", self.status.as_str())
        } else {
            parts.join("; ")
        }
    }
}

/// Ansible's end-of-run counters for one host (`stats.summarize(host)`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostStats {
    #[serde(default)]
    pub ok: u32,
    #[serde(default)]
    pub changed: u32,
    #[serde(default)]
    pub failures: u32,
    #[serde(default)]
    pub unreachable: u32,
    #[serde(default)]
    pub skipped: u32,
    #[serde(default)]
    pub rescued: u32,
    #[serde(default)]
    pub ignored: u32,
}

/// One line of the callback's output.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    PlaybookStart {
        playbook: String,
    },
    PlayStart {
        play: String,
    },
    TaskStart {
        #[serde(flatten)]
        task: TaskRef,
        #[serde(default)]
        handler: bool,
        time: f64,
    },
    Result(Box<HostResult>),
    Retry {
        #[serde(flatten)]
        task: TaskRef,
        host: String,
        attempt: Option<u32>,
        retries: Option<u32>,
    },
    NoHostsMatched,
    Stats {
        hosts: BTreeMap<String, HostStats>,
    },
}

/// What a line of `ansible-playbook`'s stdout is.
#[derive(Debug, Clone, PartialEq)]
pub enum Line {
    Event(Event),
    /// Anything else Ansible printed on stdout (kept for error messages, never interpreted).
    Other(String),
}

/// Parses one stdout line. Lines that are not the callback's JSON are returned as [`Line::Other`].
pub fn parse_line(line: &str) -> Line {
    let trimmed = line.trim();
    if trimmed.starts_with('{') {
        if let Ok(event) = serde_json::from_str::<Event>(trimmed) {
            return Line::Event(event);
        }
    }
    Line::Other(line.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_result_line_parses_with_task_role_host_and_message_parts() {
        let line = r#"{"task_id":"u1","task":"Install MariaDB","role":"mysql","host":"itrust","status":"failed","changed":false,"duration":1.5,"msg":"No package matching 'x'","rc":100,"stderr":"E: Unable","event":"result","time":1.0}"#;
        let Line::Event(Event::Result(r)) = parse_line(line) else {
            panic!("not a result: {line}")
        };
        assert_eq!(r.host, "itrust");
        assert_eq!(r.status, Status::Failed);
        assert_eq!(r.task.role.as_deref(), Some("mysql"));
        assert_eq!(r.duration, Some(1.5));
        assert_eq!(r.message(), "No package matching 'x'; rc=100; E: Unable");
    }

    #[test]
    fn stats_line_parses_per_host_counters() {
        let line = r#"{"event":"stats","time":2.0,"hosts":{"itrust":{"ok":10,"changed":0,"unreachable":0,"failures":0,"skipped":2,"rescued":0,"ignored":0}}}"#;
        let Line::Event(Event::Stats { hosts }) = parse_line(line) else {
            panic!("not stats")
        };
        assert_eq!(hosts["itrust"].ok, 10);
        assert_eq!(hosts["itrust"].skipped, 2);
    }

    #[test]
    fn non_json_and_unknown_json_lines_are_kept_as_other_output() {
        assert_eq!(
            parse_line("playbook: site.yml"),
            Line::Other("playbook: site.yml".into())
        );
        assert!(matches!(
            parse_line(r#"{"event":"something_new"}"#),
            Line::Other(_)
        ));
    }

    #[test]
    fn failure_message_lists_failing_loop_items_and_falls_back_to_stdout() {
        let mut r: HostResult = serde_json::from_str(
            r#"{"task_id":"u","task":"t","role":null,"host":"h","status":"failed","failed_items":[{"item":"a","msg":"boom"}]}"#,
        )
        .unwrap();
        assert_eq!(r.message(), "item a: boom");
        r.failed_items.clear();
        r.stdout = Some("printed".into());
        assert_eq!(r.message(), "printed");
    }
}
