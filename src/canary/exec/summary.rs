//! The report's `run` and `deploy` sections of a canary run, and writing its JSON files.

use std::path::Path;

use anyhow::Context;

use crate::ansible::DeployReport;
use crate::canary::load::LoadRun;
use crate::canary::metrics::HostSeries;
use crate::canary::run::{ArmDeploy, StageTimes};
use crate::canary::samples::RequestSplit;
use crate::canary::settings::CanarySettings;
use crate::providers::ProviderKind;
use crate::provision;

pub fn write_json(path: &Path, value: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut text = serde_json::to_string_pretty(value).context("failed to serialize")?;
    text.push('\n');
    crate::fsutil::write_atomic(path, text.as_bytes(), 0o644)
        .with_context(|| format!("failed to write {}", path.display()))
}

/// The deploy as the report shows it, one line per host and role (the whole report is `deploy.json`).
pub fn deploy_summary(deploy: &DeployReport, file: &Path) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    let secs = |s: f64| format!("{:.1} s", s);
    out.insert(
        "result".into(),
        format!(
            "{} in {}, {} changed (ansible-playbook exit status {})",
            if deploy.success {
                "succeeded"
            } else {
                "FAILED"
            },
            secs(deploy.duration_secs),
            deploy.changed(),
            deploy.ansible_rc
        )
        .into(),
    );
    for h in &deploy.hosts {
        out.insert(
            format!("host {}", h.name),
            format!(
                "ok {}, changed {}, failed {}, unreachable {}, skipped {}",
                h.stats.ok, h.stats.changed, h.stats.failures, h.stats.unreachable, h.stats.skipped
            )
            .into(),
        );
    }
    for r in &deploy.roles {
        out.insert(
            format!("role {}", r.role),
            format!(
                "{} tasks, {} changed, {} failed, {}",
                r.tasks,
                r.changed,
                r.failed,
                secs(r.duration_secs)
            )
            .into(),
        );
    }
    for f in &deploy.failures {
        out.insert(
            format!("failure on {}", f.host),
            format!("{}: {}", f.task, f.message).into(),
        );
    }
    out.insert("full report".into(), file.display().to_string().into());
    serde_json::Value::Object(out)
}

#[allow(clippy::too_many_arguments)]
pub fn run_summary(
    s: &CanarySettings,
    baseline: &ArmDeploy,
    canary: &ArmDeploy,
    proxy_url: &str,
    load_run: &LoadRun,
    split: &RequestSplit,
    hosts: &[HostSeries],
    times: &StageTimes,
    samples_file: &Path,
) -> serde_json::Value {
    let summary = load_run.summary();
    serde_json::json!({
        "baseline": format!("{} ({}) on {} {}", baseline.branch, &baseline.commit[..baseline.commit.len().min(10)], baseline.host, baseline.address),
        "canary": format!("{} ({}) on {} {}", canary.branch, &canary.commit[..canary.commit.len().min(10)], canary.host, canary.address),
        "repository": s.repo,
        "provider": provision::kind_name(s.provider),
        "environment": s.environment,
        "proxy": proxy_url,
        "split": format!("{}% canary", s.split),
        "load": format!(
            "{} {} for {}, {} connections, {}",
            s.probe.method,
            s.probe.path,
            humantime::format_duration(s.duration),
            s.concurrency,
            s.rate.map(|r| format!("{r} req/s (open model)")).unwrap_or_else(|| "closed model".into())
        ),
        "requests": format!(
            "{} total: {} baseline ({} 5xx), {} canary ({} 5xx), {} without an arm ({} without a response)",
            summary.requests,
            split.baseline.requests,
            split.baseline.errors,
            split.canary.requests,
            split.canary.errors,
            split.unattributed.requests,
            split.unattributed.no_response
        ),
        "host_samples": hosts.iter().map(|h| format!(
            "{}: {} samples, {} failed scrapes{}",
            h.host,
            h.samples.len(),
            h.failed_scrapes,
            h.last_error.as_ref().map(|e| format!(" (last: {e})")).unwrap_or_default()
        )).collect::<Vec<_>>().join("; "),
        "stages": times.line(),
        "host_metrics": match s.provider {
            ProviderKind::Local => "each arm's own cgroup on this machine, once a second: CPU time as a share of all the machine's cores, memory in use as a share of the container's limit (or of the machine's memory without one)",
            ProviderKind::Digitalocean => "node_exporter on each droplet: CPU busy % and memory used %, once a second",
        },
        "samples": format!("{} (re-judge with `pipeline analyze {}`)", samples_file.display(), samples_file.display()),
    })
}
