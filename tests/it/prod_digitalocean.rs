//! `pipeline prod` on DigitalOcean, driven through the real binary against a stateful fake API on loopback
//! (tests/it/support/fake_do.rs). No network.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;

use crate::support::fake_do::{FakeDo, Fault};
use crate::support::{Work, FINGERPRINT, PUBLIC_KEY, TOKEN};
use serde_json::{json, Value};

/// Parses the inventory into host name → its variables.
fn inventory_hosts(text: &str) -> BTreeMap<String, (String, BTreeMap<String, String>)> {
    // Read back as Ansible reads it (ansible-inventory), the way `deploy` does.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inventory.ini");
    std::fs::write(&path, text).unwrap();
    let inv = pipeline::inventory::Inventory::load(&path).expect("ansible-inventory reads it");
    let mut hosts = BTreeMap::new();
    for (group, members) in &inv.groups {
        for h in members {
            hosts.insert(h.name.clone(), (group.clone(), h.vars.clone()));
        }
    }
    hosts
}

/// Listens on the fake's droplet addresses 127.0.10.1-3 (one port for all three), answering every
/// connection with `greeting`; returns the port. Holding the port on all three keeps parallel tests apart.
fn serve_on_droplet_addresses(greeting: &'static [u8]) -> u16 {
    let first = TcpListener::bind("127.0.10.1:0").unwrap();
    let port = first.local_addr().unwrap().port();
    let listeners = [
        first,
        TcpListener::bind(("127.0.10.2", port)).unwrap(),
        TcpListener::bind(("127.0.10.3", port)).unwrap(),
    ];
    for l in listeners {
        std::thread::spawn(move || {
            for mut conn in l.incoming().flatten() {
                let _ = conn.write_all(greeting);
            }
        });
    }
    port
}

fn list_requests(fake: &FakeDo) -> Vec<BTreeMap<String, String>> {
    fake.requests()
        .into_iter()
        .filter(|r| r.is("GET", "/v2/droplets"))
        .map(|r| r.query)
        .collect()
}

#[test]
fn up_creates_three_tagged_droplets_waits_for_public_ips_and_writes_the_inventory() {
    let fake = FakeDo::start(TOKEN);
    let work = Work::new();
    let run = work.run(&fake.url, &["prod", "up", "--wait", "active"]);
    run.assert_ok();

    // The key was looked up by fingerprint, then registered because the account did not have it.
    assert_eq!(
        fake.count("GET", &format!("/v2/account/keys/{FINGERPRINT}")),
        1
    );
    let key_posts: Vec<Value> = fake
        .requests()
        .into_iter()
        .filter(|r| r.is("POST", "/v2/account/keys"))
        .filter_map(|r| r.body)
        .collect();
    assert_eq!(key_posts.len(), 1);
    assert_eq!(key_posts[0]["public_key"], PUBLIC_KEY);

    // itrust needs its own size; checkbox and monitor share one multi-create request.
    let tags = json!(["pipeline", "pipeline-prod"]);
    assert_eq!(
        fake.creates(),
        vec![
            json!({"names": ["itrust"], "region": "nyc1", "size": "s-1vcpu-2gb",
                   "image": "ubuntu-24-04-x64", "ssh_keys": [FINGERPRINT], "tags": tags}),
            json!({"names": ["checkbox", "monitor"], "region": "nyc1", "size": "s-1vcpu-1gb",
                   "image": "ubuntu-24-04-x64", "ssh_keys": [FINGERPRINT], "tags": tags}),
        ]
    );

    // One list-by-tag per round, never per droplet: the adoption check, then three polls
    // (new → active with only a private address → public address listed).
    let lists = list_requests(&fake);
    assert_eq!(lists.len(), 4, "{lists:?}");
    assert!(lists
        .iter()
        .all(|q| q["tag_name"] == "pipeline-prod" && q["per_page"] == "200"));
    assert!(fake
        .requests()
        .iter()
        .all(|r| !(r.method == "GET" && r.path.starts_with("/v2/droplets/"))));

    let inventory = work.inventory().expect("inventory.ini written");
    let hosts = inventory_hosts(&inventory);
    assert_eq!(
        hosts.keys().collect::<Vec<_>>(),
        ["checkbox", "itrust", "monitor"]
    );
    for (name, (group, vars)) in &hosts {
        assert_eq!(group, name);
        assert_eq!(
            vars["ansible_host"],
            fake.public_ip(name).to_string(),
            "public, not private"
        );
        assert_eq!(vars["ansible_user"], "root");
        assert_eq!(
            vars["ansible_ssh_private_key_file"],
            work.key.display().to_string()
        );
        assert_eq!(vars["ansible_python_interpreter"], "/usr/bin/python3");
    }

    // The state file records ids, privately.
    let state_path = work.path().join(".pipeline/digitalocean-prod.json");
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(&state_path).unwrap()).unwrap();
    assert_eq!(state["tag"], "pipeline-prod");
    assert_eq!(state["droplets"].as_object().unwrap().len(), 3);
    let mode = std::fs::metadata(&state_path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    // The summary table goes to stdout.
    assert!(
        run.stdout.contains("itrust") && run.stdout.contains("s-1vcpu-2gb"),
        "{}",
        run.stdout
    );
}

