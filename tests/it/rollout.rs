//! `pipeline rollout` at the command line, without hosts: the plan (`--dry-run`, text and JSON) from an
//! inventory with the app's hosts and the front door, usage errors, and `status`/`resume` over a state
//! file written by the library as a rollout would leave it.

use std::path::Path;

use pipeline::rollout::state::{Phase, StateStore};

const INVENTORY: &str = "[checkbox]\ncheckbox-1 ansible_host=10.0.0.2\ncheckbox-2 ansible_host=10.0.0.3\n[lb]\nlb ansible_host=10.0.0.4\n";

fn run(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = crate::support::pipeline(dir).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_dry_run_lists_each_step_with_its_weight_between_the_canary_deploy_and_the_promotion() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("inventory.ini"), INVENTORY).unwrap();
    std::fs::write(
        dir.path().join("pipeline.toml"),
        "[rollout]\nsteps = [10, 50, 100]\nstep_time = \"20s\"\n",
    )
    .unwrap();
    let (code, out, err) = run(
        dir.path(),
        &[
            "rollout",
            "checkbox.io",
            "--ref",
            "v2",
            "--provider",
            "local",
            "--load",
            "20",
            "--dry-run",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let actions: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("  ["))
        .map(|l| l.split_whitespace().nth(1).unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "provision",
            "deploy",
            "check",
            "step",
            "step",
            "step",
            "promote",
            "retire"
        ]
    );
    assert!(out.contains("step 1/3: lb sends 10 % of the requests to checkbox-canary, 90 % to checkbox-1, checkbox-2; warm up 30 s (its requests judged on errors only), then judge every 5 s for 20 s (up to 60 s while INCONCLUSIVE), 20 synthetic req/s"), "{out}");
    assert!(out.contains("rollout-prod-checkbox.json"), "{out}");
    // Nothing was recorded.
    assert!(!dir
        .path()
        .join(".pipeline/rollout-prod-checkbox.json")
        .exists());

    let (code, json, err) = run(
        dir.path(),
        &[
            "rollout",
            "checkbox.io",
            "--ref",
            "v2",
            "--provider",
            "local",
            "--steps",
            "5,100",
            "--dry-run",
            "--json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let plan: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(plan["steps"], serde_json::json!([5, 100]));
    assert_eq!(plan["canary_host"], "checkbox-canary");
    assert_eq!(plan["front_door"], "lb");
}

#[test]
fn a_rollout_without_a_front_door_or_with_falling_steps_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("inventory.ini"),
        "[checkbox]\ncheckbox ansible_host=10.0.0.2\n",
    )
    .unwrap();
    let (code, _, err) = run(
        dir.path(),
        &[
            "rollout",
            "checkbox.io",
            "--ref",
            "v2",
            "--provider",
            "local",
            "--dry-run",
        ],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("lb") && err.contains("front door"), "{err}");
    let (code, _, err) = run(
        dir.path(),
        &[
            "rollout",
            "checkbox.io",
            "--ref",
            "v2",
            "--steps",
            "50,25",
            "--provider",
            "local",
            "--dry-run",
        ],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("must rise"), "{err}");
    let (code, _, err) = run(
        dir.path(),
        &["rollout", "checkbox.io", "--provider", "local", "--dry-run"],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--ref"), "{err}");
}

fn recorded(dir: &Path, phase: Phase) {
    let store = StateStore::new(dir.join(".pipeline"));
    let mut state = crate::support::rollout::checkbox_rollout(
        dir.join("report"),
        &["checkbox-1", "checkbox-2"],
    );
    state.phase = phase;
    state.weight = 25;
    state.canary_exists = true;
    store.save(&mut state).unwrap();
}

#[test]
fn status_shows_the_recorded_step_and_weights_and_needs_no_app_when_one_rollout_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = run(dir.path(), &["rollout", "status"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no rollout is recorded"), "{err}");

    recorded(dir.path(), Phase::Step { index: 1 });
    let (code, out, err) = run(dir.path(), &["rollout", "status"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("step 2/4 (25 % to the canary)"), "{out}");
    assert!(
        out.contains("weight: 25 % canary (checkbox-canary), 75 % stable (checkbox-1, checkbox-2)"),
        "{out}"
    );
    assert!(out.contains("process: not running"), "{out}");
    let (code, json, _) = run(dir.path(), &["rollout", "status", "checkbox.io", "--json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        (
            v["phase"].as_str(),
            v["index"].as_u64(),
            v["weight"].as_u64()
        ),
        (Some("step"), Some(1), Some(25))
    );
    let (code, _, err) = run(dir.path(), &["rollout", "status", "itrust"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn a_finished_rollout_cannot_be_resumed() {
    let dir = tempfile::tempdir().unwrap();
    recorded(
        dir.path(),
        Phase::Done {
            outcome: pipeline::rollout::state::Finished::RolledBack,
        },
    );
    let (code, _, err) = run(dir.path(), &["rollout", "resume", "checkbox.io"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("has finished (rolled back)"), "{err}");
}
