//! A rollout's canary on the monitor's Prometheus, on loopback without sandbox hosts: the prometheus
//! role's own `prometheus.yml` (rendered by ansible-playbook) configures a real Prometheus with a real
//! node_exporter and blackbox exporter as child processes; the role's `file_sd` tasks, with the variables
//! `pipeline rollout` builds for its canary host ([`scrape::scrape_vars`]), add the canary's targets,
//! and the tool's own `rollout-unscrape.yml` run ([`PlaybookRun`], vars.json marked unsafe) removes them.
//!
//! Prometheus scrapes the canary with the labels the app's hosts have (`host`; `host` and `app` on the
//! probe), so a `$arm` query for the canary finds its node_exporter series, without a reload or a restart;
//! once removed, the targets are gone; both directions are idempotent, and a Prometheus whose
//! configuration does not read the files is refused with what to do.
//!
//! Needs the Debian packages prometheus, prometheus-node-exporter and prometheus-blackbox-exporter, and
//! ansible-playbook (scripts/setup.sh installs them).

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use pipeline::ansible::PlaybookRun;
use pipeline::inventory::{Inventory, InventoryHost};
use pipeline::monitoring::{MonitorConfig, MonitorSettings};
use pipeline::rollout::scrape;
use serde_json::{json, Value};

use crate::support::daemons::Daemons;

const ROLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/roles");
const CANARY: &str = "checkbox-canary";
const NAME: &str = "rollout-prod-checkbox";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("find a free loopback port")
        .port()
}

