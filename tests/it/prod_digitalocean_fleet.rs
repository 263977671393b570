//! Fleets on DigitalOcean (`[prod.hosts.<app>] count`), driven through the real binary against the fake API
//! (tests/it/support/fake_do.rs): multi-create in chunks of at most ten names, every droplet tagged, re-runs
//! adopting them all, one listing per poll interval whatever the count, no duplicates under injected
//! faults, and `--prune` deleting exactly the hosts beyond a lowered count.

use std::collections::BTreeSet;

use crate::support::fake_do::{FakeDo, Fault};
use crate::support::{Work, FINGERPRINT, PUBLIC_KEY, TOKEN};
use serde_json::{json, Value};

const TWELVE: &str = "[prod.hosts.checkbox]\ncount = 12\n";

fn expected_names(count: u32) -> Vec<String> {
    let mut names: Vec<String> = (1..=count).map(|i| format!("checkbox-{i}")).collect();
    names.extend(["itrust", "lb", "monitor"].map(String::from));
    names.sort();
    names
}

fn list_count(fake: &FakeDo) -> usize {
    fake.count("GET", "/v2/droplets")
}

fn inventory_groups(work: &Work) -> std::collections::BTreeMap<String, Vec<String>> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inventory.ini");
    std::fs::write(&path, work.inventory().expect("inventory written")).unwrap();
    let inv = pipeline::inventory::Inventory::load(&path).unwrap();
    inv.groups
        .into_iter()
        .map(|(g, hs)| (g, hs.into_iter().map(|h| h.name).collect()))
        .collect()
}

#[test]
fn count_12_creates_in_chunks_of_at_most_ten_tagged_and_a_rerun_adopts_them_all() {
    let fake = FakeDo::start(TOKEN);
    let work = Work::new();
    work.write_config(TWELVE);
    work.run(&fake.url, &["prod", "up", "--wait", "active"])
        .assert_ok();

    let creates = fake.creates();
    let mut sent: Vec<String> = Vec::new();
    for c in &creates {
        let names = c["names"].as_array().unwrap();
        assert!(names.len() <= 10, "at most ten names per request: {c}");
        assert_eq!(c["tags"], json!(["pipeline", "pipeline-prod"]));
        assert_eq!(c["ssh_keys"], json!([FINGERPRINT]));
        sent.extend(names.iter().map(|n| n.as_str().unwrap().to_string()));
    }
    let sizes: Vec<usize> = creates
        .iter()
        .map(|c| c["names"].as_array().unwrap().len())
        .collect();
    // itrust alone (its own size); 12 checkbox hosts + monitor + lb share one spec: 10 + 4.
    assert_eq!(sizes, vec![1, 10, 4], "{creates:?}");
    sent.sort();
    assert_eq!(sent, expected_names(12), "each host created exactly once");
    assert_eq!(fake.droplet_names(), expected_names(12));
    // The adoption check, then three polls: the same four listings as for three hosts.
    assert_eq!(list_count(&fake), 4);

    let groups = inventory_groups(&work);
    assert_eq!(groups["checkbox"].len(), 12);
    assert_eq!(groups["checkbox"][0], "checkbox-1");
    assert_eq!(groups["checkbox"][11], "checkbox-12");
    assert_eq!(groups["lb"], vec!["lb"]);

    let before = creates.len();
    let run = work.run(&fake.url, &["prod", "up", "--wait", "active"]);
    run.assert_ok();
    assert_eq!(fake.creates().len(), before, "the re-run creates nothing");
    assert_eq!(fake.droplet_names(), expected_names(12));
    assert!(
        run.stdout
            .contains("front door (lb): checkbox http://127.0.10."),
        "{}",
        run.stdout
    );
}

