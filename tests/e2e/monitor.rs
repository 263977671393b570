//! e2e: `pipeline monitor-setup` on the shared sandbox hosts, after both example apps are deployed: the
//! dashboard loads in headless Chromium without console errors and shows both hosts with live numbers,
//! an app is shown down within 30 s of stopping its service, Prometheus and the blackbox exporter are
//! reachable only through nginx, the exporters only from the monitor host (where the host can keep a
//! firewall), and a second run changes nothing.

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use pipeline::process::{Cmd, Output};

use super::common::{self, Sandbox};
use crate::shared::browser::Browser;
use crate::shared::{
    all_live_js, app_state_js, artifacts_dir, assert_plausible_numbers, http_get, CARDS_JS,
};

/// Runs the pipeline binary in the sandbox's work directory with the deploy tests' state directory (one
/// known_hosts, the same generated database password: redeploying their apps changes nothing).
fn pipeline(sb: &Sandbox, args: &[&str]) -> Output {
    Cmd::new(
        format!("run pipeline {}", args.join(" ")),
        common::pipeline(),
    )
    .arg("--state-dir")
    .arg(sb.work.join(".pipeline"))
    .args(args)
    .dir(&sb.work)
    .run_unchecked()
    .expect("pipeline runs")
}

fn assert_ok(what: &str, out: &Output) {
    assert!(
        out.success(),
        "{what} failed ({}):\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        out.stdout,
        out.stderr
    );
}

/// Deploys the example apps as the deploy tests do (the iTrust stand-in WAR, the checkbox.io stand-in
/// from a git checkout), reusing their WAR and checkout when present, so that after them this is a no-op.
fn deploy_example_apps(sb: &Sandbox) {
    let (war, checkout) = common::example_apps(sb);
    let inventory = sb.inventory.display().to_string();
    let war_arg = war.display().to_string();
    let out = pipeline(
        sb,
        &["deploy", "iTrust", "-i", &inventory, "--artifact", &war_arg],
    );
    assert_ok("deploy iTrust", &out);
    let source = checkout.display().to_string();
    let out = pipeline(
        sb,
        &[
            "deploy",
            "checkbox.io",
            "-i",
            &inventory,
            "--source",
            &source,
            "-e",
            "checkbox_mongodb_install=false",
        ],
    );
    assert_ok("deploy checkbox.io", &out);
}

/// Total `changed` over every host of a JSON run report.
fn changed_in_report(path: &Path) -> u64 {
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path).expect("report written")).expect("JSON report");
    report["hosts"]
        .as_array()
        .expect("report lists hosts")
        .iter()
        .map(|h| h["stats"]["changed"].as_u64().expect("changed count"))
        .sum()
}

fn refused(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_secs(3)).is_err()
}

/// Starts a stopped unit again when dropped, so a failing test still leaves the shared hosts as it found them.
struct Restart<'a> {
    sb: &'a Sandbox,
    host: &'a str,
    unit: String,
}

impl Drop for Restart<'_> {
    fn drop(&mut self) {
        self.sb
            .ssh(self.host, &format!("systemctl start {}", self.unit));
    }
}

