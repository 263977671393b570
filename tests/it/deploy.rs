//! `pipeline deploy` and `pipeline roles` without sandbox hosts: rendering (`--emit`, `--syntax-check` with the
//! real ansible-playbook), bad inputs, and real runs on this machine through `ansible_connection=local` with
//! stub roles that only use `debug`/`fail` (nothing on the machine changes), plus an unreachable loopback port.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::output_text as text;
use crate::support::quiet_pipeline as pipeline;

fn inventory(dir: &Path) -> PathBuf {
    let path = dir.join("inventory.ini");
    std::fs::write(
        &path,
        "[itrust]\nitrust ansible_host=192.0.2.10 ansible_user=root\n\n[checkbox]\ncheckbox ansible_host=192.0.2.11 ansible_user=root\n",
    )
    .unwrap();
    path
}

/// Runs `pipeline ARGS` in `dir`, checks that it is a usage error (exit 2), and returns its stderr.
fn usage_error(dir: &Path, args: &[&str]) -> String {
    let out = pipeline(dir).args(args).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn both_rendered_playbooks_pass_ansible_syntax_check() {
    let dir = tempfile::tempdir().unwrap();
    inventory(dir.path());
    for app in ["iTrust", "checkbox.io"] {
        let out = pipeline(dir.path())
            .args(["deploy", app, "--syntax-check"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{app}: {}", text(&out));
    }
}

#[test]
fn emit_keeps_playbook_private_vars_pinned_config_callback_and_verbatim_roles() {
    let dir = tempfile::tempdir().unwrap();
    inventory(dir.path());
    let out = pipeline(dir.path())
        .args([
            "deploy",
            "itrust",
            "--syntax-check",
            "--emit",
            "run",
            "-e",
            "itrust_runtime=tomcat",
            "-e",
            "itrust_health_retries=3",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let run = dir.path().join("run");

    // The entry playbook is the static file of playbooks/, byte for byte: no value of the run is in it.
    let playbook = std::fs::read(run.join("deploy-itrust.yml")).unwrap();
    assert_eq!(
        playbook,
        std::fs::read(repo_root().join("playbooks/deploy-itrust.yml")).unwrap()
    );
    let playbook = String::from_utf8(playbook).unwrap();
    assert!(
        playbook.contains("hosts: \"{{ pipeline_hosts | default([]) }}\""),
        "{playbook}"
    );
    for role in ["common", "mysql", "java", "itrust"] {
        assert!(playbook.contains(&format!("role: {role}")), "{playbook}");
    }

    // Every string is marked unsafe for Ansible; numbers stay typed.
    let vars: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("vars.json")).unwrap()).unwrap();
    assert_eq!(vars["itrust_runtime"]["__ansible_unsafe"], "tomcat");
    assert_eq!(vars["pipeline_hosts"]["__ansible_unsafe"], "itrust");
    assert_eq!(vars["itrust_health_retries"], 3);
    let password = vars["itrust_db_password"]["__ansible_unsafe"]
        .as_str()
        .unwrap();
    assert_eq!(password.len(), 24);
    let mode = |p: PathBuf| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(run.join("vars.json")), 0o600);
    assert_eq!(
        mode(dir.path().join(".pipeline/secrets/itrust-db-password")),
        0o600
    );
    let command = std::fs::read_to_string(run.join("command.sh")).unwrap();
    assert!(!command.contains(password), "{command}");
    assert!(command.contains("-e @"), "{command}");

    let cfg = std::fs::read_to_string(run.join("ansible.cfg")).unwrap();
    assert!(cfg.contains("pipelining = True"), "{cfg}");
    assert!(cfg.contains("StrictHostKeyChecking=accept-new"), "{cfg}");
    assert!(cfg.contains(".pipeline/known_hosts"), "{cfg}");
    assert!(cfg.contains("stdout_callback = pipeline_events"), "{cfg}");
    assert!(run.join("callback_plugins/pipeline_events.py").exists());

    // Roles are copied byte for byte: Ansible's {{ }} survive, nothing went through Tera.
    for rel in [
        "itrust/templates/application.yml.j2",
        "checkbox/templates/ecosystem.config.js.j2",
        "nginx/templates/site.conf.j2",
        "common/tasks/main.yml",
    ] {
        let emitted = std::fs::read(run.join("roles").join(rel)).unwrap();
        let source = std::fs::read(repo_root().join("roles").join(rel)).unwrap();
        assert_eq!(emitted, source, "{rel} differs from roles/{rel}");
    }
    let template =
        std::fs::read_to_string(run.join("roles/itrust/templates/application.yml.j2")).unwrap();
    assert!(
        template.contains("{{ itrust_db_password | to_json }}"),
        "{template}"
    );

    // The generated password is reused by the next run.
    let again = pipeline(dir.path())
        .args(["deploy", "itrust", "--syntax-check", "--emit", "run2"])
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", text(&again));
    let vars2: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("run2/vars.json")).unwrap()).unwrap();
    assert_eq!(vars2["itrust_db_password"]["__ansible_unsafe"], password);
}