#[test]
fn a_fake_like_the_real_api_refuses_more_than_ten_names_in_one_create() {
    let fake = FakeDo::start(TOKEN);
    let body = json!({
        "names": (1..=11).map(|i| format!("h{i}")).collect::<Vec<_>>(),
        "region": "nyc1", "size": "s-1vcpu-1gb", "image": "ubuntu-24-04-x64", "tags": ["pipeline"]
    });
    let status = std::process::Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST"])
        .args(["-H", &format!("Authorization: Bearer {TOKEN}")])
        .args([
            "-H",
            "Content-Type: application/json",
            "-d",
            &body.to_string(),
        ])
        .arg(format!("{}/v2/droplets", fake.url))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&status.stdout), "422");
    assert!(fake.droplet_names().is_empty());
}

#[test]
fn count_12_under_rate_limits_and_html_500s_makes_no_duplicate() {
    let fake = FakeDo::start(TOKEN);
    fake.add_key(FINGERPRINT, PUBLIC_KEY);
    fake.inject("POST", "/v2/droplets", Fault::RateLimit { retry_after: 0 });
    fake.inject("GET", "/v2/droplets", Fault::Html500);
    fake.inject("POST", "/v2/droplets", Fault::CreateThen500);
    fake.inject("GET", "/v2/droplets", Fault::RateLimit { retry_after: 0 });
    fake.inject("POST", "/v2/droplets", Fault::Html500);
    fake.set_listing_lag(1);
    let work = Work::new();
    work.write_config(TWELVE);
    let run = work.run(&fake.url, &["prod", "up", "--wait", "active"]);
    run.assert_ok();
    let names = fake.droplet_names();
    let distinct: BTreeSet<&String> = names.iter().collect();
    assert_eq!(distinct.len(), names.len(), "no duplicate: {names:?}");
    assert_eq!(names, expected_names(12));
    for c in fake.creates() {
        assert!(c["names"].as_array().unwrap().len() <= 10, "{c}");
    }
    // A re-run still finds exactly one droplet per name.
    work.run(&fake.url, &["prod", "up", "--wait", "active"])
        .assert_ok();
    assert_eq!(fake.droplet_names(), expected_names(12));
}

#[test]
fn lowering_the_count_lists_the_extras_and_prune_deletes_exactly_them() {
    let fake = FakeDo::start(TOKEN);
    let work = Work::new();
    work.write_config(TWELVE);
    work.run(&fake.url, &["prod", "up", "--wait", "active"])
        .assert_ok();

    work.write_config("[prod.hosts.checkbox]\ncount = 10\n");
    let run = work.run(&fake.url, &["prod", "up", "--wait", "active"]);
    run.assert_ok();
    assert!(
        run.stderr
            .contains("checkbox-11, checkbox-12 beyond the configured hosts")
            && run.stderr.contains("--prune"),
        "{}",
        run.stderr
    );
    assert_eq!(
        fake.droplet_names(),
        expected_names(12),
        "nothing destroyed silently"
    );
    assert_eq!(fake.count("DELETE", "/v2/droplets"), 0);
    assert_eq!(
        inventory_groups(&work)["checkbox"].len(),
        10,
        "the extras leave the inventory"
    );

    let ids: Vec<String> = {
        let listing: Value = serde_json::from_str(
            &work
                .run(&fake.url, &["prod", "status", "--json"])
                .assert_ok()
                .stdout,
        )
        .unwrap();
        listing["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|h| ["checkbox-11", "checkbox-12"].contains(&h["name"].as_str().unwrap()))
            .map(|h| h["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids.len(), 2);
    let run = work.run(&fake.url, &["prod", "up", "--wait", "active", "--prune"]);
    run.assert_ok();
    let deletes: BTreeSet<String> = fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "DELETE")
        .map(|r| r.path)
        .collect();
    let wanted: BTreeSet<String> = ids.iter().map(|id| format!("/v2/droplets/{id}")).collect();
    assert_eq!(deletes, wanted, "exactly the extras, by id, never by tag");
    assert_eq!(fake.droplet_names(), expected_names(10));
    assert!(
        run.stdout
            .contains("destroyed (--prune): checkbox-11, checkbox-12"),
        "{}",
        run.stdout
    );
}