#[test]
fn second_up_adopts_the_tagged_droplets_instead_of_creating_duplicates() {
    let fake = FakeDo::start(TOKEN);
    let work = Work::new();
    work.run(&fake.url, &["prod", "up", "--wait", "active"])
        .assert_ok();
    let first = work.inventory().unwrap();
    let creates = fake.creates().len();

    work.run(&fake.url, &["prod", "up", "--wait", "active"])
        .assert_ok();
    assert_eq!(fake.creates().len(), creates, "no new create request");
    assert_eq!(fake.droplet_names(), ["checkbox", "itrust", "monitor"]);
    assert_eq!(work.inventory().unwrap(), first);
    // The key is only looked up when something has to be created.
    assert_eq!(
        fake.count("GET", &format!("/v2/account/keys/{FINGERPRINT}")),
        1
    );
}

#[test]
fn a_droplet_already_carrying_the_tag_is_adopted_and_only_the_missing_ones_are_created() {
    let fake = FakeDo::start(TOKEN);
    fake.add_key(FINGERPRINT, PUBLIC_KEY);
    fake.add_droplet("checkbox", "s-1vcpu-1gb", &["pipeline", "pipeline-prod"]);
    let work = Work::new();
    let run = work.run(&fake.url, &["prod", "up", "--wait", "active"]);
    run.assert_ok();
    assert!(
        run.stderr.contains("adopting droplet checkbox"),
        "{}",
        run.stderr
    );
    let names: Vec<Value> = fake.creates().iter().map(|c| c["names"].clone()).collect();
    assert_eq!(names, [json!(["itrust"]), json!(["monitor"])]);
    assert_eq!(
        fake.count("POST", "/v2/account/keys"),
        0,
        "a registered key is reused"
    );
    assert_eq!(fake.key_count(), 1);
    assert_eq!(fake.droplet_names(), ["checkbox", "itrust", "monitor"]);
}

#[test]
fn an_adopted_droplet_that_is_off_is_powered_on() {
    let fake = FakeDo::start(TOKEN);
    for name in ["itrust", "checkbox", "monitor"] {
        fake.add_droplet(name, "s-1vcpu-1gb", &["pipeline", "pipeline-prod"]);
    }
    fake.power_off("monitor");
    let work = Work::new();
    let run = work.run(
        &fake.url,
        &["prod", "up", "--wait", "active", "--size", "s-1vcpu-1gb"],
    );
    run.assert_ok();
    assert!(
        run.stderr.contains("powering on droplet monitor"),
        "{}",
        run.stderr
    );
    let actions: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/actions"))
        .collect();
    assert_eq!(actions.len(), 1);
    assert_eq!(actions[0].body, Some(json!({"type": "power_on"})));
    assert_eq!(fake.creates().len(), 0);
    assert_eq!(inventory_hosts(&work.inventory().unwrap()).len(), 3);
}

