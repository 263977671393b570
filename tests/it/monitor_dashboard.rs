//! The monitoring stack's pieces on loopback, without sandbox hosts: the roles' own templates (rendered by
//! ansible-playbook) configure a real Prometheus, node_exporter, blackbox exporter and nginx running as
//! child processes on free loopback ports; two tiny HTTP servers stand in for the apps. Headless Chromium
//! then loads the dashboard through nginx, exactly as a user would.
//!
//! The page sits behind the role's basic auth (401 without the login), shows firing alerts from the role's
//! rules (evaluated by this Prometheus, routed to a real Alertmanager) at the top, and marks deploy events
//! pushed through nginx into a real Pushgateway, and a running rollout's canary weight and verdict so far on
//! its app's group (cleared when it ends, its end marked as an event). Rule `for:` and evaluation intervals are shortened through
//! role variables; the roles' defaults stay user-sized.
//!
//! Needs the Debian packages prometheus, prometheus-node-exporter, prometheus-blackbox-exporter,
//! prometheus-alertmanager, prometheus-pushgateway, nginx and chromium, and ansible-playbook (all installed
//! by scripts/setup.sh).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::shared::browser::Browser;
use crate::shared::{
    all_live_js, app_state_js, artifacts_dir, assert_plausible_numbers, basic_auth, CARDS_JS,
};
use crate::support::daemons::Daemons;
use pipeline::monitoring::access::{htpasswd_hash, DASHBOARD_USER};
use pipeline::monitoring::events::{self, Event};
use serde_json::json;

const ROLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/roles");

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("find a free loopback port")
        .port()
}

fn require(program: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "`{program}` is not installed; install it with scripts/setup.sh (apt-get install {package})"
    );
}

/// The dashboard login the test sets up (the tool generates a random one; any password works here).
const PASSWORD: &str = "test-Login-3xample";

fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    crate::shared::http_get(SocketAddr::from(([127, 0, 0, 1], port)), path)
}

/// GET with an Authorization header: (status, body).
fn http_get_as(port: u16, path: &str, authorization: &str) -> std::io::Result<(u16, String)> {
    crate::shared::http_get_as(
        SocketAddr::from(([127, 0, 0, 1], port)),
        path,
        Some(authorization),
    )
}

