//! The canary's deploy gets the app's variables: a real `ansible-playbook` run of the deploy the real
//! world builds for the canary host (on loopback, `ansible_connection=local`), with a probe playbook in
//! place of the app's that writes the variables the canary host sees. The app's inventory keeps
//! `group_vars/`, `host_vars/` and `[checkbox:vars]` next to it, as an operator does.

use std::path::Path;

use super::settings;
use crate::ansible::RolesSource;
use crate::rollout::real::RealWorld;
use crate::rollout::state::RolloutState;
use crate::settings::{Config, Global};
use crate::ui::Ui;

/// Writes every probe variable the canary host sees to `probe_out`.
const PROBE: &str = r#"- name: Probe
  hosts: "{{ pipeline_hosts }}"
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  tasks:
    - name: Write what the host sees
      ansible.builtin.copy:
        content: "{{ {'group': probe_group, 'all': probe_all, 'parent': probe_parent, 'host': probe_host, 'inline': probe_inline, 'config': probe_config, 'e': probe_e, 'hosts': ansible_play_hosts_all} | to_json }}"
        dest: "{{ probe_out }}"
        mode: "0600"
"#;

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[test]
fn the_canary_deploy_gets_the_apps_group_vars_and_host_vars_below_deploy_vars_and_e() {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("ops");
    // The app's hosts are unreachable: the deploy must touch the canary alone.
    write(
        &app.join("inventory.ini"),
        "[checkbox]\ncheckbox-1 ansible_host=192.0.2.1\n[checkbox:vars]\nprobe_inline=from-inline\n\
         [lb]\nlb ansible_host=192.0.2.3\n[prod:children]\ncheckbox\n",
    );
    write(
        &app.join("group_vars/checkbox.yml"),
        "probe_group: from-group-vars\nprobe_config: from-group-vars\nprobe_e: from-group-vars\n",
    );
    write(&app.join("group_vars/all.yml"), "probe_all: from-all\n");
    write(
        &app.join("group_vars/prod.yml"),
        "probe_parent: from-parent\n",
    );
    write(
        &app.join("host_vars/checkbox-canary.yml"),
        "probe_host: from-host-vars\n",
    );
    let state_dir = dir.path().join(".pipeline");
    // The canary's own inventory as `prod up` writes it for the rollout.
    write(
        &crate::rollout::canary_host::inventory_path(&state_dir, "prod", "checkbox"),
        "[checkbox-canary]\ncheckbox-canary ansible_host=127.0.0.1 ansible_connection=local\n",
    );
    let global = Global {
        config: Config::parse(
            "[deploy.vars]\nprobe_config = \"from-deploy-vars\"\n",
            dir.path().join("pipeline.toml"),
        )
        .unwrap(),
        state_dir,
        ui: Ui::new(true),
    };
    let mut recorded = settings(dir.path());
    recorded.inventory = app.join("inventory.ini");
    recorded.extra_vars = vec!["probe_e=from-e".into()];
    let state = RolloutState::new(
        recorded,
        vec!["checkbox-1".into()],
        "checkbox-canary".into(),
        "lb".into(),
    );
    let world = RealWorld::new(&state, &global).unwrap();
    let mut d = world.canary_deployment().unwrap();

    let roles = dir.path().join("roles");
    write(&roles.join("playbooks/deploy-checkbox.yml"), PROBE);
    d.run.roles = RolesSource::Dir(roles);
    let out = dir.path().join("seen.json");
    d.run
        .extra_vars
        .insert("probe_out".into(), out.display().to_string().into());
    let report = d.run.run(&global.ui).unwrap();
    assert!(report.success, "{}", report.render_text());
    let seen: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(
        seen,
        serde_json::json!({
            "group": "from-group-vars",
            "all": "from-all",
            "parent": "from-parent",
            "host": "from-host-vars",
            "inline": "from-inline",
            "config": "from-deploy-vars",
            "e": "from-e",
            "hosts": ["checkbox-canary"],
        })
    );
}
