//! `pipeline prod` against the fake DigitalOcean API: the error cases. Each is a clear message and a
//! non-zero exit, reported before anything is created or written, and the token never leaks.

use crate::support::fake_do::{FakeDo, Fault};
use crate::support::{Work, TOKEN};

#[test]
fn missing_token_is_a_clear_error_naming_the_variables_before_any_request() {
    let fake = FakeDo::start(TOKEN);
    let work = Work::new();
    let run = work.run_with(&["prod", "up"], &[("DIGITALOCEAN_API_URL", &fake.url)]);
    assert_eq!(run.code, 1);
    for var in [
        "NCSU_DOTOKEN",
        "DIGITALOCEAN_TOKEN",
        "DIGITALOCEAN_ACCESS_TOKEN",
    ] {
        assert!(run.stderr.contains(var), "{}", run.stderr);
    }
    assert!(fake.requests().is_empty());
    assert!(work.inventory().is_none());
}

#[test]
fn missing_token_and_missing_ssh_key_are_reported_together() {
    let fake = FakeDo::start(TOKEN);
    let work = Work::new();
    std::fs::remove_dir_all(work.home.join(".ssh")).unwrap();
    let run = work.run_with(&["prod", "up"], &[("DIGITALOCEAN_API_URL", &fake.url)]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("no API token") && run.stderr.contains("no SSH key found"),
        "{}",
        run.stderr
    );
    assert!(fake.requests().is_empty());
}

