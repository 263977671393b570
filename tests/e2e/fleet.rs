//! e2e: a fleet of three checkbox hosts behind the front door (`lb`) on the sandbox, shared by the tests
//! here and then by `rollout.rs` (environment `<e2e env>-fleet`, see [`common::fleet`]; the numbers order
//! the tests, which run one at a time in name order). Measured, not asserted: a client thread sends steady requests through
//! the front door during a rolling redeploy and counts every failed one; X-Backend shows every host
//! serves; monitor-setup probes every host and the front door, and the dashboard groups them by app; a
//! commit that fails its health check on the second host only stops the deploy with exit 4 naming it
//! while the client still sees no failure.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use crate::common::{self, commit_version, failures, request, show, Broken, Client, Fleet};

const HOSTS: [&str; 3] = ["checkbox-1", "checkbox-2", "checkbox-3"];

fn fleet() -> &'static Fleet {
    let fleet = common::fleet();
    assert_eq!(
        fleet.hosts.iter().map(|h| h.0.as_str()).collect::<Vec<_>>(),
        HOSTS
    );
    fleet
}

/// (requests sent, the failed ones described, the host of every good answer).
fn summary(seen: &[common::Seen]) -> (usize, Vec<String>, Vec<String>) {
    let good = seen.iter().filter(|s| s.ok());
    (
        seen.len(),
        failures(seen),
        good.map(|s| s.backend().to_string()).collect(),
    )
}

#[test]
#[ignore = "needs root and the local sandbox; run by scripts/e2e.sh"]
fn fleet_1_front_door_balances_over_every_host_and_names_it_in_x_backend() {
    let f = fleet();
    let mut seen = std::collections::BTreeMap::new();
    for _ in 0..60 {
        let common::Answer {
            status, backend, ..
        } = request(f.lb, "/api/env").unwrap();
        assert_eq!(status, 200);
        *seen.entry(backend).or_insert(0) += 1;
    }
    eprintln!("fleet: 60 requests through the front door: {seen:?}");
    for h in HOSTS {
        assert!(
            seen.get(h).copied().unwrap_or(0) > 0,
            "{h} served none: {seen:?}"
        );
    }
    // Static files too, with the header on every answer (`always`).
    let common::Answer {
        status, backend, ..
    } = request(f.lb, "/no-such-page").unwrap();
    assert!(HOSTS.contains(&backend.as_str()), "{status} {backend}");
}

#[test]
#[ignore = "needs root and the local sandbox; run by scripts/e2e.sh"]
fn fleet_2_rolling_redeploy_of_a_new_commit_drops_no_request_and_ends_with_every_host_on_it() {
    let f = fleet();
    commit_version(&f.repo, "v2", Broken::Nowhere);
    let client = Client::start(f.lb);
    std::thread::sleep(Duration::from_secs(2));
    let started = Instant::now();
    let out = f.deploy("rolling.toml", "rolling.json", &[]);
    let took = started.elapsed();
    std::thread::sleep(Duration::from_secs(2));
    let (sent, failures, backends) = summary(&client.finish());
    assert!(out.status.success(), "rolling deploy: {}", show(&out));
    eprintln!(
        "fleet: rolling deploy (serial 1, 3 hosts) took {took:?}; client sent {sent}, failed {}",
        failures.len()
    );
    assert_eq!(failures, Vec::<String>::new(), "of {sent} requests");
    assert!(sent > 100, "the client kept sending: {sent}");
    for h in HOSTS {
        assert!(backends.iter().any(|b| b == h), "{h} never served");
    }
    for (name, ip) in &f.hosts {
        let common::Answer {
            status, version, ..
        } = request(*ip, "/api/env").unwrap();
        assert_eq!((status, version.as_str()), (200, "v2"), "{name}");
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "checkbox.io through the front door: http://{}/",
            f.lb
        )),
        "{stdout}"
    );

    // The same redeploy in one batch, for BENCHMARKS.md (no client: one batch drains every host). Only
    // with PIPELINE_E2E_BENCH=1: it costs minutes of the suite's budget and asserts nothing new.
    if std::env::var_os("PIPELINE_E2E_BENCH").is_none() {
        return;
    }
    commit_version(&f.repo, "v2b", Broken::Nowhere);
    let started = Instant::now();
    let out = f.deploy("first.toml", "one-batch.json", &[]);
    assert!(out.status.success(), "{}", show(&out));
    eprintln!(
        "fleet: one-batch deploy of the same fleet took {:?}",
        started.elapsed()
    );
}

