//! What a canary run will do, computed from its settings alone: the stages in order, the hosts and their
//! roles, the request, the load, the judge and its looks. `pipeline canary --dry-run` prints it, and the
//! executor ([`super::exec`]) runs exactly these stages.

use serde::Serialize;

use crate::canary::judge::JudgeConfig;
use crate::canary::run;
use crate::canary::settings::CanarySettings;
use crate::providers::HostSpec;
use crate::provision;

/// One stage of a run, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Provision,
    Fetch,
    Deploy,
    Health,
    Load,
    Judge,
}

impl Stage {
    pub const ALL: [Stage; 6] = [
        Stage::Provision,
        Stage::Fetch,
        Stage::Deploy,
        Stage::Health,
        Stage::Load,
        Stage::Judge,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Stage::Provision => "provision",
            Stage::Fetch => "fetch",
            Stage::Deploy => "deploy",
            Stage::Health => "health",
            Stage::Load => "load",
            Stage::Judge => "judge",
        }
    }
}

/// A stage and what it does in this run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedStage {
    pub stage: Stage,
    pub what: String,
}

/// A host of the run and its part in it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedHost {
    #[serde(flatten)]
    pub spec: HostSpec,
    /// `baseline`, `canary` or `proxy`.
    pub part: String,
    /// The branch it runs (arms only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// Ansible roles applied to it.
    pub roles: Vec<String>,
}

/// The request the health checks and the load send.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedRequest {
    pub method: String,
    pub path: String,
    pub content_type: Option<String>,
    pub body_bytes: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedLoad {
    pub warmup_s: f64,
    pub duration_s: f64,
    /// Requests per second (`None`: closed model).
    pub rate: Option<f64>,
    pub concurrency: usize,
    /// Share of requests to the canary, in percent.
    pub split_percent: u8,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedLooks {
    /// Whether the judge looks while the load runs (off when Prometheus metrics are judged: they are
    /// queried once, after the window).
    pub sequential: bool,
    pub every_s: f64,
    /// Looks over the whole window (the last one at its end).
    pub planned: usize,
    /// Whether a final FAIL at a look stops the load.
    pub early_stop: bool,
}

/// A canary run, before anything is touched.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    pub baseline: String,
    pub canary: String,
    pub repository: String,
    pub provider: String,
    pub environment: String,
    pub stages: Vec<PlannedStage>,
    pub hosts: Vec<PlannedHost>,
    /// `built-in` or the roles directory.
    pub roles: String,
    pub request: PlannedRequest,
    pub load: PlannedLoad,
    pub judge: JudgeConfig,
    pub looks: PlannedLooks,
    pub report_dir: String,
    /// Whether the hosts are destroyed at the end (also after an error or a signal).
    pub teardown: bool,
}

/// Looks at `every_s`, `2·every_s`, … before the end of the window, and one at its end.
pub fn planned_looks(window_s: f64, every_s: f64) -> usize {
    let mut k = 1usize;
    while (k as f64) * every_s < window_s - 1e-6 && k < 10_000 {
        k += 1;
    }
    k
}

