//! What a user (or another user of the machine) supplies never runs or is trusted: template markers in
//! branch names and `-e` values reach the host as text through real ansible-playbook runs on this machine
//! (`ansible_connection=local`, stub roles); planted directories and readable secrets are refused; secret
//! environment variables never reach a child; run and state directories are 0700.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use pipeline::ansible::{PlaybookRun, RolesSource};
use pipeline::canary::run::{self, ArmDeploy};
use pipeline::canary::source::RepoClone;

use crate::support::output_text as text;
use crate::support::quiet_pipeline as pipeline;
fn python() -> String {
    let out = Command::new("sh")
        .args(["-c", "command -v python3"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// A test directory whose path git accepts inside a branch name (no component starting with `.`).
fn plain_tempdir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("sec").tempdir().unwrap()
}

/// Roles named `names` whose only task is `tasks` (the same for each).
fn stub_roles(dir: &Path, names: &[&str], tasks: impl Fn(&str) -> String) -> PathBuf {
    let roles = dir.join("stub-roles");
    for role in names {
        let d = roles.join(role).join("tasks");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("main.yml"), tasks(role)).unwrap();
    }
    roles
}

fn itrust_inventory(dir: &Path) {
    std::fs::write(
        dir.join("local.ini"),
        format!(
            "[itrust]\nlocalhost ansible_connection=local ansible_python_interpreter={}\n",
            python()
        ),
    )
    .unwrap();
}

#[test]
fn extra_vars_with_template_markers_arrive_on_the_host_literally() {
    let dir = plain_tempdir();
    let out_file = dir.path().join("received.json");
    let pwned = dir.path().join("pwned");
    itrust_inventory(dir.path());
    stub_roles(dir.path(), &["common", "mysql", "java", "itrust"], |role| {
        match role {
            "itrust" => format!(
                "---\n- name: Write what arrived\n  ansible.builtin.copy:\n    dest: {}\n    mode: \"0600\"\n    content: \"{{{{ {{'a': lit_a, 'b': lit_b, 'c': lit_c, 'd': lit_d}} | to_json }}}}\"\n",
                out_file.display()
            ),
            _ => "---\n- name: Nothing\n  ansible.builtin.meta: noop\n".to_string(),
        }
    });
    let lookup = format!("{{{{ lookup('pipe', 'touch {}') }}}}", pwned.display());
    let out = pipeline(dir.path())
        .args([
            "deploy",
            "itrust",
            "-i",
            "local.ini",
            "--roles",
            "stub-roles",
        ])
        .args(["-e", "lit_a=ab{#cd", "-e", "lit_b={{ 7*7 }}"])
        .args(["-e", r#"lit_c=["{{ 7*7 }}", {"k": "ab{#cd", "n": 3}]"#])
        .arg("-e")
        .arg(format!("lit_d={lookup}"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let got: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&out_file).unwrap()).unwrap();
    assert_eq!(
        got,
        serde_json::json!({
            "a": "ab{#cd",
            "b": "{{ 7*7 }}",
            "c": ["{{ 7*7 }}", {"k": "ab{#cd", "n": 3}],
            "d": lookup,
        })
    );
    assert!(!pwned.exists(), "an -e value ran as a template");
}

#[test]
fn extra_var_keys_with_template_markers_are_a_usage_error() {
    let dir = plain_tempdir();
    itrust_inventory(dir.path());
    std::fs::write(dir.path().join("v.json"), r#"{"m": {"{{ x }}": 1}}"#).unwrap();
    let out = pipeline(dir.path())
        .args(["deploy", "itrust", "-i", "local.ini", "--syntax-check"])
        .args(["-e", "@v.json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("m.{{ x }}"), "{}", text(&out));
}

fn git(repo: &Path, args: &[&str]) {
    let st = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["-c", "user.name=t", "-c", "user.email=t@t"])
        .args(args)
        .status()
        .unwrap();
    assert!(st.success(), "git {args:?}");
}

#[test]
fn branch_name_with_a_template_is_text_in_the_canary_run_not_a_command() {
    let dir = plain_tempdir();
    let pwned = dir.path().join("pwned");
    // Git refuses spaces in branch names, not braces, quotes, parentheses or `>`.
    let branch = format!("x{{{{lookup('pipe','id>{}')}}}}", pwned.display());
    let repo = dir.path().join("repo");
    std::fs::create_dir(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "master"]);
    std::fs::write(repo.join("index.js"), "// service\n").unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-qm", "one"]);
    git(&repo, &["branch", &branch]);

    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let src = RepoClone::fetch(&repo.display().to_string(), &work).unwrap();
    let arm = |label: &str, host: &str, b: &str| {
        let e = src.export(b, &work).unwrap();
        ArmDeploy {
            label: label.into(),
            host: host.into(),
            address: "127.0.0.1".parse().unwrap(),
            branch: e.branch,
            commit: e.commit,
            release: e.tree,
            archive: e.archive.display().to_string(),
        }
    };
    let baseline = arm(run::BASELINE_LABEL, run::BASELINE_HOST, "master");
    let canary = arm(run::CANARY_LABEL, run::CANARY_HOST, &branch);
    assert_eq!(canary.branch, branch);

    let inventory = dir.path().join("inventory.ini");
    let py = python();
    std::fs::write(
        &inventory,
        format!(
            "[blue]\nblue ansible_connection=local ansible_python_interpreter={py}\n[green]\ngreen ansible_connection=local ansible_python_interpreter={py}\n[proxy]\nproxy ansible_connection=local ansible_python_interpreter={py}\n"
        ),
    )
    .unwrap();
    let seen = dir.path().join("seen");
    std::fs::create_dir(&seen).unwrap();
    let roles = stub_roles(
        dir.path(),
        &["node_exporter", "preview_service", "canary_proxy"],
        |role| {
            let what = match role {
                "preview_service" => "{{ {'archive': preview_service_archive, 'release': preview_service_release} | to_json }}",
                "canary_proxy" => "{{ {'percent': canary_proxy_canary_percent, 'canary': canary_proxy_canary} | to_json }}",
                _ => "{{ 'node_exporter' | to_json }}",
            };
            format!(
                "---\n- name: Record what {role} got\n  ansible.builtin.copy:\n    dest: \"{}/{role}-{{{{ inventory_hostname }}}}.json\"\n    mode: \"0600\"\n    content: \"{what}\"\n",
                seen.display()
            )
        },
    );
    let mut playbook = PlaybookRun::new(
        "canary",
        run::PLAYBOOK,
        &inventory,
        dir.path().join("state"),
    );
    playbook.extra_vars = run::playbook_vars(&baseline, &canary, 30);
    playbook.roles = RolesSource::Dir(roles);
    let report = playbook.run(&pipeline::ui::Ui::new(true)).unwrap();
    assert!(report.success, "{}", report.render_text());
    assert!(!pwned.exists(), "the branch name ran as a template");
    let green: serde_json::Value =
        serde_json::from_slice(&std::fs::read(seen.join("preview_service-green.json")).unwrap())
            .unwrap();
    assert_eq!(green["archive"], canary.archive.as_str());
    let proxy: serde_json::Value =
        serde_json::from_slice(&std::fs::read(seen.join("canary_proxy-proxy.json")).unwrap())
            .unwrap();
    assert_eq!(proxy["percent"], 30);
    assert_eq!(proxy["canary"], "127.0.0.1:3000");
    // The play name as Ansible reported it holds the branch literally.
    let json = serde_json::to_string(&report).unwrap();
    assert!(
        json.contains(&serde_json::to_string(&branch).unwrap()[1..branch.len()]),
        "{json}"
    );
}

fn deploy_syntax_check(dir: &Path, extra: &[&str]) -> Output {
    pipeline(dir)
        .args(["deploy", "itrust", "-i", "local.ini", "--syntax-check"])
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn an_existing_emit_dir_is_never_reused_and_a_fresh_one_is_0700() {
    let dir = plain_tempdir();
    itrust_inventory(dir.path());
    let out = deploy_syntax_check(dir.path(), &["--emit", "run"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(mode(&dir.path().join("run")), 0o700);
    // A directory planted there (here: world-writable, with a callback plugin in it) is refused.
    let planted = dir.path().join("planted");
    std::fs::create_dir_all(planted.join("callback_plugins")).unwrap();
    std::fs::write(
        planted.join("callback_plugins/evil.py"),
        "raise SystemExit(9)\n",
    )
    .unwrap();
    std::fs::set_permissions(&planted, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = deploy_syntax_check(dir.path(), &["--emit", "planted"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("refusing to reuse emit directory planted") && err.contains("remove it"),
        "{err}"
    );
}

#[test]
fn a_state_dir_writable_by_others_or_owned_by_another_user_is_refused() {
    let dir = plain_tempdir();
    itrust_inventory(dir.path());
    let state = dir.path().join(".pipeline");
    std::fs::create_dir(&state).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = deploy_syntax_check(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(".pipeline")
            && err.contains("writable by group or others (mode 0777)")
            && err.contains("chmod go-w"),
        "{err}"
    );

    if pipeline::fsutil::euid() == 0 {
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).unwrap();
        let st = Command::new("chown")
            .arg("nobody")
            .arg(&state)
            .status()
            .unwrap();
        assert!(st.success());
        let out = deploy_syntax_check(dir.path(), &[]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(".pipeline") && err.contains("not by you") && err.contains("chown"),
            "{err}"
        );
    }
}

#[test]
fn a_world_readable_or_foreign_secret_is_refused_not_used() {
    let dir = plain_tempdir();
    itrust_inventory(dir.path());
    let secrets = dir.path().join(".pipeline/secrets");
    std::fs::create_dir_all(&secrets).unwrap();
    let secret = secrets.join("itrust-db-password");
    std::fs::write(&secret, "planted-password\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = deploy_syntax_check(dir.path(), &["--emit", "run"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("itrust-db-password")
            && err.contains("mode is 0644")
            && err.contains("chmod 600"),
        "{err}"
    );
    assert!(!dir.path().join("run").exists());
    if pipeline::fsutil::euid() == 0 {
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(Command::new("chown")
            .arg("nobody")
            .arg(&secret)
            .status()
            .unwrap()
            .success());
        let out = deploy_syntax_check(dir.path(), &[]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert!(text(&out).contains("not by you"), "{}", text(&out));
    }
}

#[test]
fn secrets_in_the_environment_never_reach_ansible_and_run_dirs_are_0700() {
    let dir = plain_tempdir();
    std::fs::write(
        dir.path().join("local.ini"),
        "[checkbox]\nlocalhost ansible_connection=local\n",
    )
    .unwrap();
    // A fake ansible-playbook that records its environment and the mode of its run directory.
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let dump = dir.path().join("dump");
    let fake = bin.join("ansible-playbook");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\nenv > {d}.env\nstat -c %a . > {d}.mode\ncp vars.json {d}.vars\nexit 0\n",
            d = dump.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let _ = pipeline(dir.path())
        .env("PATH", path)
        .env("PIPELINE_MAIL_PASSWORD", "mail-s3cret")
        .env("PIPELINE_MAIL_USER", "mailer@example.org")
        .env("DIGITALOCEAN_ACCESS_TOKEN", "dop_v1_s3cret")
        .args(["deploy", "checkbox", "-i", "local.ini"])
        .output()
        .unwrap();
    let env = std::fs::read_to_string(dump.with_extension("env")).unwrap();
    for secret in [
        "mail-s3cret",
        "mailer@example.org",
        "dop_v1_s3cret",
        "PIPELINE_MAIL",
    ] {
        assert!(
            !env.contains(secret),
            "{secret} reached ansible-playbook:\n{env}"
        );
    }
    // The mail password still reaches the roles, through the 0600 vars file.
    let vars = std::fs::read_to_string(dump.with_extension("vars")).unwrap();
    assert!(vars.contains("mail-s3cret"), "{vars}");
    // The temporary run directory and the state directory are private whatever the umask.
    assert_eq!(
        std::fs::read_to_string(dump.with_extension("mode"))
            .unwrap()
            .trim(),
        "700"
    );
    assert_eq!(mode(&dir.path().join(".pipeline")), 0o700);
    assert_eq!(mode(&dir.path().join(".pipeline/secrets")), 0o700);
}