#[test]
#[ignore = "needs root and the local sandbox; run by scripts/e2e.sh"]
fn fleet_4_a_commit_failing_on_the_second_host_stops_with_exit_4_and_the_client_sees_no_failure() {
    let f = fleet();
    // Every host is in rotation after the fleet's first deploy or a successful redeploy; checkbox-3's
    // commit now is what it must still serve afterwards.
    let before = request(f.hosts[2].1, "/api/env").unwrap().version;
    commit_version(&f.repo, "v3", Broken::On("checkbox-2"));
    let client = Client::start(f.lb);
    std::thread::sleep(Duration::from_secs(2));
    let out = f.deploy(
        "rolling.toml",
        "failing.json",
        &[
            "-e",
            r#"pipeline_health={"port": 80, "path": "/api/health", "retries": 3}"#,
        ],
    );
    std::thread::sleep(Duration::from_secs(2));
    let (sent, failures, backends) = summary(&client.finish());
    eprintln!(
        "fleet: failing deploy: client sent {sent}, failed {}",
        failures.len()
    );
    assert_eq!(out.status.code(), Some(4), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("rolling deploy stopped at batch 2 of 3 (checkbox-2):")
            && stderr.contains("checkbox-2 failed at task `Health check")
            && stderr.contains("not touched, still serving the previous version: checkbox-3"),
        "{}",
        show(&out)
    );
    assert_eq!(failures, Vec::<String>::new(), "of {sent} requests");
    // checkbox-2 is out of rotation; checkbox-3 still serves the previous commit.
    let after: Vec<String> = (0..30)
        .map(|_| request(f.lb, "/api/env").unwrap().backend)
        .collect();
    assert!(!after.iter().any(|b| b == "checkbox-2"), "{after:?}");
    assert!(backends.iter().any(|b| b == "checkbox-3"));
    let v3 = request(f.hosts[2].1, "/api/env").unwrap().version;
    assert_eq!(v3, before, "checkbox-3 untouched");
    let v1 = request(f.hosts[0].1, "/api/env").unwrap().version;
    assert_eq!(v1, "v3", "checkbox-1 got the new commit");
}

#[test]
#[ignore = "needs root and the local sandbox; run by scripts/e2e.sh"]
fn fleet_3_monitor_setup_probes_every_host_and_the_front_door_and_groups_them_by_app() {
    let f = fleet();
    let inv = f.inventory.display().to_string();
    let started = Instant::now();
    let out = f
        .pipeline("rolling.toml", &["monitor-setup", "-i", &inv])
        .output()
        .unwrap();
    assert!(out.status.success(), "monitor-setup: {}", show(&out));
    eprintln!("fleet: monitor-setup took {:?}", started.elapsed());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let password = crate::monitor::printed_password(&stdout)
        .unwrap_or_else(|| panic!("monitor-setup prints the login:\n{stdout}"));
    let auth = crate::shared::basic_auth("pipeline", &password);
    let inventory = pipeline::inventory::Inventory::load(&f.inventory).unwrap();
    let monitor: Ipv4Addr = inventory.group("monitor").unwrap()[0]
        .address()
        .parse()
        .unwrap();
    let nginx = std::net::SocketAddr::from((monitor, 80));

    // Prometheus probes checkbox.io on every host and through the front door, and all answer.
    let query = "/api/v1/query?query=probe_success%7Bjob%3D%22apps%22%2Capp%3D%22checkbox.io%22%7D";
    let mut probed = std::collections::BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    while Instant::now() < deadline {
        let (status, body) = crate::shared::http_get_as(nginx, query, Some(&auth)).unwrap();
        assert_eq!(status, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        probed = v["data"]["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["metric"]["host"].as_str().unwrap_or("").to_string(),
                    r["value"][1].as_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        if probed.len() == 4 && probed.values().all(|v| v == "1") {
            break;
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    let want: std::collections::BTreeMap<String, String> =
        ["checkbox-1", "checkbox-2", "checkbox-3", "lb"]
            .iter()
            .map(|h| (h.to_string(), "1".to_string()))
            .collect();
    assert_eq!(
        probed, want,
        "checkbox.io probed and up on every host and through the front door"
    );

    // The dashboard groups the hosts by app, the front door first in its app.
    let mut browser = crate::shared::browser::Browser::launch();
    browser.call("Network.enable", serde_json::json!({}));
    browser.call(
        "Network.setExtraHTTPHeaders",
        serde_json::json!({"headers": {"Authorization": auth}}),
    );
    browser.navigate(&format!("http://{monitor}/dashboard/"));
    let checkbox_js = "Array.from(document.querySelectorAll('.app-group[data-app=\"checkbox.io\"] .host')).map(c => [c.dataset.host, c.dataset.frontDoor || '', c.dataset.appState])";
    let all_up = format!(
        "(() => {{ const c = {checkbox_js}; return c.length === 4 && c.every(x => x[2] === 'up'); }})()"
    );
    let shown = browser.wait_for(&all_up, Duration::from_secs(90));
    let cards = browser.eval(checkbox_js);
    assert!(
        shown.is_some(),
        "the checkbox.io group with its 4 cards up; page shows {cards}"
    );
    assert_eq!(
        cards,
        serde_json::json!([
            ["lb", "true", "up"],
            ["checkbox-1", "", "up"],
            ["checkbox-2", "", "up"],
            ["checkbox-3", "", "up"]
        ])
    );
    let hosts = browser
        .eval("document.querySelector('.app-group[data-app=\"checkbox.io\"]').dataset.hosts");
    assert_eq!(hosts, serde_json::json!("3"));
    browser.screenshot(&crate::shared::artifacts_dir().join("dashboard-fleet.png"));
}
