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
pub const NODE_EXPORTER_PORT: u16 = 9100;
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
            wait_for_answer(&client, &url, &probe(), Duration::from_secs(1))
                .await
                .map(|a| a.status),
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

    #[tokio::test]
    async fn a_baseline_answering_500_stops_the_run_naming_the_arm_status_and_body() {
        let url = server(vec![(500, None)]).await;
        let answer = wait_for_answer(
            &reqwest::Client::new(),
            &url,
            &probe(),
            Duration::from_secs(1),
        )
        .await
        .unwrap();
        assert_eq!(answer.body_start, "ok");
        let err = require_success(&arm("baseline", "blue", [10, 0, 0, 2]), answer).unwrap_err();
        let text = err.to_string();
        for needle in [
            "baseline arm",
            "blue",
            "branch master",
            "HTTP 500",
            "\"ok\"",
        ] {
            assert!(text.contains(needle), "{needle}: {text}");
        }
    }

    #[test]
    fn the_baseline_must_answer_2xx() {
        let blue = arm("baseline", "blue", [10, 0, 0, 2]);
        for (status, ok) in [
            (200, true),
            (204, true),
            (302, false),
            (404, false),
            (500, false),
        ] {
            let a = Answer {
                status,
                body_start: String::new(),
            };
            assert_eq!(require_success(&blue, a).is_ok(), ok, "{status}");
        }
    }

    #[tokio::test]
    async fn a_service_that_accepts_but_never_answers_is_reported_without_waiting_out_the_patience()
    {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let mut held = Vec::new();
            loop {
                let (sock, _) = listener.accept().await.unwrap();
                held.push(sock);
            }
        });
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(300))
            .build()
            .unwrap();
        let started = Instant::now();
        let err = wait_for_answer(
            &client,
            &format!("http://{addr}/preview"),
            &probe(),
            Duration::from_secs(30),
        )
        .await
        .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5), "{err}");
        assert!(err.contains(&addr.to_string()), "{err}");
    }

    #[test]
    fn body_start_is_cut_at_a_character_boundary() {
        assert_eq!(body_start(b"short", 120), "short");
        assert_eq!(body_start("ééé".as_bytes(), 3), "é…");
        assert_eq!(body_start(&[b'x'; 200], 120).chars().count(), 121);
    }

    #[test]
    fn the_proxy_times_out_before_the_client_and_tags_its_own_errors_with_the_arm() {
        let defaults = include_str!("../../roles/canary_proxy/defaults/main.yml");
        for key in ["connect", "send", "read"] {
            let line = defaults
                .lines()
                .find(|l| l.starts_with(&format!("canary_proxy_{key}_timeout:")))
                .unwrap_or_else(|| panic!("canary_proxy_{key}_timeout missing"));
            let value = humantime::parse_duration(line.split(':').nth(1).unwrap().trim()).unwrap();
            assert_eq!(value, PROXY_TIMEOUT, "{line}");
        }
        assert!(PROXY_TIMEOUT < CLIENT_TIMEOUT);
        let template = include_str!("../../roles/canary_proxy/templates/canary.conf.j2");
        for directive in [
            "proxy_connect_timeout {{ canary_proxy_connect_timeout }};",
            "proxy_send_timeout {{ canary_proxy_send_timeout }};",
            "proxy_read_timeout {{ canary_proxy_read_timeout }};",
            "add_header {{ canary_proxy_backend_header }} $canary_arm_label always;",
        ] {
            assert!(template.contains(directive), "{directive}");
        }
    }
}
