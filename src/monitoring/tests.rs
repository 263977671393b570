//! Unit tests of the monitoring planner and of [`super::prepare`] / [`super::MonitorSetup::finalize`].

use super::*;

/// `text` as the real ansible-inventory reads it.
fn inventory(text: &str) -> Inventory {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inventory.ini");
    std::fs::write(&path, text).unwrap();
    Inventory::load(&path).unwrap()
}

const FULL: &str = "[checkbox]\ncheckbox ansible_host=10.0.0.2\n[itrust]\nitrust ansible_host=10.0.0.1\n[monitor]\nmonitor ansible_host=10.0.0.3\n";

fn default_plan(text: &str) -> Result<MonitorPlan, PlanError> {
    plan(&inventory(text), &app_specs(&Map::new()).unwrap(), 9100)
}

#[test]
fn full_inventory_monitors_both_apps_from_the_monitor_host() {
    let p = default_plan(FULL).unwrap();
    assert_eq!(p.monitored_groups, vec!["itrust", "checkbox"]);
    assert!(p.missing_groups.is_empty());
    assert_eq!(
        p.targets,
        vec![
            Target {
                host: "itrust".into(),
                group: "itrust".into(),
                app: "iTrust".into(),
                exporter: "10.0.0.1:9100".into(),
                url: "http://10.0.0.1:8080/iTrust2".into(),
            },
            Target {
                host: "checkbox".into(),
                group: "checkbox".into(),
                app: "checkbox.io".into(),
                exporter: "10.0.0.2:9100".into(),
                url: "http://10.0.0.2:80/".into(),
            },
        ]
    );
    assert_eq!(p.dashboard_urls(), vec!["http://10.0.0.3/dashboard/"]);
}

#[test]
fn role_vars_allow_only_the_monitor_to_scrape_and_list_every_target() {
    let vars = default_plan(FULL).unwrap().role_vars(9100);
    assert_eq!(vars["node_exporter_allowed_scrapers"], json!(["10.0.0.3"]));
    assert_eq!(
        vars["prometheus_node_targets"],
        json!([{"host": "itrust", "address": "10.0.0.1:9100"}, {"host": "checkbox", "address": "10.0.0.2:9100"}])
    );
    assert_eq!(
        vars["prometheus_http_probes"][1],
        json!({"host": "checkbox", "app": "checkbox.io", "url": "http://10.0.0.2:80/"})
    );
    assert_eq!(vars["dashboard_hosts"], vars["prometheus_http_probes"]);
}

#[test]
fn a_fleet_is_probed_per_host_and_through_the_front_door() {
    let p = default_plan(
        "[checkbox]\ncheckbox-1 ansible_host=10.0.0.11\ncheckbox-2 ansible_host=10.0.0.12\n\
         [lb]\nlb ansible_host=10.0.0.9\n[monitor]\nm ansible_host=10.0.0.3\n",
    )
    .unwrap();
    let hosts: Vec<&str> = p.targets.iter().map(|t| t.host.as_str()).collect();
    assert_eq!(hosts, vec!["checkbox-1", "checkbox-2"]);
    let vars = p.role_vars(9100);
    assert_eq!(
        vars["prometheus_http_probes"][2],
        json!({"host": "lb", "app": "checkbox.io", "url": "http://10.0.0.9:80/"})
    );
    assert_eq!(
        vars["prometheus_node_targets"].as_array().unwrap().len(),
        2,
        "the lb is probed, not scraped"
    );
}

#[test]
fn the_apps_variables_change_ports_and_paths() {
    let vars = Map::from_iter([
        ("itrust_port".to_string(), json!(9090)),
        ("itrust_context_path".to_string(), json!("app")),
    ]);
    let p = plan(&inventory(FULL), &app_specs(&vars).unwrap(), 9200).unwrap();
    assert_eq!(p.targets[0].url, "http://10.0.0.1:9090/app");
    assert_eq!(p.targets[0].exporter, "10.0.0.1:9200");
}

