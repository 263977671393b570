//! The pieces of a canary run around the engine: the hosts it needs, the deploy playbook's context, the
//! report directory's name, stage timings, and the health check that tells "an arm is down before the run"
//! (a clear error) from "an arm fails during the run" (data for the judge).

use std::net::Ipv4Addr;
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

/// The canary's hosts: blue runs the baseline, green the canary, proxy splits traffic between them.
pub const BASELINE_HOST: &str = "blue";
pub const CANARY_HOST: &str = "green";
pub const PROXY_HOST: &str = "proxy";

/// Arm names: the values of the backend header, and the sides of the judgement.
pub const BASELINE_LABEL: &str = "baseline";
pub const CANARY_LABEL: &str = "canary";

/// The header the proxy tags each response with.
pub const BACKEND_HEADER: &str = "X-Canary-Backend";

/// Port the preview service listens on, and node_exporter's.
pub const SERVICE_PORT: u16 = 3000;
pub use crate::apps::NODE_EXPORTER_PORT;
pub const PROXY_PORT: u16 = 80;

/// Per-request timeout of the health checks and the load. The split proxy's timeouts towards an arm
/// (`canary_proxy_*_timeout` in roles/canary_proxy, [`PROXY_TIMEOUT`]) are shorter, so a hung arm is
/// answered by the proxy (504, tagged with the arm) before the client gives up: every request is attributed.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);
/// The proxy's connect/send/read timeouts towards an arm (the role's defaults).
pub const PROXY_TIMEOUT: Duration = Duration::from_secs(5);

/// The static entry playbook of a run (`playbooks/canary.yml`).
pub const PLAYBOOK: &str = "canary.yml";

/// One arm as deployed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArmDeploy {
    /// `baseline` or `canary`.
    pub label: String,
    /// `blue` or `green`.
    pub host: String,
    pub address: Ipv4Addr,
    pub branch: String,
    pub commit: String,
    /// The git tree id, the release's name on the host.
    pub release: String,
    /// The tree archive on this machine.
    pub archive: String,
}

impl ArmDeploy {
    /// The service's URL for `path` on this arm, bypassing the proxy.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}:{SERVICE_PORT}{path}", self.address)
    }

    pub fn node_exporter_url(&self) -> String {
        format!("http://{}:{NODE_EXPORTER_PORT}/metrics", self.address)
    }
}

/// The variables [`PLAYBOOK`] reads (`pipeline_baseline`, `pipeline_canary`, `pipeline_proxy`,
/// `pipeline_service_port`). They go to Ansible only through vars.json, every string marked unsafe: a
/// branch name is text, never a template.
pub fn playbook_vars(
    baseline: &ArmDeploy,
    canary: &ArmDeploy,
    canary_percent: u8,
) -> serde_json::Map<String, serde_json::Value> {
    #[derive(Serialize)]
    struct Arm<'a> {
        label: &'a str,
        host: &'a str,
        branch: &'a str,
        archive: &'a str,
        release: &'a str,
        backend: String,
    }
    fn arm(a: &ArmDeploy) -> Arm<'_> {
        Arm {
            label: &a.label,
            host: &a.host,
            branch: &a.branch,
            archive: &a.archive,
            release: &a.release,
            backend: format!("{}:{SERVICE_PORT}", a.address),
        }
    }
    let json = |v| serde_json::to_value(v).expect("arms serialize");
    let mut vars = serde_json::Map::new();
    vars.insert("pipeline_service_port".into(), SERVICE_PORT.into());
    vars.insert("pipeline_baseline".into(), json(arm(baseline)));
    vars.insert("pipeline_canary".into(), json(arm(canary)));
    vars.insert(
        "pipeline_proxy".into(),
        serde_json::json!({
            "host": PROXY_HOST,
            "percent": canary_percent,
            "port": PROXY_PORT,
            "header": BACKEND_HEADER,
        }),
    );
    vars
}