#[test]
fn missing_inventory_is_a_usage_error_naming_the_file_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let err = usage_error(dir.path(), &["deploy", "iTrust", "-i", "nowhere.ini"]);
    assert!(
        err.contains("nowhere.ini") && err.contains("pipeline prod up"),
        "{err}"
    );
}

#[test]
fn inventory_without_the_apps_group_names_the_group_and_the_groups_present() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("inventory.ini"),
        "[monitor]\nmonitor ansible_host=192.0.2.1\n",
    )
    .unwrap();
    let err = usage_error(dir.path(), &["deploy", "checkbox.io"]);
    assert!(
        err.contains("[checkbox]") && err.contains("monitor"),
        "{err}"
    );
}

#[test]
fn unknown_app_is_rejected_with_the_known_names() {
    let dir = tempfile::tempdir().unwrap();
    inventory(dir.path());
    let err = usage_error(dir.path(), &["deploy", "wordpress"]);
    assert!(
        err.contains("wordpress") && err.contains("iTrust or checkbox.io"),
        "{err}"
    );
}

#[test]
fn bad_source_artifact_and_extra_var_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    inventory(dir.path());
    let plain = dir.path().join("not-a-repo");
    std::fs::create_dir(&plain).unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &["deploy", "checkbox", "--source", "no/such/dir"],
            "not a git URL",
        ),
        (
            &["deploy", "itrust", "--artifact", "missing.war"],
            "missing.war",
        ),
        (
            &["deploy", "checkbox", "--artifact", "inventory.ini"],
            "iTrust only",
        ),
        (&["deploy", "itrust", "-e", "not a var"], "KEY=VALUE"),
    ];
    for (args, expected) in cases {
        let out = pipeline(dir.path()).args(*args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expected), "{args:?}: {err}");
    }
    let out = pipeline(dir.path())
        .args(["deploy", "checkbox", "--syntax-check", "--source"])
        .arg(&plain)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("must be a git checkout"), "{err}");
}

#[test]
fn local_git_source_is_bundled_by_commit_and_passed_as_a_variable() {
    let dir = tempfile::tempdir().unwrap();
    inventory(dir.path());
    let repo = dir.path().join("app");
    copy_dir(&repo_root().join("examples/checkbox-standin"), &repo);
    git(&repo, &["init", "-q"]);
    git(&repo, &["add", "-A"]);
    git(
        &repo,
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-qm",
            "standin",
        ],
    );
    let commit = String::from_utf8(
        Command::new("git")
            .arg("-C")
            .arg(&repo)
            .args(["rev-parse", "HEAD"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .to_string();
    let out = pipeline(dir.path())
        .args([
            "deploy",
            "checkbox",
            "--syntax-check",
            "--emit",
            "run",
            "--source",
            "app",
            "-e",
            "checkbox_mongodb_install=false",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let vars: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("run/vars.json")).unwrap()).unwrap();
    assert_eq!(
        vars["checkbox_source_version"]["__ansible_unsafe"],
        commit.as_str()
    );
    assert_eq!(vars["checkbox_mongodb_install"], false);
    let bundle = PathBuf::from(
        vars["checkbox_source_bundle"]["__ansible_unsafe"]
            .as_str()
            .unwrap(),
    );
    assert!(
        bundle.ends_with(format!("checkbox-{commit}.bundle")),
        "{bundle:?}"
    );
    let heads = Command::new("git")
        .args(["bundle", "list-heads"])
        .arg(&bundle)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&heads.stdout).contains(&commit));
}