#[test]
fn an_ssh_key_given_by_flag_must_exist_with_its_public_half() {
    let fake = FakeDo::start(TOKEN);
    let work = Work::new();
    let run = work.run(&fake.url, &["prod", "up", "--ssh-key", "nope/id_ed25519"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains("SSH private key nope/id_ed25519 does not exist"),
        "{}",
        run.stderr
    );
    let lonely = work.path().join("lonely");
    std::fs::write(&lonely, "private").unwrap();
    let run = work.run(&fake.url, &["prod", "up", "--ssh-key", "lonely"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains("lonely.pub does not exist; write it with `ssh-keygen -y -f"),
        "{}",
        run.stderr
    );
    assert!(fake.requests().is_empty());
}

#[test]
fn rejected_token_is_reported_with_digitaloceans_message_and_nothing_is_written() {
    let fake = FakeDo::start("some-other-token");
    let work = Work::new();
    let run = work.run(&fake.url, &["prod", "up"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("DigitalOcean rejected the API token (401: Unable to authenticate you (request id fake-req-0001))"), "{}", run.stderr);
    assert_eq!(fake.requests().len(), 1, "401 is not retried");
    assert!(work.inventory().is_none());
    // Only the environment's lock (taken before the first listing) exists: no state, no key, no inventory.
    let left: Vec<String> = std::fs::read_dir(work.path().join(".pipeline"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(left, ["digitalocean-prod.lock"]);
}

#[test]
fn invalid_config_values_exit_2_before_any_request() {
    let fake = FakeDo::start(TOKEN);
    let work = Work::new();
    let cases = [
        (
            "[prod]\nsize = \"One GB\"\n",
            vec!["prod", "up"],
            "`One GB` is not a slug",
        ),
        (
            "[prod.hosts.itrsut]\nsize = \"s-1vcpu-2gb\"\n",
            vec!["prod", "up"],
            "there is no host `itrsut`",
        ),
        (
            "[prod]\ntimeout = \"soon\"\n",
            vec!["prod", "up"],
            "[prod] timeout",
        ),
        ("[prod]\nregoin = \"nyc3\"\n", vec!["prod", "up"], "regoin"),
        (
            "[digitalocean]\nretry_attempts = 0\n",
            vec!["prod", "status"],
            "retry_attempts",
        ),
        (
            "provider = \"aws\"\n",
            vec!["prod", "status"],
            "`aws` is not a provider",
        ),
        (
            "",
            vec!["prod", "status", "--env", "Dev_Do"],
            "environment name",
        ),
        ("", vec!["prod", "up", "--size", "S!"], "`S!` is not a slug"),
        (
            "",
            vec!["prod", "status", "--api-url", "ftp://example.com"],
            "DigitalOcean API URL",
        ),
    ];
    for (config, args, expected) in cases {
        // [digitalocean] may appear only once, so the bad one replaces the fast settings.
        if config.starts_with("[digitalocean]") {
            std::fs::write(work.path().join("pipeline.toml"), config).unwrap();
        } else {
            work.write_config(config);
        }
        let run = work.run(&fake.url, &args);
        assert_eq!(run.code, 2, "{config}: {}", run.stderr);
        assert!(run.stderr.contains(expected), "{config}: {}", run.stderr);
    }
    assert!(fake.requests().is_empty());
    assert!(work.inventory().is_none());
}

#[test]
fn slugs_digitalocean_does_not_know_are_all_reported_before_anything_is_created() {
    let fake = FakeDo::start(TOKEN);
    let work = Work::new();
    work.write_config("[prod.hosts.monitor]\nregion = \"nyc2\"\nimage = \"ubuntu-99-04-x64\"\n");
    let run = work.run(&fake.url, &["prod", "up", "--size", "s-1vcpu-3gb"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    for expected in [
        "DigitalOcean cannot create these hosts as configured",
        "size `s-1vcpu-3gb` (for itrust, checkbox) does not exist; sizes include: s-1vcpu-1gb",
        "region `nyc2` (for monitor) is not taking new droplets",
        "image `ubuntu-99-04-x64` (for monitor) does not exist",
    ] {
        assert!(run.stderr.contains(expected), "{expected}: {}", run.stderr);
    }
    assert_eq!(fake.count("POST", "/v2/droplets"), 0);
    assert_eq!(fake.count("POST", "/v2/account/keys"), 0);
    assert!(work.inventory().is_none());
}

#[test]
fn unwritable_inventory_path_fails_before_anything_is_created() {
    let fake = FakeDo::start(TOKEN);
    let work = Work::new();
    let run = work.run(
        &fake.url,
        &["prod", "up", "-i", "no/such/dir/inventory.ini"],
    );
    assert_ne!(run.code, 0);
    assert!(
        run.stderr
            .contains("cannot write inventory no/such/dir/inventory.ini"),
        "{}",
        run.stderr
    );
    assert!(
        fake.requests().is_empty(),
        "no droplet is made when the inventory cannot be written"
    );

    // A parent that is a file stops root too.
    let run = work.run(
        &fake.url,
        &["prod", "up", "-i", "pipeline.toml/inventory.ini"],
    );
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("must exist and be writable"),
        "{}",
        run.stderr
    );
    let run = work.run(&fake.url, &["prod", "up", "-i", "home"]);
    assert!(
        run.stderr
            .contains("cannot write inventory home: it is a directory"),
        "{}",
        run.stderr
    );
    assert!(
        fake.requests().is_empty(),
        "no droplet is made when the inventory cannot be written"
    );
    let leftovers: Vec<_> = work
        .files()
        .into_iter()
        .filter(|(p, _)| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(".pipeline-check-")
        })
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn the_token_never_appears_in_output_or_files() {
    let fake = FakeDo::start(TOKEN);
    let work = Work::new();
    let mut runs = vec![
        work.run(&fake.url, &["prod", "up", "--wait", "active"]),
        work.run(&fake.url, &["prod", "status"]),
        work.run(&fake.url, &["prod", "status", "--json"]),
        work.run(&fake.url, &["prod", "logs", "itrust"]),
        work.run(&fake.url, &["prod", "down"]),
    ];
    fake.inject("GET", "/v2/droplets", Fault::Html500);
    runs.push(work.run(&fake.url, &["prod", "status"]));
    let rejected = FakeDo::start("another");
    runs.push(work.run(&rejected.url, &["prod", "status"]));
    for run in &runs {
        assert!(
            !run.stdout.contains(TOKEN) && !run.stderr.contains(TOKEN),
            "{run:?}"
        );
        assert!(!run.stderr.contains("dop_v1_"), "{run:?}");
    }
    for (path, text) in work.files() {
        assert!(!text.contains(TOKEN), "token written to {}", path.display());
    }
    // It was sent, as a bearer token in the header.
    assert!(fake
        .requests()
        .iter()
        .all(|r| r.authorization.as_deref() == Some(&format!("Bearer {TOKEN}"))));
}

#[test]
fn logs_on_digitalocean_point_to_the_droplet_console() {
    let fake = FakeDo::start(TOKEN);
    let id = fake.add_droplet("monitor", "s-1vcpu-1gb", &["pipeline", "pipeline-prod"]);
    let work = Work::new();
    let run = work.run(&fake.url, &["prod", "logs", "monitor"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains(&format!(
            "https://cloud.digitalocean.com/droplets/{id}/console"
        )),
        "{}",
        run.stderr
    );
}