#[test]
fn rate_limits_and_html_server_errors_on_reads_are_retried() {
    let fake = FakeDo::start(TOKEN);
    fake.inject("GET", "/v2/droplets", Fault::RateLimit { retry_after: 1 });
    fake.inject("GET", "/v2/droplets", Fault::Html500);
    let work = Work::new();
    let run = work.run(&fake.url, &["prod", "up", "--wait", "active"]);
    run.assert_ok();
    // Two refused listings, then the usual four.
    assert_eq!(list_requests(&fake).len(), 6);
    assert!(
        run.stderr.contains("API rate limit exceeded"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("500 Internal Server Error | cloudflare")
            && run.stderr.contains("fake-html-req"),
        "the HTML page is summarized by its title, with the request id: {}",
        run.stderr
    );
    assert_eq!(fake.droplet_names(), ["checkbox", "itrust", "monitor"]);
}

#[test]
fn a_rate_limited_create_is_sent_again_because_nothing_was_made() {
    let fake = FakeDo::start(TOKEN);
    fake.add_key(FINGERPRINT, PUBLIC_KEY);
    fake.inject("POST", "/v2/droplets", Fault::RateLimit { retry_after: 0 });
    let work = Work::new();
    work.run(&fake.url, &["prod", "up", "--wait", "active"])
        .assert_ok();
    let names: Vec<Value> = fake.creates().iter().map(|c| c["names"].clone()).collect();
    assert_eq!(
        names,
        [
            json!(["itrust"]),
            json!(["itrust"]),
            json!(["checkbox", "monitor"])
        ]
    );
    assert_eq!(
        list_requests(&fake).len(),
        4,
        "a 429 needs no look-up: nothing was created"
    );
    assert_eq!(fake.droplet_names(), ["checkbox", "itrust", "monitor"]);
}

#[test]
fn quiet_runs_print_no_progress_only_the_result() {
    let fake = FakeDo::start(TOKEN);
    let work = Work::new();
    let run = work.run(&fake.url, &["--quiet", "prod", "up", "--wait", "active"]);
    run.assert_ok();
    assert_eq!(run.stderr, "");
    assert!(run.stdout.starts_with("NAME"), "{}", run.stdout);
}

#[test]
fn without_a_terminal_progress_is_one_line_per_host_change() {
    let fake = FakeDo::start(TOKEN);
    let work = Work::new();
    let run = work.run(&fake.url, &["prod", "up", "--wait", "active"]);
    run.assert_ok();
    let itrust: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("itrust: "))
        .collect();
    assert_eq!(
        itrust,
        [
            "itrust: status new",
            "itrust: active, waiting for a public IPv4",
            &format!("itrust: ready at {}", fake.public_ip("itrust")),
        ]
    );
}

#[test]
fn reads_that_keep_failing_end_with_digitaloceans_message_and_request_id() {
    let fake = FakeDo::start(TOKEN);
    for _ in 0..4 {
        fake.inject("GET", "/v2/droplets", Fault::Html500);
    }
    let work = Work::new();
    let run = work.run(&fake.url, &["prod", "status"]);
    assert_eq!(run.code, 1);
    assert_eq!(
        list_requests(&fake).len(),
        4,
        "retry_attempts defaults to 4"
    );
    let last = run.stderr.lines().last().unwrap_or("");
    assert!(
        last.starts_with("error: failed to list environment prod"),
        "{}",
        run.stderr
    );
    assert!(
        last.contains("500") && last.contains("cloudflare") && last.contains("fake-html-req"),
        "{last}"
    );
    assert!(!last.contains("<html"), "{last}");
}

#[test]
fn create_that_fails_unclearly_is_looked_up_by_tag_and_not_sent_again() {
    let fake = FakeDo::start(TOKEN);
    fake.add_key(FINGERPRINT, PUBLIC_KEY);
    fake.inject("POST", "/v2/droplets", Fault::CreateThen500);
    let work = Work::new();
    let run = work.run(&fake.url, &["prod", "up", "--wait", "active"]);
    run.assert_ok();
    assert!(
        run.stderr
            .contains("checking tag pipeline-prod before sending anything again"),
        "{}",
        run.stderr
    );
    // The failed request did create itrust; only the second group was ever sent after it.
    let names: Vec<Value> = fake.creates().iter().map(|c| c["names"].clone()).collect();
    assert_eq!(names, [json!(["itrust"]), json!(["checkbox", "monitor"])]);
    assert_eq!(fake.droplet_names(), ["checkbox", "itrust", "monitor"]);
    let hosts = inventory_hosts(&work.inventory().unwrap());
    assert_eq!(hosts.len(), 3);
}

