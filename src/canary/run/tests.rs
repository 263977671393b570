//! Unit tests of the canary's run helpers (inventory, proxy and playbook variables, report directories).

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
    let text = include_str!("../../../playbooks/canary.yml");
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
async fn a_service_that_accepts_but_never_answers_is_reported_without_waiting_out_the_patience() {
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
    let defaults = include_str!("../../../roles/canary_proxy/defaults/main.yml");
    for key in ["connect", "send", "read"] {
        let line = defaults
            .lines()
            .find(|l| l.starts_with(&format!("canary_proxy_{key}_timeout:")))
            .unwrap_or_else(|| panic!("canary_proxy_{key}_timeout missing"));
        let value = humantime::parse_duration(line.split(':').nth(1).unwrap().trim()).unwrap();
        assert_eq!(value, PROXY_TIMEOUT, "{line}");
    }
    assert!(PROXY_TIMEOUT < CLIENT_TIMEOUT);
    let template = include_str!("../../../roles/canary_proxy/templates/canary.conf.j2");
    for directive in [
        "proxy_connect_timeout {{ canary_proxy_connect_timeout }};",
        "proxy_send_timeout {{ canary_proxy_send_timeout }};",
        "proxy_read_timeout {{ canary_proxy_read_timeout }};",
        "add_header {{ canary_proxy_backend_header }} $canary_arm_label always;",
    ] {
        assert!(template.contains(directive), "{directive}");
    }
}