/// `<prefix>/<UTC time>`, e.g. `canary-report/20261128T181500Z`: sorts by time, safe in any shell.
pub fn timestamped_dir(prefix: &str, now: SystemTime) -> String {
    let secs = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{prefix}/{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian calendar (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// How long each stage of a run took, in order.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StageTimes {
    pub stages: Vec<Stage>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Stage {
    pub name: String,
    pub seconds: f64,
}

impl StageTimes {
    /// Runs `f` as stage `name` and records its duration (also when it fails).
    pub async fn time<T>(&mut self, name: &str, f: impl std::future::Future<Output = T>) -> T {
        let start = Instant::now();
        let out = f.await;
        self.record(name, start.elapsed());
        out
    }

    pub fn record(&mut self, name: &str, took: Duration) {
        self.stages.push(Stage {
            name: name.to_string(),
            seconds: (took.as_secs_f64() * 10.0).round() / 10.0,
        });
    }

    pub fn total_seconds(&self) -> f64 {
        (self.stages.iter().map(|s| s.seconds).sum::<f64>() * 10.0).round() / 10.0
    }

    /// `provision 12.3 s · deploy 40.1 s · …`
    pub fn line(&self) -> String {
        self.stages
            .iter()
            .map(|s| format!("{} {:.1} s", s.name, s.seconds))
            .collect::<Vec<_>>()
            .join(" · ")
    }
}

/// The request the load sends (and the health check too).
#[derive(Debug, Clone)]
pub struct Probe {
    pub method: reqwest::Method,
    pub path: String,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum HealthError {
    #[error("the {arm} arm ({host}, branch {branch}) is down before the load started: {reason}\n(check the service on {host} with `pm2 status` / `pm2 logs`; `--keep` keeps the hosts for that)")]
    ArmDown {
        arm: String,
        host: String,
        branch: String,
        reason: String,
    },
    #[error("the {arm} arm ({host}, branch {branch}) answered the load's request with HTTP {status} before the load started, so there is nothing to compare the canary with (the baseline must answer 2xx); its answer began: {body_start:?}\n(check the request body (--body-file, --content-type) against the service, or the service on {host} with `pm2 logs`; `--keep` keeps the hosts)")]
    BaselineUnhealthy {
        arm: String,
        host: String,
        branch: String,
        status: u16,
        body_start: String,
    },
    #[error("the split proxy at {url} does not route to both arms after {attempts} requests (saw: {seen}): {reason}")]
    Proxy {
        url: String,
        attempts: u32,
        seen: String,
        reason: String,
    },
}

/// Sends `probe` to `url`; on failure, whether it was the connection that failed, and why.
async fn send(
    client: &reqwest::Client,
    url: &str,
    probe: &Probe,
) -> Result<reqwest::Response, (bool, String)> {
    let mut req = client
        .request(probe.method.clone(), url)
        .body(probe.body.clone());
    if let Some(ct) = &probe.content_type {
        req = req.header(reqwest::header::CONTENT_TYPE, ct);
    }
    req.send().await.map_err(|e| {
        let mut msg = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            msg = format!("{msg}: {s}");
            src = s.source();
        }
        (e.is_connect(), msg)
    })
}

/// How many bytes of an answer's body a health message quotes.
pub const BODY_START_BYTES: usize = 120;

/// An answer to the probe: its status and the first [`BODY_START_BYTES`] of its body.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub status: u16,
    pub body_start: String,
}

impl Answer {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// The first `max` bytes of `body` as text (cut at a character boundary, `…` when cut).
pub fn body_start(body: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(max)]).into_owned();
    let text = text.trim_end_matches('\u{fffd}').to_string();
    if body.len() > max {
        format!("{text}…")
    } else {
        text
    }
}

/// Sends `probe` to `url` until an HTTP answer comes back. Only a refused or failed connection (the
/// service is not listening yet) is retried, every half second until `patience` runs out; a service that
/// accepts the request and never answers (the client's timeout) is reported at once.
pub async fn wait_for_answer(
    client: &reqwest::Client,
    url: &str,
    probe: &Probe,
    patience: Duration,
) -> Result<Answer, String> {
    let deadline = Instant::now() + patience;
    loop {
        match send(client, url, probe).await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let body = resp.bytes().await.unwrap_or_default();
                return Ok(Answer {
                    status,
                    body_start: body_start(&body, BODY_START_BYTES),
                });
            }
            Err((connect, reason)) if !connect || Instant::now() >= deadline => {
                return Err(format!("{url}: {reason}"))
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

/// Checks that `arm` answers `probe` directly (bypassing the proxy); see [`wait_for_answer`]. Any status
/// will do (the canary's 500 is data for the judge); use [`check_baseline`] for the baseline.
pub async fn check_arm(
    client: &reqwest::Client,
    arm: &ArmDeploy,
    probe: &Probe,
    patience: Duration,
) -> Result<Answer, HealthError> {
    wait_for_answer(client, &arm.url(&probe.path), probe, patience)
        .await
        .map_err(|reason| HealthError::ArmDown {
            arm: arm.label.clone(),
            host: arm.host.clone(),
            branch: arm.branch.clone(),
            reason,
        })
}

/// Checks that the baseline answers `probe` directly with a 2xx: a baseline that fails the load's own
/// request is no reference to judge a canary against.
pub async fn check_baseline(
    client: &reqwest::Client,
    arm: &ArmDeploy,
    probe: &Probe,
    patience: Duration,
) -> Result<Answer, HealthError> {
    let answer = check_arm(client, arm, probe, patience).await?;
    require_success(arm, answer)
}

/// The baseline's health rule: its answer must be a 2xx.
pub fn require_success(arm: &ArmDeploy, answer: Answer) -> Result<Answer, HealthError> {
    if answer.is_success() {
        Ok(answer)
    } else {
        Err(HealthError::BaselineUnhealthy {
            arm: arm.label.clone(),
            host: arm.host.clone(),
            branch: arm.branch.clone(),
            status: answer.status,
            body_start: answer.body_start,
        })
    }
}

/// Sends `probe` through the proxy until responses from both arms have been seen (tagged with
/// [`BACKEND_HEADER`]), at most `attempts` times.
pub async fn check_proxy(
    client: &reqwest::Client,
    url: &str,
    probe: &Probe,
    attempts: u32,
) -> Result<(), HealthError> {
    let mut seen: Vec<String> = Vec::new();
    let mut reason = String::from("no response carried the header");
    for _ in 0..attempts {
        match send(client, url, probe).await {
            Ok(resp) => {
                match resp
                    .headers()
                    .get(BACKEND_HEADER)
                    .and_then(|v| v.to_str().ok())
                {
                    Some(arm) => {
                        if !seen.iter().any(|s| s == arm) {
                            seen.push(arm.to_string());
                        }
                    }
                    None => reason = format!("HTTP {} without {BACKEND_HEADER}", resp.status()),
                }
                if [BASELINE_LABEL, CANARY_LABEL]
                    .iter()
                    .all(|l| seen.iter().any(|s| s == l))
                {
                    return Ok(());
                }
            }
            Err((_, e)) => reason = e,
        }
    }
    Err(HealthError::Proxy {
        url: url.to_string(),
        attempts,
        seen: if seen.is_empty() {
            "no arm".into()
        } else {
            seen.join(", ")
        },
        reason,
    })
}

#[cfg(test)]
mod tests;
