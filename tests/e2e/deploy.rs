//! e2e: `pipeline deploy` with real ansible-playbook on sandbox hosts: both stand-in apps, checked over
//! HTTP from this machine, in both iTrust runtimes; a redeploy reports 0 changed; a failing task and an
//! unreachable (destroyed) host give a non-zero exit and a report naming host and task.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

use crate::common::{self, Sandbox};

fn pipeline(sandbox: &Sandbox, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pipeline"))
        .current_dir(&sandbox.work)
        .env_remove("PIPELINE_CONFIG")
        .arg("--state-dir")
        .arg(sandbox.work.join(".pipeline"))
        .args(args)
        .arg("-i")
        .arg(&sandbox.inventory)
        .output()
        .expect("pipeline runs")
}

fn show(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs a deploy that must succeed and returns its JSON report.
fn deploy_ok(sandbox: &Sandbox, report: &str, args: &[&str]) -> Value {
    let path = sandbox.work.join(report);
    let mut all: Vec<&str> = args.to_vec();
    let path_arg = path.display().to_string();
    all.extend(["--report", &path_arg]);
    let out = pipeline(sandbox, &all);
    assert!(
        out.status.success(),
        "deploy {args:?} failed:\n{}",
        show(&out)
    );
    let report: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(report["success"], true, "{report:#}");
    report
}

fn changed(report: &Value) -> u64 {
    report["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["stats"]["changed"].as_u64().unwrap())
        .sum()
}

/// What changed in a report, for assertion messages.
fn changed_tasks(report: &Value) -> Vec<String> {
    report["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| {
            t["hosts"]
                .as_object()
                .unwrap()
                .values()
                .any(|r| r["status"] == "changed")
        })
        .map(|t| {
            format!(
                "{} : {}",
                t["role"].as_str().unwrap_or("-"),
                t["name"].as_str().unwrap()
            )
        })
        .collect()
}

fn http_get(url: &str) -> (u16, String) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(15))
            .build()
            .unwrap();
        let resp = client
            .get(url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        let status = resp.status().as_u16();
        (status, resp.text().await.unwrap_or_default())
    })
}

fn standin_war(sandbox: &Sandbox) -> PathBuf {
    common::example_apps(sandbox).0
}

fn standin_repo(sandbox: &Sandbox) -> PathBuf {
    common::example_apps(sandbox).1
}

fn assert_itrust_answers(sandbox: &Sandbox, runtime: &str) {
    let url = format!("http://{}:8080/iTrust2", sandbox.ip("itrust"));
    let (status, body) = http_get(&url);
    assert_eq!(status, 200, "GET {url}: {body}");
    let json: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{url}: {e}: {body}"));
    assert_eq!(json["db"], "ok", "{body}");
    assert_eq!(json["runtime"], runtime, "{body}");
    assert_eq!(json["database"], "iTrust2", "{body}");
}

#[test]
#[ignore = "needs root and the local sandbox; run by scripts/e2e.sh"]
fn itrust_standin_runs_in_the_distributions_tomcat_then_with_java_jar_answers_with_a_db_round_trip_and_redeploys_with_zero_changed(
) {
    let sandbox = common::prod();
    let war = standin_war(sandbox).display().to_string();
    deploy_ok(
        sandbox,
        "itrust-tomcat.json",
        &[
            "deploy",
            "iTrust",
            "--artifact",
            &war,
            "-e",
            "itrust_runtime=tomcat",
        ],
    );
    assert_itrust_answers(sandbox, "tomcat");
    let again = deploy_ok(
        sandbox,
        "itrust-tomcat-2.json",
        &[
            "deploy",
            "iTrust",
            "--artifact",
            &war,
            "-e",
            "itrust_runtime=tomcat",
        ],
    );
    assert_eq!(
        changed(&again),
        0,
        "redeploy changed: {:?}",
        changed_tasks(&again)
    );

    // Back to java -jar (the default runtime), which then redeploys with zero changed too. (One test, not
    // two: a separate java -jar test's first deploy came right after this switch back and was a no-op.)
    deploy_ok(
        sandbox,
        "itrust-back.json",
        &["deploy", "iTrust", "--artifact", &war],
    );
    assert_itrust_answers(sandbox, "embedded");
    let second = deploy_ok(
        sandbox,
        "itrust-2.json",
        &["deploy", "itrust", "--artifact", &war],
    );
    assert_eq!(
        changed(&second),
        0,
        "redeploy changed: {:?}",
        changed_tasks(&second)
    );
    assert_itrust_answers(sandbox, "embedded");
}

