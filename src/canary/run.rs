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
    #[error("the split proxy at {url} does not route to both arms after {attempts} requests (saw: {seen}): {reason}")]
    Proxy {
        url: String,
        attempts: u32,
        seen: String,
        reason: String,
    },
}

async fn send(
    client: &reqwest::Client,
    url: &str,
    probe: &Probe,
) -> Result<reqwest::Response, String> {
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
        msg
    })
}

/// Sends `probe` to `url` until any HTTP status comes back (a 500 is the canary's business, judged later;
/// no answer at all is not), retrying every half second until `patience` runs out.
pub async fn wait_for_answer(
    client: &reqwest::Client,
    url: &str,
    probe: &Probe,
    patience: Duration,
) -> Result<u16, String> {
    let deadline = Instant::now() + patience;
    loop {
        match send(client, url, probe).await {
            Ok(resp) => return Ok(resp.status().as_u16()),
            Err(reason) if Instant::now() >= deadline => return Err(format!("{url}: {reason}")),
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

/// Checks that `arm` answers `probe` directly (bypassing the proxy); see [`wait_for_answer`].
pub async fn check_arm(
    client: &reqwest::Client,
    arm: &ArmDeploy,
    probe: &Probe,
    patience: Duration,
) -> Result<u16, HealthError> {
    wait_for_answer(client, &arm.url(&probe.path), probe, patience)
        .await
        .map_err(|reason| HealthError::ArmDown {
            arm: arm.label.clone(),
            host: arm.host.clone(),
            branch: arm.branch.clone(),
            reason,
        })
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
            Err(e) => reason = e,
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
mod tests {
    use super::*;

    fn arm(label: &str, host: &str, ip: [u8; 4]) -> ArmDeploy {
        ArmDeploy {
            label: label.into(),
            host: host.into(),
            address: Ipv4Addr::from(ip),
            branch: if label == "baseline" {
                "master"
            } else {
                "broken"
            }
            .into(),
            commit: "c0ffee".into(),
            release: format!("tree-{host}"),
            archive: format!("/tmp/run/tree-{host}.tar.gz"),
        }
    }

    #[test]
    fn playbook_vars_carry_both_arms_and_the_proxy_split() {
        let vars = playbook_vars(
            &arm("baseline", "blue", [10, 0, 0, 2]),
            &arm("canary", "green", [10, 0, 0, 6]),
            30,
        );
        assert_eq!(vars["pipeline_baseline"]["host"], "blue");
        assert_eq!(vars["pipeline_baseline"]["release"], "tree-blue");
        assert_eq!(vars["pipeline_baseline"]["backend"], "10.0.0.2:3000");
        assert_eq!(
            vars["pipeline_canary"]["archive"],
            "/tmp/run/tree-green.tar.gz"
        );
        assert_eq!(vars["pipeline_canary"]["branch"], "broken");
        assert_eq!(vars["pipeline_canary"]["backend"], "10.0.0.6:3000");
        assert_eq!(vars["pipeline_proxy"]["percent"], 30);
        assert_eq!(vars["pipeline_proxy"]["host"], "proxy");
    }

    #[test]
    fn node_exporter_admits_the_address_the_ssh_connection_comes_from() {
        // A Jinja expression Ansible evaluates per host: it lives in the static playbook, not in vars.json
        // (where every string is marked unsafe).
        let text = include_str!("../../playbooks/canary.yml");
        assert!(
            text.contains(
                "node_exporter_allowed_scrapers: [\"{{ ansible_env.SSH_CLIENT.split() | first }}\"]"
            ),
            "{text}"
        );
    }

    #[test]
    fn report_dirs_are_named_after_the_utc_time_of_the_run() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_889_100); // 2026-11-28 18:05:00 UTC
        assert_eq!(
            timestamped_dir("canary-report", t),
            "canary-report/20261128T180500Z"
        );
        assert_eq!(
            timestamped_dir("demo-report", SystemTime::UNIX_EPOCH),
            "demo-report/19700101T000000Z"
        );
        let leap = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(
            timestamped_dir("canary-report", leap),
            "canary-report/20000229T000000Z"
        );
    }

    #[test]
    fn stage_times_keep_order_and_round_to_tenths() {
        let mut t = StageTimes::default();
        t.record("provision", Duration::from_millis(12_345));
        t.record("load", Duration::from_millis(60_020));
        assert_eq!(t.line(), "provision 12.3 s · load 60.0 s");
        assert_eq!(t.total_seconds(), 72.3);
    }

    /// A loopback server answering every request with `status` and, if given, the backend header.
    async fn server(responses: Vec<(u16, Option<&'static str>)>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let mut i = 0;
            loop {
                let (mut sock, _) = listener.accept().await.unwrap();
                let (status, backend) = responses[i % responses.len()];
                i += 1;
                tokio::spawn(async move {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let mut buf = vec![0u8; 4096];
                    let _ = sock.read(&mut buf).await;
                    let header = backend
                        .map(|b| format!("{BACKEND_HEADER}: {b}\r\n"))
                        .unwrap_or_default();
                    let resp = format!(
                        "HTTP/1.1 {status} X\r\n{header}content-length: 2\r\nconnection: close\r\n\r\nok"
                    );
                    let _ = sock.write_all(resp.as_bytes()).await;
                });
            }
        });
        format!("http://{addr}/preview")
    }

    fn probe() -> Probe {
        Probe {
            method: reqwest::Method::POST,
            path: "/preview".into(),
            content_type: Some("application/json".into()),
            body: b"{}".to_vec(),
        }
    }

    #[tokio::test]
    async fn proxy_check_passes_once_both_arms_answered() {
        let url = server(vec![(200, Some("baseline")), (500, Some("canary"))]).await;
        check_proxy(&reqwest::Client::new(), &url, &probe(), 10)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn proxy_check_names_the_arm_it_never_saw() {
        let url = server(vec![(200, Some("baseline"))]).await;
        let err = check_proxy(&reqwest::Client::new(), &url, &probe(), 5)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, HealthError::Proxy { seen, .. } if seen == "baseline"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn an_arm_answering_500_is_up_and_one_refusing_connections_is_down() {
        let client = reqwest::Client::new();
        let url = server(vec![(500, None)]).await;
        assert_eq!(
            wait_for_answer(&client, &url, &probe(), Duration::from_secs(1)).await,
            Ok(500)
        );
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let err = wait_for_answer(
            &client,
            &format!("http://{closed}/preview"),
            &probe(),
            Duration::from_millis(600),
        )
        .await
        .unwrap_err();
        assert!(err.contains(&closed.to_string()), "{err}");
    }
}