fn wait_until(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let started = Instant::now();
    while !ready() {
        assert!(started.elapsed() < timeout, "{what} within {timeout:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A stand-in app: answers 200 to every request until stopped, then closes connections unanswered.
struct FakeApp {
    port: u16,
    stopped: Arc<AtomicBool>,
}

impl FakeApp {
    fn start() -> FakeApp {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a fake app");
        let port = listener.local_addr().unwrap().port();
        let stopped = Arc::new(AtomicBool::new(false));
        let flag = stopped.clone();
        std::thread::spawn(move || {
            for mut conn in listener.incoming().flatten() {
                if flag.load(Ordering::SeqCst) {
                    continue; // dropped: the probe sees the connection closed without a response
                }
                let mut buf = [0u8; 2048];
                let _ = conn.read(&mut buf);
                let _ = conn.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n",
                );
            }
        });
        FakeApp { port, stopped }
    }

    fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
    }
}

/// Prometheus on `prometheus_port` and nginx in front of it, both from the configuration rendered
/// into `dir` (`prometheus.yml`, `nginx.conf`).
fn spawn_prometheus_and_nginx(daemons: &mut Daemons, dir: &Path, prometheus_port: u16) {
    let d = dir.display();
    daemons.spawn(
        "prometheus",
        dir,
        "prometheus",
        &[
            format!("--config.file={d}/prometheus.yml"),
            format!("--storage.tsdb.path={d}/data"),
            format!("--web.listen-address=127.0.0.1:{prometheus_port}"),
        ],
    );
    daemons.spawn(
        "nginx",
        dir,
        "nginx",
        &[
            "-p".into(),
            format!("{d}"),
            "-e".into(),
            format!("{d}/nginx-error.log"),
            "-c".into(),
            format!("{d}/nginx.conf"),
        ],
    );
}

struct Ports {
    prometheus: u16,
    node: u16,
    blackbox: u16,
    nginx: u16,
    alertmanager: u16,
    pushgateway: u16,
}

/// Renders the roles' templates (prometheus.yml, blackbox.yml, the nginx site, config.json) into `dir`
/// with ansible-playbook, from each role's defaults plus loopback ports. `apps` are (host, app, port); a
/// host named `lb` is a fleet's front door, probed but not scraped, as monitor-setup plans it.
fn render_role_templates(dir: &Path, ports: &Ports, apps: &[(&str, &str, u16)]) {
    let www = dir.join("www");
    std::fs::create_dir_all(&www).unwrap();
    let probes: Vec<_> = apps
        .iter()
        .map(|(host, app, port)| json!({"host": host, "app": app, "url": format!("http://127.0.0.1:{port}/")}))
        .collect();
    let cards: Vec<_> = apps
        .iter()
        .map(|(host, app, port)| {
            let group = if *host == "lb" { "lb" } else { host.trim_end_matches(|c: char| c.is_ascii_digit() || c == '-') };
            json!({"host": host, "app": app, "url": format!("http://127.0.0.1:{port}/"), "group": group})
        })
        .collect();
    let vars = json!({
        "prometheus_listen_address": "127.0.0.1",
        "prometheus_port": ports.prometheus,
        "prometheus_node_targets": apps.iter()
            .filter(|(host, _, _)| *host != "lb")
            .map(|(host, _, _)| json!({"host": host, "address": format!("127.0.0.1:{}", ports.node)}))
            .collect::<Vec<_>>(),
        "prometheus_http_probes": probes,
        "prometheus_blackbox_address": format!("127.0.0.1:{}", ports.blackbox),
        "dashboard_listen_port": ports.nginx,
        "dashboard_root": www,
        "dashboard_prometheus_upstream": format!("127.0.0.1:{}", ports.prometheus),
        "dashboard_hosts": cards,
        // Short alert timings for the test only (defaults: evaluated every 15s, app down for 1m).
        "prometheus_evaluation_interval": "1s",
        "prometheus_alert_app_down_for": "5s",
        "prometheus_rules_file": dir.join("alerts.yml"),
        "prometheus_alertmanager_port": ports.alertmanager,
        "prometheus_pushgateway_port": ports.pushgateway,
        "dashboard_pushgateway_upstream": format!("127.0.0.1:{}", ports.pushgateway),
        "dashboard_htpasswd_file": dir.join("htpasswd"),
        "dashboard_auth_password_hash": htpasswd_hash(PASSWORD),
        "prometheus_alertmanager_webhook_url": "http://127.0.0.1:9/unused",
    });
    std::fs::write(dir.join("vars.json"), vars.to_string()).unwrap();
    let mut tasks = String::new();
    for role in ["prometheus", "blackbox", "dashboard"] {
        tasks.push_str(&format!(
            "    - name: Load the {role} role's defaults\n      ansible.builtin.include_vars: {ROLES}/{role}/defaults/main.yml\n"
        ));
    }
    for (role, template, dest) in [
        ("prometheus", "pipeline-alerts.yml.j2", "alerts.yml"),
        ("prometheus", "alertmanager.yml.j2", "alertmanager.yml"),
        ("prometheus", "prometheus.yml.j2", "prometheus.yml"),
        ("blackbox", "blackbox.yml.j2", "blackbox.yml"),
        ("dashboard", "pipeline-dashboard.conf.j2", "site.conf"),
        ("dashboard", "config.json.j2", "www/config.json"),
    ] {
        tasks.push_str(&format!(
            "    - name: Render {template}\n      ansible.builtin.template:\n        src: {ROLES}/{role}/templates/{template}\n        dest: {}/{dest}\n        mode: \"0644\"\n",
            dir.display()
        ));
    }
    let playbook = format!(
        "- name: Render the monitoring roles' templates\n  hosts: localhost\n  connection: local\n  gather_facts: false\n  vars:\n    ansible_python_interpreter: \"{{{{ ansible_playbook_python }}}}\"\n  tasks:\n{tasks}"
    );
    std::fs::write(dir.join("render.yml"), playbook).unwrap();
    let out = Command::new("ansible-playbook")
        .args(["-i", "localhost,", "render.yml", "-e"])
        .arg(format!("@{}", dir.join("vars.json").display()))
        .current_dir(dir)
        .env("ANSIBLE_NOCOLOR", "1")
        .output()
        .expect("run ansible-playbook");
    assert!(
        out.status.success(),
        "rendering the role templates failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // What the dashboard role's htpasswd task writes.
    std::fs::write(
        dir.join("htpasswd"),
        format!("{DASHBOARD_USER}:{}\n", htpasswd_hash(PASSWORD)),
    )
    .unwrap();
    for file in ["index.html", "dashboard.js", "dashboard.css"] {
        std::fs::copy(
            Path::new(ROLES).join("dashboard/files").join(file),
            www.join(file),
        )
        .unwrap();
    }
    std::fs::write(
        dir.join("nginx.conf"),
        format!(
            "daemon off;\npid {d}/nginx.pid;\nerror_log {d}/nginx-error.log;\nevents {{}}\nhttp {{\n  include /etc/nginx/mime.types;\n  access_log {d}/nginx-access.log;\n  client_body_temp_path {d}/tmp;\n  proxy_temp_path {d}/tmp;\n  fastcgi_temp_path {d}/tmp;\n  uwsgi_temp_path {d}/tmp;\n  scgi_temp_path {d}/tmp;\n  include {d}/site.conf;\n}}\n",
            d = dir.display()
        ),
    )
    .unwrap();
}

/// Runs `program args` and asserts it succeeds (the checks the roles' `validate:` run).
fn check(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn dashboard_behind_its_login_shows_live_numbers_deploy_events_and_the_app_down_alert() {
    for (program, package) in [
        ("prometheus", "prometheus"),
        ("prometheus-node-exporter", "prometheus-node-exporter"),
        (
            "prometheus-blackbox-exporter",
            "prometheus-blackbox-exporter",
        ),
        ("prometheus-alertmanager", "prometheus-alertmanager"),
        ("prometheus-pushgateway", "prometheus-pushgateway"),
        ("promtool", "prometheus"),
        ("amtool", "prometheus-alertmanager"),
        ("nginx", "nginx"),
        ("ansible-playbook", "ansible (scripts/setup.sh installs it)"),
    ] {
        require(program, package);
    }
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    // nginx workers run unprivileged and must read the page.
    std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::create_dir_all(dir.join("tmp")).unwrap();
    let ports = Ports {
        prometheus: free_port(),
        node: free_port(),
        blackbox: free_port(),
        nginx: free_port(),
        alertmanager: free_port(),
        pushgateway: free_port(),
    };
    let itrust = FakeApp::start();
    let checkbox = FakeApp::start();
    render_role_templates(
        dir,
        &ports,
        &[
            ("itrust", "iTrust", itrust.port),
            ("checkbox", "checkbox.io", checkbox.port),
        ],
    );

    let auth = basic_auth(DASHBOARD_USER, PASSWORD);
    let d = dir.display();
    check("promtool", &["check", "rules", &format!("{d}/alerts.yml")]);
    check(
        "amtool",
        &["check-config", &format!("{d}/alertmanager.yml")],
    );
    let rules = std::fs::read_to_string(dir.join("alerts.yml")).unwrap();
    for alert in [
        "AppDown",
        "NodeExporterMissing",
        "HostCpuHigh",
        "HostMemoryHigh",
        "HostDiskFull",
    ] {
        assert!(rules.contains(&format!("alert: {alert}")), "{rules}");
    }

    let mut daemons = Daemons::default();
    daemons.spawn(
        "node_exporter",
        dir,
        "prometheus-node-exporter",
        &[format!("--web.listen-address=127.0.0.1:{}", ports.node)],
    );
    daemons.spawn(
        "blackbox",
        dir,
        "prometheus-blackbox-exporter",
        &[
            format!("--config.file={d}/blackbox.yml"),
            format!("--web.listen-address=127.0.0.1:{}", ports.blackbox),
        ],
    );
    daemons.spawn(
        "alertmanager",
        dir,
        "prometheus-alertmanager",
        &[
            format!("--config.file={d}/alertmanager.yml"),
            format!("--storage.path={d}/alertmanager"),
            format!("--web.listen-address=127.0.0.1:{}", ports.alertmanager),
            "--cluster.listen-address=".into(),
        ],
    );
    daemons.spawn(
        "pushgateway",
        dir,
        "prometheus-pushgateway",
        &[format!(
            "--web.listen-address=127.0.0.1:{}",
            ports.pushgateway
        )],
    );
    spawn_prometheus_and_nginx(&mut daemons, dir, ports.prometheus);
    wait_until(
        "Prometheus answers through nginx",
        Duration::from_secs(30),
        || {
            daemons.assert_running(dir);
            matches!(
                http_get_as(ports.nginx, "/api/v1/query?query=up", &auth),
                Ok((200, _))
            )
        },
    );

    // Without the login (or with a wrong one) nothing answers: not the page, the queries or the alerts.
    for path in ["/dashboard/", "/api/v1/query?query=up", "/api/v1/alerts"] {
        let (status, _) = http_get(ports.nginx, path).unwrap();
        assert_eq!(status, 401, "{path} without credentials");
        let (status, _) =
            http_get_as(ports.nginx, path, &basic_auth(DASHBOARD_USER, "wrong")).unwrap();
        assert_eq!(status, 401, "{path} with a wrong password");
    }
    let (status, body) = http_get_as(ports.nginx, "/dashboard/", &auth).unwrap();
    assert_eq!(status, 200, "{body}");
    let (status, body) = http_get_as(ports.nginx, "/api/v1/alerts", &auth).unwrap();
    assert!(
        status == 200 && body.contains("\"alerts\""),
        "{status} {body}"
    );

    // Only queries pass: the rest of Prometheus' API and UI stay behind nginx.
    for path in [
        "/api/v1/status/config",
        "/api/v1/admin/tsdb/snapshot",
        "/graph",
        "/metrics",
    ] {
        let (status, _) = http_get(ports.nginx, path).unwrap();
        assert_eq!(status, 404, "nginx must not expose {path}");
    }

    let mut browser = Browser::launch();
    browser.call("Network.enable", json!({}));
    browser.call(
        "Network.setExtraHTTPHeaders",
        json!({"headers": {"Authorization": auth}}),
    );
    browser.navigate(&format!("http://127.0.0.1:{}/dashboard", ports.nginx));
    let live = browser.wait_for(
        &all_live_js(&["itrust", "checkbox"]),
        Duration::from_secs(60),
    );
    let cards = browser.eval(CARDS_JS);
    assert!(
        live.is_some(),
        "both hosts with live numbers within 60 s; page shows {cards}"
    );
    assert_plausible_numbers(&cards);
    browser.screenshot(&artifacts_dir().join("dashboard-loopback.png"));

    // A deploy recorded the way `pipeline deploy` records it: pushed through nginx with the login
    // (without it, nginx refuses the push).
    let event = Event::new("deploy", "checkbox.io", "abc1234", "success");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let refused = runtime.block_on(events::push(
        &format!("http://127.0.0.1:{}", ports.nginx),
        None,
        &event,
    ));
    assert!(
        matches!(
            refused,
            Err(events::EventError::Refused { status: 401, .. })
        ),
        "{refused:?}"
    );
    runtime
        .block_on(events::push(
            &format!("http://127.0.0.1:{}", ports.nginx),
            Some((DASHBOARD_USER, PASSWORD)),
            &event,
        ))
        .expect("push a deploy event through nginx");
    let marked = browser.wait_for(
        "(() => { const m = document.querySelectorAll('[data-host=checkbox] .event-mark[data-kind=deploy][data-version=abc1234]'); \
         return m.length >= 4 && document.querySelectorAll('[data-host=itrust] .event-mark').length === 0; })()",
        Duration::from_secs(30),
    );
    assert!(
        marked.is_some(),
        "the deploy of checkbox.io marked on each of its card's charts (and not on iTrust's) within 30 s"
    );
    rollout_on_the_dashboard(&runtime, &mut browser, ports.nginx);

    checkbox.stop();
    let down = browser.wait_for(
        &format!(
            "{} && {}",
            app_state_js("checkbox", "down"),
            app_state_js("itrust", "up")
        ),
        Duration::from_secs(30),
    );
    let cards = browser.eval(CARDS_JS);
    assert!(
        down.is_some(),
        "checkbox shown down within 30 s of stopping it; page shows {cards}"
    );
    let alert_js = "!!document.querySelector('#alerts:not([hidden]) .alert[data-alertname=AppDown][data-host=checkbox]') \
         && !document.querySelector('#alerts .alert[data-alertname=AppDown][data-host=itrust]')";
    let alerted = browser.wait_for(alert_js, Duration::from_secs(90));
    let banner = browser.eval("document.getElementById('alerts').textContent");
    assert!(
        alerted.is_some(),
        "the AppDown alert for checkbox shown at the top within 90 s; banner: {banner}"
    );
    eprintln!("AppDown shown {alerted:?} after the page showed checkbox down; banner: {banner}");
    browser.screenshot(&artifacts_dir().join("dashboard-loopback-down.png"));
    let errors = browser.console_errors();
    assert!(errors.is_empty(), "console errors: {errors:#?}");
}

#[test]
fn dashboard_groups_a_fleets_hosts_by_app_and_shows_each_app_of_the_front_door_on_its_own() {
    for (program, package) in [
        ("prometheus", "prometheus"),
        (
            "prometheus-blackbox-exporter",
            "prometheus-blackbox-exporter",
        ),
        ("nginx", "nginx"),
        ("ansible-playbook", "ansible (scripts/setup.sh installs it)"),
    ] {
        require(program, package);
    }
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::create_dir_all(dir.join("tmp")).unwrap();
    let ports = Ports {
        prometheus: free_port(),
        node: free_port(),
        blackbox: free_port(),
        nginx: free_port(),
        alertmanager: free_port(),
        pushgateway: free_port(),
    };
    let (itrust, cb1, cb2, door_cb, door_it) = (
        FakeApp::start(),
        FakeApp::start(),
        FakeApp::start(),
        FakeApp::start(),
        FakeApp::start(),
    );
    // The front door's iTrust answers nothing; its checkbox.io answers. One lb host, two cards.
    door_it.stop();
    // As monitor-setup lists them: the apps' hosts, then the front door's probes.
    render_role_templates(
        dir,
        &ports,
        &[
            ("itrust", "iTrust", itrust.port),
            ("checkbox-1", "checkbox.io", cb1.port),
            ("checkbox-2", "checkbox.io", cb2.port),
            ("lb", "iTrust", door_it.port),
            ("lb", "checkbox.io", door_cb.port),
        ],
    );
    let d = dir.display();
    let mut daemons = Daemons::default();
    daemons.spawn(
        "blackbox",
        dir,
        "prometheus-blackbox-exporter",
        &[
            format!("--config.file={d}/blackbox.yml"),
            format!("--web.listen-address=127.0.0.1:{}", ports.blackbox),
        ],
    );
    spawn_prometheus_and_nginx(&mut daemons, dir, ports.prometheus);
    let auth = basic_auth(DASHBOARD_USER, PASSWORD);
    wait_until(
        "Prometheus answers through nginx",
        Duration::from_secs(30),
        || {
            daemons.assert_running(dir);
            matches!(
                http_get_as(ports.nginx, "/api/v1/query?query=up", &auth),
                Ok((200, _))
            )
        },
    );
    let mut browser = Browser::launch();
    browser.call("Network.enable", json!({}));
    browser.call(
        "Network.setExtraHTTPHeaders",
        json!({"headers": {"Authorization": auth}}),
    );
    browser.navigate(&format!("http://127.0.0.1:{}/dashboard/", ports.nginx));
    let groups_js = "Array.from(document.querySelectorAll('.app-group')).map(g => [g.dataset.app, g.dataset.hosts, \
         Array.from(g.querySelectorAll('.host')).map(c => c.dataset.host + (c.dataset.frontDoor ? ' (front door)' : ''))])";
    let built = browser.wait_for(
        &format!("{groups_js}.length === 2"),
        Duration::from_secs(30),
    );
    let groups = browser.eval(groups_js);
    assert!(built.is_some(), "two app groups; page shows {groups}");
    assert_eq!(
        groups,
        json!([
            ["iTrust", "1", ["lb (front door)", "itrust"]],
            [
                "checkbox.io",
                "2",
                ["lb (front door)", "checkbox-1", "checkbox-2"]
            ]
        ]),
        "one group per app, the front door first in each"
    );
    // Each card shows its own probe: the lb's two apps are not merged into one series.
    let card = |host: &str, app: &str, state: &str| {
        format!("document.querySelector('.app-group[data-app=\"{app}\"] .host[data-host=\"{host}\"]')?.dataset.appState === '{state}'")
    };
    let states = [
        card("lb", "checkbox.io", "up"),
        card("lb", "iTrust", "down"),
        card("checkbox-1", "checkbox.io", "up"),
        card("checkbox-2", "checkbox.io", "up"),
        card("itrust", "iTrust", "up"),
    ]
    .join(" && ");
    let shown = browser.wait_for(&states, Duration::from_secs(60));
    let cards = browser.eval(
        "Array.from(document.querySelectorAll('.host')).map(c => [c.dataset.host, c.dataset.app, c.dataset.appState])",
    );
    assert!(
        shown.is_some(),
        "every card with its own app state within 60 s; page shows {cards}"
    );
    browser.screenshot(&artifacts_dir().join("dashboard-fleet-groups.png"));
    let errors = browser.console_errors();
    assert!(errors.is_empty(), "console errors: {errors:#?}");
}

/// A rollout of checkbox.io as `pipeline rollout` shows it: its state pushed by the rollout's own background
/// pusher at step 2 (25 %, step 1 passed), then done, then its event.
fn rollout_on_the_dashboard(runtime: &tokio::runtime::Runtime, browser: &mut Browser, nginx: u16) {
    use pipeline::monitoring::endpoint::Dashboard;
    use pipeline::monitoring::rollout::Progress;
    use pipeline::rollout::monitor::{ending_verdict, status};
    use pipeline::rollout::state::{Finished, Phase, StepRecord};

    let mut state = crate::support::rollout::checkbox_rollout("report", &["checkbox"]);
    let step: StepRecord = serde_json::from_value(json!({
        "index": 0, "weight": 5, "started_at": 0.0, "duration_s": 20.0, "extended": false,
        "verdict": "PASS", "stable": {"real": 1, "synthetic": 0, "errors": 0},
        "canary": {"real": 1, "synthetic": 0, "errors": 0}, "unattributed": 0, "looks": [], "reason": ""
    }))
    .unwrap();
    state.steps.push(step);
    state.phase = Phase::Step { index: 1 };
    state.weight = 25;
    state.canary_exists = true;
    let dashboard = Dashboard {
        base_url: format!("http://127.0.0.1:{nginx}"),
        login: Some((DASHBOARD_USER.into(), PASSWORD.into())),
    };
    let ui = pipeline::ui::Ui::new(true);
    runtime.block_on(async {
        let progress = Progress::start(dashboard.clone(), ui.clone());
        progress.update(status(&state));
        progress.finish().await;
    });
    let line = "document.querySelector('.app-group[data-app=\"checkbox.io\"] .rollout')";
    let shown = browser.wait_for(
        &format!(
            "(() => {{ const r = {line}; return !!r && !r.hidden && r.dataset.weight === '25' && r.dataset.verdict === 'PASS' \
             && !document.querySelector('.app-group[data-app=\"iTrust\"] .rollout:not([hidden])'); }})()"
        ),
        Duration::from_secs(30),
    );
    let text = browser.eval(&format!("{line}?.textContent"));
    assert!(
        shown.is_some(),
        "the rollout's weight and verdict shown on checkbox.io's group within 30 s; it shows {text}"
    );
    assert_eq!(
        text,
        json!("rollout of v2: canary 25 %, verdict so far PASS · step 2/4 (25 % to the canary)")
    );
    browser.screenshot(&artifacts_dir().join("dashboard-rollout.png"));

    // Rolled back: weight 0, no canary host, done; the line clears and the end is an event on the axis.
    state.phase = Phase::Done {
        outcome: Finished::RolledBack,
    };
    state.weight = 0;
    state.canary_exists = false;
    let end = pipeline::rollout::exec::Ending::RolledBack {
        reason: "FAIL".into(),
    };
    runtime.block_on(async {
        let progress = Progress::start(dashboard.clone(), ui.clone());
        progress.update(status(&state));
        progress.finish().await;
        let event = Event::new("rollout", "checkbox.io", "v2", ending_verdict(&end));
        events::push(
            &dashboard.base_url,
            Some((DASHBOARD_USER, PASSWORD)),
            &event,
        )
        .await
        .expect("push the rollout's event");
    });
    let cleared = browser.wait_for(
        &format!(
            "(() => {{ const r = {line}; return !!r && r.hidden && \
             document.querySelectorAll('[data-host=checkbox] .event-mark.bad[data-kind=rollout][data-verdict=rolled-back]').length >= 4; }})()"
        ),
        Duration::from_secs(30),
    );
    let text = browser.eval(&format!("{line}?.textContent"));
    assert!(
        cleared.is_some(),
        "the rollout line cleared and its rollback marked within 30 s; it shows {text}"
    );
}