#[test]
#[ignore = "needs root and the local sandbox; run by scripts/e2e.sh"]
fn checkbox_standin_from_a_local_git_checkout_serves_site_and_api_with_mongo_env_and_redeploys_with_zero_changed(
) {
    let sandbox = common::prod();
    let repo = standin_repo(sandbox).display().to_string();
    let args = [
        "deploy",
        "checkbox.io",
        "--source",
        &repo,
        "-e",
        "checkbox_mongodb_install=false",
    ];
    deploy_ok(sandbox, "checkbox-1.json", &args);

    let ip = sandbox.ip("checkbox");
    let (status, body) = http_get(&format!("http://{ip}/"));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("checkbox.io stand-in"), "{body}");
    let (status, body) = http_get(&format!("http://{ip}/api/env"));
    assert_eq!(status, 200, "{body}");
    let api: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(api["app"], "checkbox-standin", "{body}");
    let env = &api["env"];
    assert_eq!(env["APP_PORT"], "3002", "{body}");
    assert_eq!(env["MONGO_IP"], "127.0.0.1", "{body}");
    assert_eq!(env["MONGO_PORT"], "27017", "{body}");
    assert_eq!(env["MONGO_USER"], "checkbox", "{body}");
    assert_eq!(env["MONGO_PASSWORD"], "set", "{body}");
    // pm2 is registered to bring the app back at boot.
    let enabled = sandbox.ssh("checkbox", "systemctl is-enabled pm2-checkbox");
    assert_eq!(enabled.stdout.trim(), "enabled", "{}", enabled.stderr);

    // The stand-in tracks a lockfile v1 as checkbox.io does: npm must leave it (and the checkout) alone.
    let status = sandbox.ssh(
        "checkbox",
        "git -c safe.directory='*' -C /opt/checkbox/app status --porcelain && head -c 200 /opt/checkbox/app/server-side/site/package-lock.json",
    );
    assert!(
        status.stdout.trim_start().starts_with('{')
            && status.stdout.contains("\"lockfileVersion\": 1"),
        "the checkout is dirty or the lockfile was rewritten: {}{}",
        status.stdout,
        status.stderr
    );

    let second = deploy_ok(sandbox, "checkbox-2.json", &args);
    assert_eq!(
        changed(&second),
        0,
        "redeploy changed: {:?}",
        changed_tasks(&second)
    );
}

#[test]
#[ignore = "needs root and the local sandbox; run by scripts/e2e.sh"]
fn failing_task_exits_non_zero_with_a_report_naming_host_and_task() {
    let sandbox = common::prod();
    let war = standin_war(sandbox).display().to_string();
    let report_path = sandbox.work.join("itrust-failing.json");
    let report_arg = report_path.display().to_string();
    let out = pipeline(
        sandbox,
        &[
            "deploy",
            "iTrust",
            "--artifact",
            &war,
            "-e",
            "itrust_runtime=wildfly",
            "--report",
            &report_arg,
        ],
    );
    assert_eq!(out.status.code(), Some(4), "{}", show(&out));
    let report: Value = serde_json::from_slice(&std::fs::read(&report_path).unwrap()).unwrap();
    assert_eq!(report["success"], false);
    let failure = &report["failures"][0];
    assert_eq!(failure["host"], "itrust", "{report:#}");
    assert_eq!(failure["role"], "itrust", "{report:#}");
    assert_eq!(failure["task"], "Check the settings", "{report:#}");
    assert!(
        failure["message"]
            .as_str()
            .unwrap()
            .contains("itrust_runtime must be jar or tomcat"),
        "{failure}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("FAILED on itrust: task \"Check the settings\""),
        "{stdout}"
    );
}

#[test]
#[ignore = "needs root and the local sandbox; run by scripts/e2e.sh"]
fn unreachable_host_exits_non_zero_with_a_report_naming_it() {
    // A host of its own, destroyed before the deploy: its inventory entry points at nothing.
    let env = common::test_env("deploy-gone");
    let sandbox = common::up(&env);
    common::down(&env);
    let report_path = sandbox.work.join("unreachable.json");
    let report_arg = report_path.display().to_string();
    let out = pipeline(&sandbox, &["deploy", "iTrust", "--report", &report_arg]);
    assert_eq!(out.status.code(), Some(4), "{}", show(&out));
    let report: Value = serde_json::from_slice(&std::fs::read(&report_path).unwrap()).unwrap();
    assert_eq!(report["hosts"][0]["name"], "itrust", "{report:#}");
    assert_eq!(report["hosts"][0]["verdict"], "unreachable", "{report:#}");
    let failure = &report["failures"][0];
    assert_eq!(failure["status"], "unreachable", "{report:#}");
    assert_eq!(failure["task"], "Make sure sudo is installed", "{report:#}");
    assert!(
        failure["message"].as_str().unwrap().contains("ssh"),
        "{failure}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("failed on itrust (unreachable)"),
        "{stderr}"
    );
}