fn get(port: u16, path: &str) -> Value {
    let (status, body) =
        crate::shared::http_get(SocketAddr::from(([127, 0, 0, 1], port)), path).unwrap();
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

fn wait_until(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let until = Instant::now() + timeout;
    while !ready() {
        assert!(Instant::now() < until, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn python() -> String {
    let out = Command::new("sh")
        .args(["-c", "command -v python3"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Runs `tasks` on localhost with the roles' path and `vars` (-e @file); (success, output).
fn local_play(dir: &Path, name: &str, tasks: &str, vars: &Value) -> (bool, String) {
    let vars_file = dir.join(format!("{name}.json"));
    std::fs::write(&vars_file, vars.to_string()).unwrap();
    let playbook = dir.join(format!("{name}.yml"));
    std::fs::write(
        &playbook,
        format!("- name: {name}\n  hosts: localhost\n  connection: local\n  gather_facts: false\n  vars:\n    ansible_python_interpreter: \"{{{{ ansible_playbook_python }}}}\"\n  tasks:\n{tasks}"),
    )
    .unwrap();
    let out = Command::new("ansible-playbook")
        .args(["-i", "localhost,"])
        .arg(&playbook)
        .arg("-e")
        .arg(format!("@{}", vars_file.display()))
        .current_dir(dir)
        .env("ANSIBLE_ROLES_PATH", ROLES)
        .env("ANSIBLE_NOCOLOR", "1")
        .output()
        .expect("run ansible-playbook");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// The active targets labelled `host=checkbox-canary`, as (job, health).
fn canary_targets(prometheus: u16) -> Vec<(String, String)> {
    let t = get(prometheus, "/api/v1/targets?state=active");
    t["data"]["activeTargets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["labels"]["host"] == CANARY)
        .map(|t| {
            (
                t["labels"]["job"].as_str().unwrap().to_string(),
                t["health"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn host(name: &str) -> InventoryHost {
    InventoryHost {
        name: name.into(),
        vars: BTreeMap::from([("ansible_host".to_string(), "127.0.0.1".to_string())]),
    }
}

#[test]
fn the_canary_is_scraped_with_the_app_hosts_labels_without_a_reload_and_dropped_when_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let d = dir.display();
    let (prometheus, node, blackbox) = (free_port(), free_port(), free_port());
    let file_sd = dir.join("file_sd");
    // The role's templates with loopback ports: one stable host scraped as monitor-setup does.
    let role_vars = json!({
        "prometheus_listen_address": "127.0.0.1",
        "prometheus_port": prometheus,
        "prometheus_node_targets": [{"host": "checkbox-1", "address": format!("127.0.0.1:{node}")}],
        "prometheus_http_probes": [],
        "prometheus_blackbox_address": format!("127.0.0.1:{blackbox}"),
        "prometheus_rules_file": dir.join("alerts.yml"),
        "prometheus_alertmanager_enabled": false,
        "prometheus_pushgateway_enabled": false,
        "prometheus_file_sd_dir": file_sd,
        "prometheus_config_file": dir.join("prometheus.yml"),
    });
    let mut tasks = String::new();
    for role in ["prometheus", "blackbox"] {
        tasks.push_str(&format!("    - name: Load the {role} role's defaults\n      ansible.builtin.include_vars: {ROLES}/{role}/defaults/main.yml\n"));
    }
    tasks.push_str(
        "    - name: Create the file_sd directory\n      ansible.builtin.file:\n        path: \"{{ prometheus_file_sd_dir }}\"\n        state: directory\n        mode: \"0755\"\n",
    );
    for (role, template, dest) in [
        ("prometheus", "prometheus.yml.j2", "prometheus.yml"),
        ("prometheus", "pipeline-alerts.yml.j2", "alerts.yml"),
        ("blackbox", "blackbox.yml.j2", "blackbox.yml"),
    ] {
        tasks.push_str(&format!("    - name: Render {template}\n      ansible.builtin.template:\n        src: {ROLES}/{role}/templates/{template}\n        dest: {d}/{dest}\n        mode: \"0644\"\n"));
    }
    let (ok, out) = local_play(dir, "render", &tasks, &role_vars);
    assert!(ok, "{out}");
    let config = std::fs::read_to_string(dir.join("prometheus.yml")).unwrap();
    assert!(config.contains("file_sd_configs"), "{config}");
    let check = Command::new("promtool")
        .args(["check", "config"])
        .arg(dir.join("prometheus.yml"))
        .output()
        .unwrap();
    assert!(check.status.success(), "{check:?}");

    let mut daemons = Daemons::default();
    daemons.spawn(
        "node_exporter",
        dir,
        "prometheus-node-exporter",
        &[format!("--web.listen-address=127.0.0.1:{node}")],
    );
    daemons.spawn(
        "blackbox",
        dir,
        "prometheus-blackbox-exporter",
        &[
            format!("--config.file={d}/blackbox.yml"),
            format!("--web.listen-address=127.0.0.1:{blackbox}"),
        ],
    );
    let pid = daemons.spawn(
        "prometheus",
        dir,
        "prometheus",
        &[
            format!("--config.file={d}/prometheus.yml"),
            format!("--storage.tsdb.path={d}/data"),
            format!("--web.listen-address=127.0.0.1:{prometheus}"),
        ],
    );
    wait_until("Prometheus is ready", Duration::from_secs(30), || {
        daemons.assert_running(dir);
        crate::shared::http_get(SocketAddr::from(([127, 0, 0, 1], prometheus)), "/-/ready")
            .is_ok_and(|(s, _)| s == 200)
    });
    let reloads = || {
        get(
            prometheus,
            "/api/v1/query?query=prometheus_config_last_reload_success_timestamp_seconds",
        )["data"]["result"][0]["value"][1]
            .clone()
    };
    let loaded_at = reloads();
    assert!(canary_targets(prometheus).is_empty());

    // The variables the rollout builds for its canary host: node_exporter and the app (checkbox.io's port
    // here: node_exporter's, which answers 200 at `/`) on loopback.
    let settings = MonitorSettings {
        config: MonitorConfig::default(),
        app_vars: serde_json::from_value(
            json!({"node_exporter_port": node, "checkbox_http_port": node}),
        )
        .unwrap(),
    };
    let inventory = Inventory {
        path: dir.join("inventory.ini"),
        groups: BTreeMap::from([("monitor".to_string(), vec![host("monitor")])]),
    };
    let vars = scrape::scrape_vars(&settings, &inventory, &host(CANARY), "checkbox", NAME).unwrap();
    let mut vars = Value::Object(vars);
    for key in [
        "prometheus_listen_address",
        "prometheus_port",
        "prometheus_file_sd_dir",
        "prometheus_config_file",
    ] {
        vars[key] = role_vars[key].clone();
    }
    let add = "    - name: Add the canary host's targets\n      ansible.builtin.include_role:\n        name: prometheus\n        tasks_from: file_sd\n";
    let (ok, out) = local_play(dir, "scrape", add, &vars);
    assert!(ok, "{out}");
    // The tasks waited until Prometheus scraped both: no waiting here.
    let mut targets = canary_targets(prometheus);
    targets.sort();
    assert_eq!(
        targets,
        [("apps".into(), "up".into()), ("node".into(), "up".into())],
        "{out}"
    );
    let t = get(prometheus, "/api/v1/targets?state=active");
    let probe = t["data"]["activeTargets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["labels"]["host"] == CANARY && t["labels"]["job"] == "apps")
        .unwrap()
        .clone();
    assert_eq!(probe["labels"]["app"], "checkbox.io");
    // A rollout's `$arm` query for the canary finds its node_exporter's series.
    wait_until(
        "a $arm query for the canary returns a series",
        Duration::from_secs(30),
        || {
            get(
                prometheus,
                "/api/v1/query?query=count(node_cpu_seconds_total%7Bmode%3D%22idle%22%2Chost%3D~%22checkbox-canary%22%7D)",
            )["data"]["result"]
                .as_array()
                .is_some_and(|r| r.len() == 1)
        },
    );
    // Neither restarted nor reloaded.
    daemons.assert_running(dir);
    assert_eq!(daemons.0[2].1.id(), pid);
    assert_eq!(reloads(), loaded_at);
    // Idempotent: the same again changes nothing.
    let (ok, out) = local_play(dir, "scrape", add, &vars);
    assert!(ok && out.contains("changed=0"), "{out}");

    // The tool's own removal run: rollout-unscrape.yml over an inventory whose monitor is this machine.
    let ini = dir.join("inventory.ini");
    std::fs::write(
        &ini,
        format!(
            "[monitor]\nmonitor ansible_connection=local ansible_python_interpreter={}\n",
            python()
        ),
    )
    .unwrap();
    let unscrape = || {
        let mut run = PlaybookRun::new(
            "unscrape",
            scrape::UNSCRAPE_PLAYBOOK,
            &ini,
            dir.join("state"),
        );
        run.extra_vars = scrape::common_vars(CANARY, NAME, "absent");
        run.extra_vars.insert(
            "prometheus_file_sd_dir".into(),
            role_vars["prometheus_file_sd_dir"].clone(),
        );
        run.run(&pipeline::ui::Ui::new(true)).unwrap()
    };
    let report = unscrape();
    assert!(report.success, "{}", report.render_text());
    assert!(std::fs::read_dir(&file_sd).unwrap().next().is_none());
    wait_until(
        "Prometheus drops the canary's targets",
        Duration::from_secs(30),
        || canary_targets(prometheus).is_empty(),
    );
    assert_eq!(reloads(), loaded_at);
    // Removing what is gone is fine.
    let report = unscrape();
    assert!(report.success, "{}", report.render_text());

    // A Prometheus whose configuration does not read the files (an older monitor-setup) is refused.
    std::fs::write(dir.join("old.yml"), "global: {}\n").unwrap();
    vars["prometheus_config_file"] = json!(dir.join("old.yml"));
    let (ok, out) = local_play(dir, "scrape-old", add, &vars);
    assert!(!ok, "{out}");
    assert!(
        out.contains("set up by an older pipeline")
            && out.contains("run `pipeline monitor-setup` again"),
        "{out}"
    );
    // And one with no Prometheus at all.
    vars["prometheus_config_file"] = json!(dir.join("missing.yml"));
    let (ok, out) = local_play(dir, "scrape-none", add, &vars);
    assert!(!ok, "{out}");
    assert!(out.contains("not set up"), "{out}");
    assert!(std::fs::read_dir(&file_sd).unwrap().next().is_none());
}

#[test]
fn the_scrape_and_unscrape_playbooks_pass_ansible_syntax_check_with_the_built_in_roles() {
    let tmp = tempfile::tempdir().unwrap();
    let ini = tmp.path().join("inventory.ini");
    std::fs::write(
        &ini,
        "[monitor]\nmonitor ansible_host=10.0.0.9\n[checkbox-canary]\ncheckbox-canary ansible_host=10.0.0.7\n",
    )
    .unwrap();
    let settings = MonitorSettings::default();
    let inventory = Inventory {
        path: ini.clone(),
        groups: BTreeMap::from([("monitor".to_string(), vec![host("monitor")])]),
    };
    for (playbook, vars) in [
        (
            scrape::SCRAPE_PLAYBOOK,
            scrape::scrape_vars(&settings, &inventory, &host(CANARY), "checkbox", NAME).unwrap(),
        ),
        (
            scrape::UNSCRAPE_PLAYBOOK,
            scrape::common_vars(CANARY, NAME, "absent"),
        ),
    ] {
        let mut run = PlaybookRun::new("syntax", playbook, &ini, tmp.path().join("state"));
        run.extra_vars = vars;
        run.syntax_check()
            .unwrap_or_else(|e| panic!("{playbook}: syntax check failed: {e}"));
    }
}