#[test]
fn a_created_droplet_slow_to_appear_under_its_tag_is_not_created_twice() {
    let fake = FakeDo::start(TOKEN);
    fake.add_key(FINGERPRINT, PUBLIC_KEY);
    fake.set_listing_lag(2);
    fake.inject("POST", "/v2/droplets", Fault::CreateThen500);
    let work = Work::new();
    let run = work.run(&fake.url, &["prod", "up", "--wait", "active"]);
    run.assert_ok();
    assert!(run.stderr.contains("not listed yet"), "{}", run.stderr);
    let names: Vec<Value> = fake.creates().iter().map(|c| c["names"].clone()).collect();
    assert_eq!(names, [json!(["itrust"]), json!(["checkbox", "monitor"])]);
    assert_eq!(fake.droplet_names(), ["checkbox", "itrust", "monitor"]);
}

#[test]
fn create_rejected_with_html_500_is_resent_only_after_the_tag_shows_nothing() {
    let fake = FakeDo::start(TOKEN);
    fake.add_key(FINGERPRINT, PUBLIC_KEY);
    fake.inject("POST", "/v2/droplets", Fault::Html500);
    let work = Work::new();
    work.run(&fake.url, &["prod", "up", "--wait", "active"])
        .assert_ok();
    let sequence: Vec<String> = fake
        .requests()
        .iter()
        .filter(|r| r.path == "/v2/droplets")
        .map(|r| r.method.clone())
        .collect();
    // list (adopt) · POST itrust (500, nothing made) · three look-ups · POST itrust · POST checkbox+monitor
    assert_eq!(
        sequence[..7],
        ["GET", "POST", "GET", "GET", "GET", "POST", "POST"],
        "{sequence:?}"
    );
    assert_eq!(fake.droplet_names(), ["checkbox", "itrust", "monitor"]);
}

#[test]
fn lists_follow_pagination_links_to_the_last_page() {
    let fake = FakeDo::start(TOKEN);
    fake.set_page_size(2);
    for name in ["itrust", "checkbox", "monitor"] {
        fake.add_droplet(name, "s-1vcpu-1gb", &["pipeline", "pipeline-prod"]);
    }
    let work = Work::new();
    let run = work.run(&fake.url, &["prod", "status", "--json"]);
    run.assert_ok();
    let status: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(status["provider"], "digitalocean");
    assert_eq!(status["environment"], "prod");
    let names: Vec<&str> = status["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["checkbox", "itrust", "monitor"]);
    let pages: Vec<Option<String>> = list_requests(&fake)
        .iter()
        .map(|q| q.get("page").cloned())
        .collect();
    assert_eq!(pages, [None, Some("2".to_string())]);
    let h = &status["hosts"][0];
    assert_eq!(h["status"], "active");
    assert_eq!(h["ip"], fake.public_ip("checkbox").to_string());
    assert_eq!(h["region"], "nyc1");
    assert_eq!(h["size"], "s-1vcpu-1gb");
    assert!(h["id"].as_str().unwrap().parse::<u64>().is_ok());
}

#[test]
fn status_prints_a_table_of_name_id_status_ip_size_region() {
    let fake = FakeDo::start(TOKEN);
    let id = fake.add_droplet("itrust", "s-1vcpu-2gb", &["pipeline", "pipeline-prod"]);
    let work = Work::new();
    let run = work.run(&fake.url, &["prod", "status"]);
    run.assert_ok();
    let lines: Vec<Vec<&str>> = run
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["NAME", "ID", "STATUS", "IP", "SIZE", "REGION"]);
    let ip = fake.public_ip("itrust").to_string();
    assert_eq!(
        lines[1],
        [
            "itrust",
            &id.to_string(),
            "active",
            &ip,
            "s-1vcpu-2gb",
            "nyc1"
        ]
    );
}