#[test]
#[ignore = "needs root and sandbox hosts; run by scripts/e2e.sh"]
fn monitor_setup_serves_a_live_dashboard_that_shows_a_stopped_app_down_within_30s() {
    let sb = common::prod();
    let started = Instant::now();
    deploy_example_apps(sb);
    eprintln!(
        "monitor: deploying both example apps took {:?}",
        started.elapsed()
    );
    let monitor = sb.ip("monitor");
    let itrust = sb.ip("itrust");
    let inventory = sb.inventory.display().to_string();

    let out = pipeline(sb, &["monitor-setup", "-i", &inventory]);
    assert_ok("monitor-setup", &out);
    let url = format!("http://{monitor}/dashboard/");
    assert!(
        out.stdout.contains(&format!("Dashboard: {url}")),
        "monitor-setup prints the dashboard's address:\n{}",
        out.stdout
    );
    let password = printed_password(&out.stdout)
        .unwrap_or_else(|| panic!("monitor-setup prints the login:\n{}", out.stdout));
    let auth = crate::shared::basic_auth("pipeline", &password);

    // Idempotent: the second run changes nothing on any host.
    let report = sb.work.join("monitor-setup-rerun.json");
    let report_arg = report.display().to_string();
    let out = pipeline(
        sb,
        &["monitor-setup", "-i", &inventory, "--report", &report_arg],
    );
    assert_ok("monitor-setup (second run)", &out);
    assert_eq!(
        changed_in_report(&report),
        0,
        "second monitor-setup changed something:\n{}",
        out.stdout
    );

    // Prometheus and the blackbox exporter only through nginx, and nginx passes only queries.
    for port in [9090, 9115] {
        assert!(
            refused(SocketAddr::from((monitor, port))),
            "port {port} on the monitor host must not be reachable from outside"
        );
    }
    let nginx = SocketAddr::from((monitor, 80));
    let (status, _) = http_get(nginx, "/api/v1/query?query=up").expect("query through nginx");
    assert_eq!(status, 401, "queries need the login");
    let (status, body) = crate::shared::http_get_as(nginx, "/api/v1/query?query=up", Some(&auth))
        .expect("query through nginx");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"status\":\"success\""), "{body}");
    let (status, _) =
        crate::shared::http_get_as(nginx, "/api/v1/status/config", Some(&auth)).unwrap();
    assert_eq!(
        status, 404,
        "nginx must not expose Prometheus' configuration"
    );

    // Exporters: the monitor host scrapes them; whether others are refused depends on the firewall the
    // role could apply (recorded on the host): nftables refuses this machine, `none` is only chosen on a
    // host without CAP_NET_ADMIN (the sandbox's containers, see the README).
    for host in ["itrust", "checkbox"] {
        let ip = sb.ip(host);
        let from_monitor = sb.ssh_ok(
            "monitor",
            &format!("python3 -c \"import urllib.request; print(urllib.request.urlopen('http://{ip}:9100/metrics', timeout=5).status)\""),
        );
        assert_eq!(from_monitor.trim(), "200", "monitor scrapes {host}");
        let firewall = sb.ssh_ok(host, "cat /etc/prometheus-node-exporter.firewall");
        match firewall.trim() {
            "nftables" => assert!(
                refused(SocketAddr::from((ip, 9100))),
                "{host}'s exporter must refuse this machine"
            ),
            "none" => {
                let caps = sb.ssh_ok(host, "grep '^CapEff:' /proc/self/status");
                let bits =
                    u64::from_str_radix(caps.split_whitespace().nth(1).unwrap(), 16).unwrap();
                assert_eq!(
                    bits & (1 << 12),
                    0,
                    "{host} may change its firewall (CAP_NET_ADMIN), yet none was applied"
                );
            }
            other => panic!("{host}: unexpected firewall backend `{other}`"),
        }
    }

    // The dashboard, as a user sees it.
    let mut browser = Browser::launch();
    browser.call("Network.enable", serde_json::json!({}));
    browser.call(
        "Network.setExtraHTTPHeaders",
        serde_json::json!({"headers": {"Authorization": auth}}),
    );
    browser.navigate(&format!("http://{monitor}/dashboard"));
    let live = browser.wait_for(
        &all_live_js(&["itrust", "checkbox"]),
        Duration::from_secs(90),
    );
    let cards = browser.eval(CARDS_JS);
    let shots = artifacts_dir();
    browser.screenshot(&shots.join("dashboard-e2e.png"));
    assert!(
        live.is_some(),
        "both hosts up with live numbers within 90 s; page shows {cards}"
    );
    assert_plausible_numbers(&cards);

    // Stop iTrust's service (the jar runtime's unit, or Tomcat's) and watch the page.
    let unit = if sb
        .ssh("itrust", "systemctl is-active --quiet itrust")
        .success()
    {
        "itrust"
    } else {
        "tomcat10"
    };
    let restart = Restart {
        sb,
        host: "itrust",
        unit: unit.to_string(),
    };
    sb.ssh_ok("itrust", &format!("systemctl stop {unit}"));
    let stopped = Instant::now();
    let down = browser.wait_for(
        &format!(
            "{} && {}",
            app_state_js("itrust", "down"),
            app_state_js("checkbox", "up")
        ),
        Duration::from_secs(30),
    );
    let cards = browser.eval(CARDS_JS);
    browser.screenshot(&shots.join("dashboard-e2e-itrust-down.png"));
    assert!(
        down.is_some(),
        "iTrust shown down within 30 s of stopping {unit}; after {:?} the page shows {cards}",
        stopped.elapsed()
    );
    eprintln!(
        "iTrust shown down {:.1} s after `systemctl stop {unit}`",
        stopped.elapsed().as_secs_f64()
    );
    drop(restart);
    let back = browser.wait_for(&app_state_js("itrust", "up"), Duration::from_secs(120));
    assert!(
        back.is_some(),
        "iTrust shown up again after restarting {unit} (http://{itrust}:8080/iTrust2)"
    );

    let errors = browser.console_errors();
    assert!(
        errors.is_empty(),
        "the dashboard logged errors: {errors:#?}"
    );
}

/// The dashboard password `monitor-setup` printed (`Login: user pipeline, password X (kept in …)`).
pub fn printed_password(stdout: &str) -> Option<String> {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("Login: user pipeline, password "))
        .and_then(|rest| rest.split_whitespace().next())
        .map(str::to_string)
}
