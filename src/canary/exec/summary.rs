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

/// The deploy as the report shows it (the whole report is `deploy.json`).
pub fn deploy_summary(deploy: &DeployReport, file: &Path) -> crate::ansible::DeploySummary {
    crate::ansible::DeploySummary::of(deploy, file)
}

#[allow(clippy::too_many_arguments)]
pub fn run_summary(
    plan: &CanarySettings,
    baseline: &ArmDeploy,
    canary: &ArmDeploy,
    proxy_url: &str,
    load_run: &LoadRun,
    split: &RequestSplit,
    hosts: &[HostSeries],
    times: &StageTimes,
    samples_file: &Path,
) -> crate::canary::report::RunSummary {
    use crate::canary::report::summary as s;
    let arm = |a: &ArmDeploy| s::ArmSummary {
        branch: a.branch.clone(),
        commit: a.commit.clone(),
        host: a.host.clone(),
        address: a.address.to_string(),
    };
    crate::canary::report::RunSummary {
        baseline: arm(baseline),
        canary: arm(canary),
        repository: plan.repo.clone(),
        provider: provision::kind_name(plan.provider).to_string(),
        environment: plan.environment.clone(),
        proxy: proxy_url.to_string(),
        split_percent: plan.split,
        load: s::LoadSummary {
            method: plan.probe.method.to_string(),
            path: plan.probe.path.clone(),
            duration_secs: plan.duration.as_secs_f64(),
            connections: plan.concurrency,
            rate: plan.rate,
        },
        requests: s::RequestCounts {
            total: load_run.summary().requests,
            baseline: split.baseline.requests,
            baseline_5xx: split.baseline.errors,
            canary: split.canary.requests,
            canary_5xx: split.canary.errors,
            unattributed: split.unattributed.requests,
            no_response: split.unattributed.no_response,
        },
        host_samples: hosts
            .iter()
            .map(|h| s::HostSamples {
                host: h.host.clone(),
                samples: h.samples.len(),
                failed_scrapes: h.failed_scrapes,
                last_error: h.last_error.clone(),
            })
            .collect(),
        stages: times
            .stages
            .iter()
            .map(|st| s::StageSummary {
                name: st.name.clone(),
                seconds: st.seconds,
            })
            .collect(),
        host_metrics: match plan.provider {
            ProviderKind::Local => "each arm's own cgroup on this machine, once a second: CPU time as a share of all the machine's cores, memory in use (page cache included) as a share of the container's limit, or of the machine's memory without one",
            ProviderKind::Digitalocean => "node_exporter on each droplet: CPU busy % and memory used %, once a second",
        }
        .to_string(),
        samples: samples_file.display().to_string(),
    }
}
