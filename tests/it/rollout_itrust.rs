//! `pipeline rollout iTrust` at the command line, without hosts: from a ref or a WAR (checked and recorded
//! by its absolute path before anything is made), on a fleet of one host or of three, with the
//! promotion's batches from `[deploy] serial` and the canary's health check at iTrust's port and context
//! path (following `-e`).

use std::path::Path;

use crate::support::{output_text, pipeline};

fn dry_run(dir: &Path, args: &[&str]) -> serde_json::Value {
    let out = pipeline(dir)
        .args([
            "rollout",
            "iTrust",
            "--provider",
            "local",
            "--dry-run",
            "--json",
        ])
        .args(args)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", output_text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn what(plan: &serde_json::Value, action: &str) -> String {
    plan["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["action"] == action)
        .unwrap_or_else(|| panic!("no {action} in {plan:#}"))["what"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn an_itrust_rollout_of_a_war_on_one_host_checks_the_canary_at_its_context_path_and_promotes_that_host(
) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("inventory.ini"),
        "[itrust]\nitrust ansible_host=10.0.0.2\n[lb]\nlb ansible_host=10.0.0.4\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("iTrust2.war"), "PK\u{3}\u{4}").unwrap();
    let plan = dry_run(dir.path(), &["--artifact", "iTrust2.war"]);
    let war = std::fs::canonicalize(dir.path().join("iTrust2.war")).unwrap();
    assert_eq!(plan["app"], "itrust");
    assert_eq!(plan["version"], format!("WAR {}", war.display()));
    assert_eq!(plan["canary_host"], "itrust-canary");
    assert_eq!(plan["stable_hosts"], serde_json::json!(["itrust"]));
    assert_eq!(plan["promotion_batches"], serde_json::json!([["itrust"]]));
    assert!(
        what(&plan, "check").contains("GET :8080/iTrust2/ until 2xx, up to 60 s"),
        "{plan:#}"
    );
    assert!(
        what(&plan, "deploy").contains(&format!("deploy WAR {} on itrust-canary", war.display())),
        "{plan:#}"
    );
    // `-e` moves the app, and the check with it.
    let plan = dry_run(
        dir.path(),
        &[
            "--ref",
            "v8",
            "-e",
            "itrust_port=9000",
            "-e",
            "itrust_context_path=/app",
        ],
    );
    assert!(
        plan["version"]
            .as_str()
            .unwrap()
            .starts_with("ref v8 of the app's upstream repository"),
        "{plan:#}"
    );
    assert!(what(&plan, "check").contains("GET :9000/app/"), "{plan:#}");
    assert!(!dir
        .path()
        .join(".pipeline/rollout-prod-itrust.json")
        .exists());
}

#[test]
fn an_itrust_rollout_on_three_hosts_promotes_in_the_batches_of_deploy_serial() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("inventory.ini"),
        "[itrust]\nitrust-1 ansible_host=10.0.0.2\nitrust-2 ansible_host=10.0.0.3\nitrust-3 ansible_host=10.0.0.5\n[lb]\nlb ansible_host=10.0.0.4\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("pipeline.toml"),
        "[deploy]\nserial = [1, \"100%\"]\n",
    )
    .unwrap();
    let plan = dry_run(dir.path(), &["--ref", "v8"]);
    assert_eq!(
        plan["promotion_batches"],
        serde_json::json!([["itrust-1"], ["itrust-2", "itrust-3"]])
    );
    assert!(
        what(&plan, "promote")
            .contains("in 2 batches ([deploy] serial: itrust-1, then itrust-2 + itrust-3)"),
        "{plan:#}"
    );
    assert!(
        what(&plan, "step").contains("95 % to itrust-1, itrust-2, itrust-3"),
        "{plan:#}"
    );
}

#[test]
fn an_itrust_rollout_of_a_missing_war_or_a_bad_port_is_refused_before_anything_is_made() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("inventory.ini"),
        "[itrust]\nitrust ansible_host=10.0.0.2\n[lb]\nlb ansible_host=10.0.0.4\n",
    )
    .unwrap();
    for (args, says) in [
        (
            vec!["--artifact", "target/iTrust2-0.0.1-SNAPSHOT.war"],
            "--artifact target/iTrust2-0.0.1-SNAPSHOT.war: no such file",
        ),
        (
            vec!["--ref", "v8", "-e", "itrust_port=http"],
            "itrust_port = \"http\" is not a TCP port",
        ),
    ] {
        // Not a dry run: the refusal comes before any host or state.
        let out = pipeline(dir.path())
            .args(["rollout", "iTrust", "--provider", "local"])
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", output_text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{err}");
        assert!(!dir
            .path()
            .join(".pipeline/rollout-prod-itrust.json")
            .exists());
    }
}