/// The plan of a run with these settings (pure: reads no file, touches no host).
pub fn plan(s: &CanarySettings) -> Plan {
    let rate = s
        .rate
        .map(|r| format!("{r} req/s"))
        .unwrap_or_else(|| "as fast as possible".into());
    let window = humantime::format_duration(s.duration);
    let sequential = s.prometheus.is_none();
    let every_s = s.look_every.as_secs_f64();
    let looks = planned_looks(s.duration.as_secs_f64(), every_s);
    let stage = |stage: Stage| {
        PlannedStage {
        stage,
        what: match stage {
            Stage::Provision => format!(
                "provision blue, green and proxy ({}, environment {})",
                provision::kind_name(s.provider),
                s.environment
            ),
            Stage::Fetch => format!(
                "fetch {} and export {} and {}",
                s.repo, s.baseline, s.canary
            ),
            Stage::Deploy => format!(
                "deploy {} on blue, {} on green, nginx split {}% to green on proxy",
                s.baseline, s.canary, s.split
            ),
            Stage::Health => "check both arms answer, directly and through the proxy".into(),
            Stage::Load => format!(
                "{}load for {window} through the proxy ({rate}, {} connections), sampling blue and green{}",
                if s.warmup.is_zero() {
                    String::new()
                } else {
                    format!("warm up {}, then ", humantime::format_duration(s.warmup))
                },
                s.concurrency,
                if !sequential {
                    String::new()
                } else if s.early_stop {
                    format!(", a look every {}, stopping at a final FAIL", humantime::format_duration(s.look_every))
                } else {
                    format!(", a look every {}, whole window", humantime::format_duration(s.look_every))
                }
            ),
            Stage::Judge => format!("judge and write the report to {}", s.report_dir.display()),
        },
    }
    };
    let host = |spec: &HostSpec| {
        let (part, branch, roles): (&str, Option<&str>, &[&str]) = match spec.name.as_str() {
            run::BASELINE_HOST => (
                run::BASELINE_LABEL,
                Some(&s.baseline),
                &["preview_service", "node_exporter"],
            ),
            run::CANARY_HOST => (
                run::CANARY_LABEL,
                Some(&s.canary),
                &["preview_service", "node_exporter"],
            ),
            _ => ("proxy", None, &["canary_proxy"]),
        };
        PlannedHost {
            spec: spec.clone(),
            part: part.into(),
            branch: branch.map(str::to_string),
            roles: roles.iter().map(std::string::ToString::to_string).collect(),
        }
    };
    Plan {
        baseline: s.baseline.clone(),
        canary: s.canary.clone(),
        repository: s.repo.clone(),
        provider: provision::kind_name(s.provider).into(),
        environment: s.environment.clone(),
        stages: Stage::ALL.into_iter().map(stage).collect(),
        hosts: s.specs.iter().map(host).collect(),
        roles: s
            .roles
            .as_ref()
            .map_or_else(|| "built-in".into(), |d| d.display().to_string()),
        request: PlannedRequest {
            method: s.probe.method.to_string(),
            path: s.probe.path.clone(),
            content_type: s.probe.content_type.clone(),
            body_bytes: s.probe.body.len(),
        },
        load: PlannedLoad {
            warmup_s: s.warmup.as_secs_f64(),
            duration_s: s.duration.as_secs_f64(),
            rate: s.rate,
            concurrency: s.concurrency,
            split_percent: s.split,
        },
        judge: s.judge.clone(),
        looks: PlannedLooks {
            sequential,
            every_s,
            planned: if sequential { looks } else { 1 },
            early_stop: sequential && s.early_stop,
        },
        report_dir: s.report_dir.display().to_string(),
        teardown: !s.keep,
    }
}

impl Plan {
    /// The plan as `--dry-run` prints it.
    pub fn render(&self) -> String {
        let mut out = format!(
            "canary plan: {} (baseline) against {} (canary) from {}\nprovider {}, environment {}, roles {}\n",
            self.baseline, self.canary, self.repository, self.provider, self.environment, self.roles
        );
        let n = self.stages.len();
        for (k, st) in self.stages.iter().enumerate() {
            out.push_str(&format!(
                "  [{}/{n}] {:<9} {}\n",
                k + 1,
                st.stage.name(),
                st.what
            ));
        }
        out.push_str(if self.teardown {
            "  then      destroy blue, green and proxy (also after an error or a signal)\n"
        } else {
            "  then      keep blue, green and proxy (--keep)\n"
        });
        out.push_str("hosts:\n");
        for h in &self.hosts {
            out.push_str(&format!(
                "  {:<6} {:<8} {} {} {}{}  roles: {}\n",
                h.spec.name,
                h.part,
                h.spec.size,
                h.spec.image,
                h.spec.region,
                h.branch
                    .as_ref()
                    .map(|b| format!("  branch {b}"))
                    .unwrap_or_default(),
                h.roles.join(", ")
            ));
        }
        out.push_str(&format!(
            "request: {} {} ({} bytes, {})\n",
            self.request.method,
            self.request.path,
            self.request.body_bytes,
            self.request
                .content_type
                .as_deref()
                .unwrap_or("no content type")
        ));
        out.push_str(&format!(
            "judge: confidence {}, min_samples {}; looks: {}\n",
            self.judge.confidence,
            self.judge.min_samples,
            if self.looks.sequential {
                format!(
                    "{} every {} s, {}",
                    self.looks.planned,
                    self.looks.every_s,
                    if self.looks.early_stop {
                        "early stop on a final FAIL"
                    } else {
                        "no early stop"
                    }
                )
            } else {
                "one, after the window (Prometheus metrics are queried once)".into()
            }
        ));
        out
    }
}