#[test]
fn deprecated_monitor_keys_still_apply_with_a_warning_naming_the_new_variable() {
    let config = MonitorConfig {
        itrust_port: Some(9090),
        itrust_path: Some("/x".into()),
        checkbox_port: Some(8081),
        checkbox_path: Some("/health".into()),
        ..MonitorConfig::default()
    };
    let (vars, warnings) = config.deprecated_app_vars();
    assert_eq!(vars["itrust_port"], json!(9090));
    assert_eq!(vars["itrust_context_path"], json!("/x"));
    assert_eq!(vars["checkbox_http_port"], json!(8081));
    assert_eq!(warnings.len(), 4);
    assert!(
        warnings[0].contains("deprecated") && warnings[0].contains("[deploy.vars]"),
        "{warnings:?}"
    );
    let specs = app_specs(&vars).unwrap();
    assert_eq!((specs[1].port, specs[1].path.as_str()), (8081, "/"));
    assert!(MonitorConfig::default().deprecated_app_vars().1.is_empty());
    let settings = MonitorSettings {
        config,
        app_vars: vars,
    };
    let dir = tempfile::tempdir().unwrap();
    let setup = prepare(&settings, &inventory(FULL), dir.path(), |_| None).unwrap();
    assert_eq!(setup.plan.targets[0].url, "http://10.0.0.1:9090/x");
    assert_eq!(setup.plan.targets[1].url, "http://10.0.0.2:8081/health");
}

#[test]
fn exporter_port_from_extra_vars_wins_over_the_config_and_reaches_the_targets() {
    let mut settings = MonitorSettings {
        config: MonitorConfig {
            node_exporter_port: Some(9200),
            ..MonitorConfig::default()
        },
        app_vars: Map::new(),
    };
    assert_eq!(settings.exporter_port().unwrap(), 9200);
    settings
        .app_vars
        .insert("node_exporter_port".into(), json!(9300));
    let dir = tempfile::tempdir().unwrap();
    let inv = inventory(FULL);
    let setup = prepare(&settings, &inv, dir.path(), |_| None).unwrap();
    assert_eq!(setup.plan.targets[0].exporter, "10.0.0.1:9300");
    assert_eq!(setup.run.extra_vars["node_exporter_port"], json!(9300));
    settings
        .app_vars
        .insert("node_exporter_port".into(), json!("x"));
    assert!(prepare(&settings, &inv, dir.path(), |_| None)
        .unwrap_err()
        .is_usage());
}

#[test]
fn finalize_adds_the_login_hash_once_and_none_when_auth_is_off() {
    let dir = tempfile::tempdir().unwrap();
    let inv = inventory(FULL);
    let settings = MonitorSettings::default();
    let mut setup = prepare(&settings, &inv, dir.path(), |_| None).unwrap();
    setup.finalize(dir.path()).unwrap();
    let password = setup.password.clone().unwrap();
    assert_eq!(
        setup.run.extra_vars["dashboard_auth_password_hash"],
        json!(htpasswd_hash(&password))
    );
    assert_eq!(setup.run.extra_vars["pipeline_monitor_hosts"], "monitor");
    let mut off = prepare(&settings, &inv, dir.path(), |_| None).unwrap();
    off.run
        .extra_vars
        .insert("dashboard_auth".into(), json!(false));
    off.finalize(dir.path()).unwrap();
    assert!(off.password.is_none());
    assert!(!off
        .run
        .extra_vars
        .contains_key("dashboard_auth_password_hash"));
}

#[test]
fn missing_app_group_is_skipped_and_reported() {
    let p = default_plan(
        "[itrust]\nitrust ansible_host=10.0.0.1\n[monitor]\nm ansible_host=10.0.0.3\n",
    )
    .unwrap();
    assert_eq!(p.monitored_groups, vec!["itrust"]);
    assert_eq!(p.missing_groups, vec!["checkbox"]);
}

#[test]
fn inventory_without_monitor_group_is_refused_naming_the_groups_present() {
    let err = default_plan("[itrust]\nitrust ansible_host=10.0.0.1\n").unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("[monitor]") && msg.contains("groups present: itrust"),
        "{msg}"
    );
}

#[test]
fn inventory_without_app_hosts_is_refused() {
    let err = default_plan("[monitor]\nm ansible_host=10.0.0.3\n").unwrap_err();
    assert!(matches!(err, PlanError::NothingToMonitor { .. }), "{err}");
}

#[test]
fn monitor_host_name_instead_of_ipv4_is_refused_for_the_firewall() {
    let err = default_plan(
        "[itrust]\nitrust ansible_host=10.0.0.1\n[monitor]\nmonitor ansible_host=mon.example.org\n",
    )
    .unwrap_err();
    assert!(err.to_string().contains("mon.example.org"), "{err}");
}

#[test]
fn entry_playbook_gets_the_monitored_groups_as_variables() {
    let p = default_plan(FULL).unwrap();
    let vars = p.playbook_vars();
    assert_eq!(vars["pipeline_monitored_hosts"], "itrust:checkbox");
    assert_eq!(
        vars["pipeline_monitored_groups"],
        json!(["itrust", "checkbox"])
    );
    assert_eq!(vars["pipeline_monitor_hosts"], "monitor");
}