#[test]
fn status_json_has_a_stable_shape() {
    let fake = FakeDo::start(TOKEN);
    let id = fake.add_droplet("itrust", "s-1vcpu-2gb", &["pipeline", "pipeline-prod"]);
    let work = Work::new();
    let run = work.run(&fake.url, &["prod", "status", "--json"]);
    run.assert_ok();
    let status: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        status,
        json!({
            "provider": "digitalocean",
            "environment": "prod",
            "hosts": [{"name": "itrust", "id": id.to_string(), "status": "active",
                       "ip": fake.public_ip("itrust").to_string(), "size": "s-1vcpu-2gb", "region": "nyc1"}]
        })
    );
}

#[test]
fn provider_flag_beats_environment_beats_config() {
    let fake = FakeDo::start(TOKEN);
    let work = Work::new();
    let envs = |provider: &'static str| {
        [
            ("DIGITALOCEAN_API_URL", fake.url.clone()),
            ("DIGITALOCEAN_TOKEN", TOKEN.to_string()),
            ("PIPELINE_PROVIDER", provider.to_string()),
        ]
    };
    let run_with = |args: &[&str], envs: &[(&str, String)]| {
        let envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        work.run_with(args, &envs)
    };
    work.write_config("provider = \"local\"\n");
    // The environment beats the config file ...
    run_with(&["prod", "status"], &envs("digitalocean")).assert_ok();
    assert_eq!(fake.requests().len(), 1);
    // ... the flag beats the environment ...
    run_with(
        &["prod", "status", "--provider", "digitalocean"],
        &envs("local"),
    )
    .assert_ok();
    assert_eq!(fake.requests().len(), 2);
    // ... and a bad value in the environment is a usage error naming the variable.
    let run = run_with(&["prod", "status"], &envs("aws"));
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("PIPELINE_PROVIDER") && run.stderr.contains("`aws`"),
        "{}",
        run.stderr
    );
    assert_eq!(fake.requests().len(), 2);
}

#[test]
fn down_destroys_only_this_environments_droplets_and_is_safe_to_run_twice() {
    let fake = FakeDo::start(TOKEN);
    fake.add_droplet("keepme", "s-1vcpu-1gb", &["pipeline", "pipeline-canary"]);
    let work = Work::new();
    work.run(&fake.url, &["prod", "up", "--wait", "active"])
        .assert_ok();
    let run = work.run(&fake.url, &["prod", "down"]);
    run.assert_ok();
    assert!(
        run.stdout.contains("destroyed checkbox, itrust, monitor"),
        "{}",
        run.stdout
    );
    let deletes: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "DELETE")
        .collect();
    assert_eq!(deletes.len(), 1);
    assert_eq!(deletes[0].query["tag_name"], "pipeline-prod");
    assert_eq!(fake.droplet_names(), ["keepme"]);
    assert!(!work
        .path()
        .join(".pipeline/digitalocean-prod.json")
        .exists());

    let again = work.run(&fake.url, &["prod", "down"]);
    again.assert_ok();
    assert!(
        again.stdout.contains("nothing to destroy"),
        "{}",
        again.stdout
    );
    assert_eq!(fake.count("DELETE", "/v2/droplets"), 1, "no second DELETE");
}

#[test]
fn down_forgets_the_host_keys_of_the_freed_addresses() {
    let fake = FakeDo::start(TOKEN);
    let work = Work::new();
    work.run(&fake.url, &["prod", "up", "--wait", "active"])
        .assert_ok();
    let blob = PUBLIC_KEY
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    let known_hosts = work.path().join(".pipeline/known_hosts");
    let itrust = fake.public_ip("itrust");
    std::fs::write(
        &known_hosts,
        format!("{itrust} {blob}\n198.51.100.9 {blob}\n"),
    )
    .unwrap();
    let run = work.run(&fake.url, &["prod", "down"]);
    run.assert_ok();
    let left = std::fs::read_to_string(&known_hosts).unwrap();
    assert!(!left.contains(&itrust.to_string()), "{left}");
    assert!(
        left.contains("198.51.100.9"),
        "other hosts' keys stay: {left}"
    );
}

