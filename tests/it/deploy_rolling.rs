//! Rolling deploys without sandbox hosts: the real ansible-playbook runs the shipped entry playbook on three
//! `ansible_connection=local` aliases of this machine with stub roles (nothing on the machine changes), so
//! the batches (`[deploy] serial`), the stop at the failing batch (`max_fail_percentage`) and the report
//! naming the batch, host and task are Ansible's real behaviour. The front door itself is exercised end to
//! end on the sandbox (tests/e2e/fleet.rs).

use std::path::Path;
use std::process::{Command, Output};

use crate::support::pipeline;

use crate::support::output_text as text;
fn python() -> String {
    let out = Command::new("sh")
        .args(["-c", "command -v python3"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Three itrust hosts that are all this machine; the stub itrust role records each host it ran on in
/// `touched/` and fails on `fail_on` (empty: none).
fn fleet(dir: &Path, fail_on: &str, deploy: &str) {
    let py = python();
    let hosts: String = (1..=3)
        .map(|i| format!("itrust-{i} ansible_connection=local ansible_python_interpreter={py}\n"))
        .collect::<Vec<_>>()
        .concat();
    std::fs::write(dir.join("fleet.ini"), format!("[itrust]\n{hosts}")).unwrap();
    std::fs::write(dir.join("pipeline.toml"), format!("[deploy]\n{deploy}\n")).unwrap();
    let touched = dir.join("touched");
    std::fs::create_dir_all(&touched).unwrap();
    for role in ["common", "mysql", "java", "itrust"] {
        let tasks = dir.join("stub-roles").join(role).join("tasks");
        std::fs::create_dir_all(&tasks).unwrap();
        let body = if role == "itrust" {
            format!(
                "---\n- name: Record the host\n  ansible.builtin.file:\n    path: \"{}/{{{{ inventory_hostname }}}}\"\n    state: touch\n    mode: \"0644\"\n\
                 - name: Start the app\n  ansible.builtin.command: sh -c 'echo health check answered 500 >&2; exit 1'\n  changed_when: false\n  when: inventory_hostname == \"{fail_on}\"\n",
                touched.display()
            )
        } else {
            "---\n- name: Reach the host\n  ansible.builtin.ping:\n".to_string()
        };
        std::fs::write(tasks.join("main.yml"), body).unwrap();
    }
}

fn touched(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("touched"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn deploy(dir: &Path) -> Output {
    pipeline(dir)
        .args([
            "--quiet",
            "deploy",
            "itrust",
            "-i",
            "fleet.ini",
            "--roles",
            "stub-roles",
        ])
        .args(["--report", "report.json"])
        .output()
        .unwrap()
}

#[test]
fn serial_one_deploys_every_host_one_batch_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    fleet(dir.path(), "", "serial = 1");
    let out = deploy(dir.path());
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(touched(dir.path()), ["itrust-1", "itrust-2", "itrust-3"]);
    let events = std::fs::read_to_string(dir.path().join("report.json")).unwrap();
    let report: serde_json::Value = serde_json::from_str(&events).unwrap();
    assert_eq!(report["hosts"].as_array().unwrap().len(), 3);
}

#[test]
fn a_failure_on_the_second_host_stops_the_deploy_at_its_batch_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    fleet(
        dir.path(),
        "itrust-2",
        "serial = 1\nmax_fail_percentage = 0",
    );
    let out = deploy(dir.path());
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert_eq!(
        touched(dir.path()),
        ["itrust-1", "itrust-2"],
        "itrust-3 is never touched"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("rolling deploy stopped at batch 2 of 3 (itrust-2):"),
        "{}",
        text(&out)
    );
    assert!(
        stderr.contains("itrust-2 failed at task `itrust : Start the app`: ")
            && stderr.contains("health check answered 500"),
        "{}",
        text(&out)
    );
    assert!(
        stderr.contains("not touched, still serving the previous version: itrust-3"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_percentage_batch_and_a_tolerated_failure_share_follow_ansible() {
    let dir = tempfile::tempdir().unwrap();
    // Batches of two then one; up to 50% of a batch may fail, so the failing itrust-2 does not stop it.
    fleet(
        dir.path(),
        "itrust-2",
        "serial = [2, \"100%\"]\nmax_fail_percentage = 50",
    );
    let out = deploy(dir.path());
    assert_eq!(
        out.status.code(),
        Some(4),
        "the failed host is still reported: {}",
        text(&out)
    );
    assert_eq!(touched(dir.path()), ["itrust-1", "itrust-2", "itrust-3"]);
}

#[test]
fn an_invalid_serial_is_a_config_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    fleet(dir.path(), "", "serial = \"lots\"");
    let out = deploy(dir.path());
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("serial"),
        "{}",
        text(&out)
    );
}
