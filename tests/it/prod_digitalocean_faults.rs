//! `pipeline prod` on DigitalOcean under faults, against the fake API (tests/it/support/fake_do.rs): two `up`s
//! at once, a duplicate made by a concurrent create elsewhere, an API outage during the waits, and a closed
//! stdout/stderr.

use std::process::Stdio;

use crate::support::fake_do::{FakeDo, Fault};
use crate::support::{Work, TOKEN};

#[test]
fn two_concurrent_ups_make_exactly_three_droplets() {
    let fake = FakeDo::start(TOKEN);
    let work = Work::new();
    let runs = std::thread::scope(|s| {
        let a = s.spawn(|| work.run(&fake.url, &["prod", "up", "--wait", "active"]));
        let b = s.spawn(|| work.run(&fake.url, &["prod", "up", "--wait", "active"]));
        [a.join().unwrap(), b.join().unwrap()]
    });
    for run in &runs {
        run.assert_ok();
    }
    assert_eq!(fake.droplet_names(), ["checkbox", "itrust", "monitor"]);
    assert_eq!(
        fake.creates().len(),
        2,
        "one run created, the other adopted"
    );
    assert!(
        runs.iter().any(|r| r.stderr.contains("adopting droplet")),
        "{runs:?}"
    );
}

#[test]
fn a_duplicate_name_after_create_keeps_the_lowest_id_and_deletes_the_rest() {
    let fake = FakeDo::start(TOKEN);
    let work = Work::new();
    fake.inject("POST", "/v2/droplets", Fault::DuplicateBefore);
    let run = work.run(&fake.url, &["prod", "up", "--wait", "active"]);
    run.assert_ok();
    let ids = fake.ids("itrust");
    assert_eq!(ids.len(), 1, "{ids:?}");
    let kept = ids[0];
    let deleted: Vec<String> = fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "DELETE" && r.path.starts_with("/v2/droplets/"))
        .map(|r| r.path)
        .collect();
    assert_eq!(deleted, [format!("/v2/droplets/{}", kept + 1)]);
    assert!(
        run.stderr.contains(&format!(
            "2 droplets named itrust carry tag pipeline-prod: keeping id {kept} (the lowest), deleting {}",
            kept + 1
        )),
        "{}",
        run.stderr
    );
    assert_eq!(fake.droplet_names(), ["checkbox", "itrust", "monitor"]);
    let state =
        std::fs::read_to_string(work.path().join(".pipeline/digitalocean-prod.json")).unwrap();
    assert!(state.contains(&format!("\"itrust\": {kept}")), "{state}");
}

#[test]
fn an_api_outage_during_the_wait_is_waited_out_until_the_deadline() {
    let fake = FakeDo::start(TOKEN);
    let work = Work::new();
    // After up's adoption listing, twelve failed listings in a row in the wait:
    // three times the client's four tries.
    fake.outage("GET", "/v2/droplets", 1, 4, Fault::Html500);
    fake.outage("GET", "/v2/droplets", 1, 4, Fault::Disconnect);
    fake.outage(
        "GET",
        "/v2/droplets",
        1,
        4,
        Fault::RateLimit { retry_after: 0 },
    );
    let run = work.run(&fake.url, &["prod", "up", "--wait", "active"]);
    run.assert_ok();
    assert!(
        run.stderr.contains("still waiting until the deadline"),
        "{}",
        run.stderr
    );
    assert!(work.inventory().is_some());
}

#[test]
fn an_outage_that_outlasts_the_wait_ends_with_the_timeout_naming_the_api() {
    let fake = FakeDo::start(TOKEN);
    let work = Work::new();
    fake.outage("GET", "/v2/droplets", 1, 100_000, Fault::Html500);
    let run = work.run(
        &fake.url,
        &["prod", "up", "--wait", "active", "--timeout", "1s"],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("timed out after 1s")
            && run.stderr.contains("the DigitalOcean API did not answer"),
        "{}",
        run.stderr
    );
}

#[test]
fn an_api_outage_while_down_waits_for_the_deletes_is_waited_out() {
    let fake = FakeDo::start(TOKEN);
    let work = Work::new();
    work.run(&fake.url, &["prod", "up", "--wait", "active"])
        .assert_ok();
    // down lists once, deletes by tag, then polls: the polls fail twelve times first.
    fake.outage("GET", "/v2/droplets", 1, 6, Fault::Disconnect);
    fake.outage("GET", "/v2/droplets", 1, 6, Fault::Html500);
    let run = work.run(&fake.url, &["prod", "down"]);
    run.assert_ok();
    assert!(fake.droplet_names().is_empty());
}

#[test]
fn prod_up_with_stdout_and_stderr_a_closed_pipe_does_not_panic_and_writes_the_inventory() {
    let fake = FakeDo::start(TOKEN);
    let work = Work::new();
    let mut child = work
        .command()
        .args(["prod", "up", "--wait", "active"])
        .env("DIGITALOCEAN_API_URL", &fake.url)
        .env("DIGITALOCEAN_TOKEN", TOKEN)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Like `| head -0`: nobody reads, the pipes are closed at once.
    drop(child.stdout.take());
    drop(child.stderr.take());
    let status = child.wait().unwrap();
    // Everything was done; only printing the result failed (exit 1), never a panic (101).
    assert!(matches!(status.code(), Some(0 | 1)), "{status:?}");
    assert!(work.inventory().is_some(), "inventory written");
}