#[test]
fn environments_are_separate_tags() {
    let fake = FakeDo::start(TOKEN);
    let work = Work::new();
    work.run(
        &fake.url,
        &[
            "prod", "up", "--wait", "active", "--env", "dev-do", "-i", "dev.ini",
        ],
    )
    .assert_ok();
    assert!(fake
        .creates()
        .iter()
        .all(|c| c["tags"] == json!(["pipeline", "pipeline-dev-do"])));
    assert!(work.path().join("dev.ini").exists());
    assert!(
        work.inventory().is_none(),
        "the default inventory is untouched"
    );
    let prod = work.run(&fake.url, &["prod", "status"]);
    prod.assert_ok();
    assert!(
        prod.stdout.contains("no hosts in environment prod"),
        "{}",
        prod.stdout
    );
}

#[test]
fn waiting_for_ssh_succeeds_once_every_host_answers_with_a_banner() {
    let fake = FakeDo::start(TOKEN);
    fake.add_key(FINGERPRINT, PUBLIC_KEY);
    let port = serve_on_droplet_addresses(b"SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13\r\n");
    let work = Work::new();
    let run = work.run_with(
        &["prod", "up"],
        &[
            ("DIGITALOCEAN_API_URL", &fake.url),
            ("NCSU_DOTOKEN", TOKEN),
            ("PIPELINE_SSH_PROBE_PORT", &port.to_string()),
        ],
    );
    run.assert_ok();
    assert_eq!(inventory_hosts(&work.inventory().unwrap()).len(), 3);
}

#[test]
fn a_bounded_wait_ends_with_an_error_naming_the_pending_hosts_and_writes_no_inventory() {
    let fake = FakeDo::start(TOKEN);
    fake.set_lifecycle(1_000_000, 1);
    let work = Work::new();
    let run = work.run(&fake.url, &["prod", "up", "--timeout", "300ms"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("timed out after 300ms waiting for checkbox (status new), itrust (status new), monitor (status new)"),
        "{}",
        run.stderr
    );
    assert!(work.inventory().is_none());
}

#[test]
fn ssh_that_never_answers_is_named_in_the_timeout_error() {
    let fake = FakeDo::start(TOKEN);
    fake.add_droplet("itrust", "s-1vcpu-2gb", &["pipeline", "pipeline-prod"]);
    fake.add_droplet("checkbox", "s-1vcpu-1gb", &["pipeline", "pipeline-prod"]);
    fake.add_droplet("monitor", "s-1vcpu-1gb", &["pipeline", "pipeline-prod"]);
    let port = serve_on_droplet_addresses(b"HTTP/1.1 400 Bad Request\r\n\r\n").to_string();
    let work = Work::new();
    let run = work.run_with(
        &["prod", "up", "--timeout", "200ms"],
        &[
            ("DIGITALOCEAN_API_URL", &fake.url),
            ("DIGITALOCEAN_TOKEN", TOKEN),
            ("PIPELINE_SSH_PROBE_PORT", &port),
        ],
    );
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains(&format!(
            "itrust (active at 127.0.10.1, waiting for SSH on port {port}"
        )),
        "{}",
        run.stderr
    );
    assert!(work.inventory().is_none());
}

#[test]
fn flags_and_config_choose_sizes_regions_and_images() {
    let fake = FakeDo::start(TOKEN);
    fake.add_key(FINGERPRINT, PUBLIC_KEY);
    let work = Work::new();
    work.write_config("[prod]\nregion = \"sfo3\"\n[prod.hosts.itrust]\nsize = \"s-2vcpu-4gb\"\n");
    work.run(
        &fake.url,
        &[
            "prod",
            "up",
            "--wait",
            "active",
            "--image",
            "ubuntu-22-04-x64",
        ],
    )
    .assert_ok();
    let creates = fake.creates();
    assert_eq!(creates[0]["names"], json!(["itrust"]));
    assert_eq!(creates[0]["size"], "s-2vcpu-4gb");
    assert!(creates
        .iter()
        .all(|c| c["region"] == "sfo3" && c["image"] == "ubuntu-22-04-x64"));
}
