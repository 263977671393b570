//! monitor-setup's Ansible side without hosts: the rendered entry playbook passes
//! `ansible-playbook --syntax-check` with the built-in roles, the run carries the plan as typed vars, and
//! the node_exporter role's nftables table is accepted by `nft --check` (with and without scrapers).

use std::path::Path;
use std::process::Command;

use pipeline::ansible::PlaybookRun;
use pipeline::inventory::Inventory;
use pipeline::monitoring::{app_specs, plan, PLAYBOOK};

const INVENTORY: &str = "[checkbox]\ncheckbox ansible_host=10.213.0.6 ansible_user=root\n\
[itrust]\nitrust ansible_host=10.213.0.2 ansible_user=root\n\
[monitor]\nmonitor ansible_host=10.213.0.10 ansible_user=root\n";

#[test]
fn rendered_monitor_playbook_passes_ansible_syntax_check_with_the_built_in_roles() {
    let dir = tempfile::tempdir().unwrap();
    let inventory_path = dir.path().join("inventory.ini");
    std::fs::write(&inventory_path, INVENTORY).unwrap();
    let inventory = Inventory::load(&inventory_path).unwrap();
    let plan = plan(
        &inventory,
        &app_specs(&serde_json::Map::default()).unwrap(),
        9100,
    )
    .unwrap();

    let mut run = PlaybookRun::new(
        "monitor-setup",
        PLAYBOOK,
        &inventory_path,
        dir.path().join("state"),
    );
    run.extra_vars = plan.role_vars(9100);
    run.extra_vars.extend(plan.playbook_vars());
    let prepared = run
        .syntax_check()
        .unwrap_or_else(|e| panic!("syntax check failed: {e}"));

    let playbook = std::fs::read_to_string(&prepared.playbook).unwrap();
    assert!(
        playbook.contains("hosts: \"{{ pipeline_monitored_hosts | default([]) }}\""),
        "{playbook}"
    );
    let vars: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&prepared.vars_file).unwrap()).unwrap();
    let unsafe_ = |s: &str| serde_json::json!({ "__ansible_unsafe": s });
    assert_eq!(vars["pipeline_monitored_hosts"], unsafe_("itrust:checkbox"));
    assert_eq!(
        vars["node_exporter_allowed_scrapers"],
        serde_json::json!([unsafe_("10.213.0.10")])
    );
    assert_eq!(
        vars["prometheus_http_probes"][0]["url"],
        unsafe_("http://10.213.0.2:8080/iTrust2")
    );
}

/// Renders the node_exporter role's nftables template with ansible-playbook and returns the text.
fn render_nft(dir: &Path, scrapers: &str) -> String {
    let roles = concat!(env!("CARGO_MANIFEST_DIR"), "/roles");
    let out_file = dir.join("node-exporter.nft");
    let playbook = dir.join("render.yml");
    std::fs::write(
        &playbook,
        format!(
            "- name: Render the node_exporter firewall\n  hosts: localhost\n  connection: local\n  gather_facts: false\n  vars:\n    ansible_python_interpreter: \"{{{{ ansible_playbook_python }}}}\"\n  tasks:\n    - name: Load the role defaults\n      ansible.builtin.include_vars: {roles}/node_exporter/defaults/main.yml\n    - name: Render\n      ansible.builtin.template:\n        src: {roles}/node_exporter/templates/node-exporter.nft.j2\n        dest: {}\n        mode: \"0644\"\n",
            out_file.display()
        ),
    )
    .unwrap();
    let out = Command::new("ansible-playbook")
        .args(["-i", "localhost,"])
        .arg(&playbook)
        .arg("-e")
        .arg(format!(
            "{{\"node_exporter_allowed_scrapers\": {scrapers}}}"
        ))
        .env("ANSIBLE_NOCOLOR", "1")
        .output()
        .expect("run ansible-playbook (install it with scripts/setup.sh)");
    assert!(
        out.status.success(),
        "rendering failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(out_file).unwrap()
}

fn nft_check(path: &Path) -> std::process::Output {
    Command::new("nft")
        .args(["--check", "--file"])
        .arg(path)
        .output()
        .expect("run nft (apt-get install nftables; scripts/setup.sh does)")
}

#[test]
fn node_exporter_firewall_table_is_valid_nftables_and_admits_only_listed_scrapers() {
    let dir = tempfile::tempdir().unwrap();
    for (scrapers, accept_rule) in [
        (
            r#"["10.213.0.10", "192.0.2.0/24"]"#,
            Some("elements = { 10.213.0.10, 192.0.2.0/24 }"),
        ),
        ("[]", None),
    ] {
        let text = render_nft(dir.path(), scrapers);
        let file = dir.path().join("node-exporter.nft");
        let check = nft_check(&file);
        assert!(
            check.status.success(),
            "nft rejects the table for {scrapers}:\n{text}\n{}",
            String::from_utf8_lossy(&check.stderr)
        );
        assert!(text.contains("tcp dport 9100 drop"), "{text}");
        assert!(text.contains("iif \"lo\" accept"), "{text}");
        match accept_rule {
            Some(elements) => {
                assert!(text.contains(elements), "{text}");
                assert!(
                    text.contains("tcp dport 9100 ip saddr @scrapers accept"),
                    "{text}"
                );
            }
            None => assert!(!text.contains("@scrapers"), "{text}"),
        }
    }
}

/// Runs `pipeline monitor-setup -i <inventory>` in `dir`.
fn monitor_setup(dir: &Path, inventory: &str) -> std::process::Output {
    crate::support::pipeline(dir)
        .args(["--state-dir", "state", "monitor-setup", "-i", inventory])
        .output()
        .expect("run pipeline")
}

#[test]
fn monitor_setup_refuses_a_missing_inventory_or_one_without_a_monitor_host_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = monitor_setup(dir.path(), "nope.ini");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("nope.ini does not exist") && stderr.contains("pipeline prod up"),
        "{stderr}"
    );

    std::fs::write(
        dir.path().join("apps-only.ini"),
        "[itrust]\nitrust ansible_host=10.213.0.2\n",
    )
    .unwrap();
    let out = monitor_setup(dir.path(), "apps-only.ini");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("no host in group [monitor]") && stderr.contains("groups present: itrust"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("state").exists(),
        "nothing is rendered or run before the inventory is understood"
    );
}