#[test]
fn exported_roles_are_the_builtin_ones_and_deploy_accepts_them() {
    let dir = tempfile::tempdir().unwrap();
    inventory(dir.path());
    let out = pipeline(dir.path())
        .args(["roles", "export", "myroles"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let exported = std::fs::read(dir.path().join("myroles/mysql/tasks/secure.yml")).unwrap();
    assert_eq!(
        exported,
        std::fs::read(repo_root().join("roles/mysql/tasks/secure.yml")).unwrap()
    );
    let again = pipeline(dir.path())
        .args(["roles", "export", "myroles"])
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("--force"),
        "{}",
        text(&again)
    );

    let out = pipeline(dir.path())
        .args([
            "deploy",
            "itrust",
            "--syntax-check",
            "--emit",
            "run",
            "--roles",
            "myroles",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let cfg = std::fs::read_to_string(dir.path().join("run/ansible.cfg")).unwrap();
    assert!(cfg.contains("myroles"), "{cfg}");
    assert!(
        !dir.path().join("run/roles").exists(),
        "built-in roles were copied although --roles was given"
    );
}

#[test]
fn missing_ansible_playbook_is_reported_with_the_install_command() {
    let dir = tempfile::tempdir().unwrap();
    inventory(dir.path());
    let out = pipeline(dir.path())
        .env("PATH", dir.path())
        .args(["deploy", "itrust", "--syntax-check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    // The inventory is read through ansible-inventory, the first Ansible program a deploy needs.
    assert!(
        err.contains("`ansible-inventory` is not installed") && err.contains("setup.sh"),
        "{err}"
    );
}

#[test]
fn valid_ansible_ini_with_quotes_inline_comments_children_and_vars_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("inventory.ini"),
        r#"# hosts by role
[app_servers]
web1 ansible_host="192.0.2.10" ansible_user='root'  # the iTrust box

[itrust:children]
app_servers

[itrust:vars]
ansible_ssh_private_key_file="/keys/my key"
"#,
    )
    .unwrap();
    let out = pipeline(dir.path())
        .args(["deploy", "iTrust", "--syntax-check"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn an_inventory_ansible_cannot_parse_is_a_usage_error_quoting_ansible() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("inventory.ini"),
        "[itrust]\nitrust ansible_host\n",
    )
    .unwrap();
    let err = usage_error(dir.path(), &["deploy", "iTrust", "--syntax-check"]);
    assert!(
        err.contains("not a valid Ansible inventory") && err.contains("key=value"),
        "{err}"
    );
}

/// Stub roles for the itrust playbook that run on this machine without changing it.
fn stub_roles(dir: &Path, itrust_tasks: &str) -> PathBuf {
    let roles = dir.join("stub-roles");
    for role in ["common", "mysql", "java", "itrust"] {
        let tasks = roles.join(role).join("tasks");
        std::fs::create_dir_all(&tasks).unwrap();
        let body = if role == "itrust" {
            itrust_tasks.to_string()
        } else {
            format!("---\n- name: Reach the host from {role}\n  ansible.builtin.ping:\n")
        };
        std::fs::write(tasks.join("main.yml"), body).unwrap();
    }
    roles
}

fn local_inventory(dir: &Path) {
    std::fs::write(
        dir.join("local.ini"),
        format!(
            "[itrust]\nlocalhost ansible_connection=local ansible_python_interpreter={}\n",
            python()
        ),
    )
    .unwrap();
}

fn python() -> String {
    let out = Command::new("sh")
        .args(["-c", "command -v python3"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn successful_local_run_reports_every_role_and_task_with_zero_changed() {
    let dir = tempfile::tempdir().unwrap();
    local_inventory(dir.path());
    stub_roles(dir.path(), "---\n- name: Check something\n  ansible.builtin.command: \"true\"\n  changed_when: false\n");
    let out = pipeline(dir.path())
        .args([
            "deploy",
            "itrust",
            "-i",
            "local.ini",
            "--roles",
            "stub-roles",
            "--report",
            "report.json",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("report.json")).unwrap()).unwrap();
    assert_eq!(report["success"], true);
    assert_eq!(report["ansible_rc"], 0);
    assert_eq!(report["hosts"][0]["name"], "localhost");
    assert_eq!(report["hosts"][0]["stats"]["changed"], 0);
    let roles: Vec<&str> = report["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["role"].as_str().unwrap())
        .collect();
    // `(playbook)`: the entry playbook's own front-door and health-check tasks (skipped without an lb).
    assert_eq!(roles, ["(playbook)", "common", "mysql", "java", "itrust"]);
    let task = report["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "Check something")
        .unwrap();
    assert_eq!(task["hosts"]["localhost"]["status"], "ok");
    assert!(task["duration_secs"].as_f64().unwrap() >= 0.0);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("deploy-itrust: succeeded"), "{stdout}");
}

#[test]
fn failing_task_exits_non_zero_and_the_report_names_host_role_task_and_message() {
    let dir = tempfile::tempdir().unwrap();
    local_inventory(dir.path());
    stub_roles(
        dir.path(),
        "---\n- name: Start the app\n  ansible.builtin.command: sh -c 'echo port 8080 is taken >&2; exit 3'\n  changed_when: false\n",
    );
    let out = pipeline(dir.path())
        .args([
            "deploy",
            "itrust",
            "-i",
            "local.ini",
            "--roles",
            "stub-roles",
            "--report",
            "report.json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("report.json")).unwrap()).unwrap();
    assert_eq!(report["success"], false);
    assert_eq!(report["ansible_rc"], 2);
    let failure = &report["failures"][0];
    assert_eq!(failure["host"], "localhost");
    assert_eq!(failure["role"], "itrust");
    assert_eq!(failure["task"], "Start the app");
    assert!(
        failure["message"]
            .as_str()
            .unwrap()
            .contains("port 8080 is taken"),
        "{failure}"
    );
    assert_eq!(report["hosts"][0]["verdict"], "failed");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("FAILED on localhost: task \"Start the app\" (role itrust)"),
        "{stdout}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("failed on localhost"), "{stderr}");
}

#[test]
fn unreachable_host_exits_non_zero_and_the_report_says_which_and_why() {
    let dir = tempfile::tempdir().unwrap();
    // Port 9 on loopback: nothing listens, the connection is refused at once.
    std::fs::write(
        dir.path().join("dead.ini"),
        "[itrust]\nitrust ansible_host=127.0.0.1 ansible_port=9 ansible_user=root\n",
    )
    .unwrap();
    stub_roles(
        dir.path(),
        "---\n- name: Never reached\n  ansible.builtin.debug:\n    msg: x\n",
    );
    let out = pipeline(dir.path())
        .args([
            "deploy",
            "itrust",
            "-i",
            "dead.ini",
            "--roles",
            "stub-roles",
            "--report",
            "report.json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("report.json")).unwrap()).unwrap();
    assert_eq!(report["hosts"][0]["verdict"], "unreachable");
    let failure = &report["failures"][0];
    assert_eq!(failure["host"], "itrust");
    assert_eq!(failure["status"], "unreachable");
    assert_eq!(failure["task"], "Reach the host from common");
    assert!(
        failure["message"]
            .as_str()
            .unwrap()
            .contains("Connection refused"),
        "{failure}"
    );
}

#[test]
fn a_role_missing_from_the_roles_dir_aborts_with_ansibles_reason() {
    let dir = tempfile::tempdir().unwrap();
    local_inventory(dir.path());
    let roles = stub_roles(
        dir.path(),
        "---\n- name: X\n  ansible.builtin.debug:\n    msg: x\n",
    );
    std::fs::remove_dir_all(roles.join("java")).unwrap();
    let out = pipeline(dir.path())
        .args([
            "deploy",
            "itrust",
            "-i",
            "local.ini",
            "--roles",
            "stub-roles",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("stopped before finishing") && err.contains("java"),
        "{err}"
    );
}

fn git(repo: &Path, args: &[&str]) {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", text(&out));
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), dest).unwrap();
        }
    }
}

#[test]
fn a_missing_roles_directory_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    inventory(dir.path());
    let err = usage_error(
        dir.path(),
        &[
            "deploy",
            "iTrust",
            "--syntax-check",
            "--roles",
            "no-such-roles",
        ],
    );
    assert!(
        err.contains("roles directory no-such-roles does not exist")
            && err.contains("roles export"),
        "{err}"
    );
}

#[test]
fn printed_url_follows_the_final_variables_from_the_config_and_extra_vars() {
    let dir = tempfile::tempdir().unwrap();
    local_inventory(dir.path());
    stub_roles(
        dir.path(),
        "---\n- name: X\n  ansible.builtin.debug:\n    msg: x\n",
    );
    std::fs::write(
        dir.path().join("pipeline.toml"),
        "[deploy.vars]\nitrust_port = 8443\nitrust_context_path = \"/cfg\"\n",
    )
    .unwrap();
    let out = pipeline(dir.path())
        .args([
            "deploy",
            "iTrust",
            "-i",
            "local.ini",
            "--roles",
            "stub-roles",
            "-e",
            "itrust_port=9000",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("iTrust on localhost: http://localhost:9000/cfg\n"),
        "{stdout}"
    );
}

#[test]
fn a_port_variable_that_is_not_a_port_is_a_usage_error_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    inventory(dir.path());
    let err = usage_error(
        dir.path(),
        &[
            "deploy",
            "iTrust",
            "--syntax-check",
            "-e",
            "itrust_port=http",
        ],
    );
    assert!(
        err.contains("itrust_port") && err.contains("not a TCP port"),
        "{err}"
    );
}

#[test]
fn an_exported_playbook_edited_by_the_operator_is_what_deploy_runs() {
    let dir = tempfile::tempdir().unwrap();
    local_inventory(dir.path());
    let out = pipeline(dir.path())
        .args(["roles", "export", "myroles"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let playbook = dir.path().join("myroles/playbooks/deploy-itrust.yml");
    let builtin = std::fs::read_to_string(repo_root().join("playbooks/deploy-itrust.yml")).unwrap();
    assert_eq!(std::fs::read_to_string(&playbook).unwrap(), builtin);
    // The exported roles would change this machine: swap in stubs, and drop mysql entirely.
    let stubs = stub_roles(
        dir.path(),
        "---\n- name: X\n  ansible.builtin.debug:\n    msg: x\n",
    );
    for role in ["common", "mysql", "java", "itrust"] {
        std::fs::remove_dir_all(dir.path().join("myroles").join(role)).unwrap();
        if role != "mysql" {
            copy_dir(&stubs.join(role), &dir.path().join("myroles").join(role));
        }
    }
    // The operator's edit: no mysql role, and a check of their own after the roles.
    let edited = builtin.replace("    - role: mysql\n", "").replace(
        "  post_tasks:\n",
        "  post_tasks:\n    - name: Operator's own check\n      ansible.builtin.debug:\n        msg: edited playbook ran\n",
    );
    assert_ne!(edited, builtin);
    std::fs::write(&playbook, edited).unwrap();
    let out = pipeline(dir.path())
        .args([
            "deploy",
            "itrust",
            "-i",
            "local.ini",
            "--roles",
            "myroles",
            "--report",
            "report.json",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("report.json")).unwrap()).unwrap();
    let roles: Vec<&str> = report["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["role"].as_str().unwrap())
        .collect();
    // `(playbook)`: the entry playbook's own tasks (the front door's, skipped without an lb, and the
    // operator's check).
    assert_eq!(roles, ["(playbook)", "common", "java", "itrust"]);
    assert!(
        report["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "Operator's own check"),
        "{report}"
    );

    // Without the edited file, the same directory falls back to the built-in playbook (which needs mysql).
    std::fs::remove_file(&playbook).unwrap();
    let out = pipeline(dir.path())
        .args(["deploy", "itrust", "-i", "local.ini", "--roles", "myroles"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("mysql"),
        "{}",
        text(&out)
    );
}

#[test]
fn the_example_inventories_parse_and_give_deploy_its_groups() {
    let dir = tempfile::tempdir().unwrap();
    for (inventory, app) in [
        ("inventory/prod.ini", "iTrust"),
        ("inventory/prod.ini", "checkbox.io"),
        ("inventory/fleet/hosts.ini", "iTrust"),
        ("inventory/fleet/hosts.ini", "checkbox.io"),
    ] {
        let path = repo_root().join(inventory);
        let out = pipeline(dir.path())
            .args(["deploy", app, "--syntax-check", "-i"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(out.status.success(), "{inventory} {app}: {}", text(&out));
    }
    let listed = Command::new("ansible-inventory")
        .args(["--list", "-i"])
        .arg(repo_root().join("inventory/fleet/hosts.ini"))
        .output()
        .unwrap();
    let list: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let vars = &list["_meta"]["hostvars"]["itrust-w1"];
    assert_eq!(vars["itrust_java_opts"], "-Xms512m -Xmx1024m");
    assert_eq!(vars["ansible_ssh_private_key_file"], "~/.ssh/id_ed25519");
    assert_eq!(
        list["_meta"]["hostvars"]["checkbox-1"]["nodejs_version"],
        20
    );
}
