//! e2e: the local sandbox provider itself. Hosts are real systemd-nspawn containers reached over SSH by
//! real Ansible; lifecycle tests use their own environments so the shared `e2e` hosts stay up.

use std::time::{Duration, Instant};

use pipeline::providers::local::state::EnvState;

use crate::common::{self, Sandbox};

/// A playbook that runs a small web service under systemd on `itrust` and fetches it from `checkbox`
/// with Ansible's `uri` module (so the request goes from one host to the other).
const SERVICE_PLAYBOOK: &str = r#"
- name: Serve a page under systemd on itrust
  hosts: itrust
  gather_facts: false
  tasks:
    - name: Directory to serve
      ansible.builtin.file:
        path: /srv/e2e
        state: directory
        mode: "0755"
    - name: Page to serve
      ansible.builtin.copy:
        dest: /srv/e2e/index.html
        content: "served by {{ inventory_hostname }}\n"
        mode: "0644"
    - name: Unit file
      ansible.builtin.copy:
        dest: /etc/systemd/system/e2e-web.service
        mode: "0644"
        content: |
          [Unit]
          Description=e2e test web service
          [Service]
          ExecStart=/usr/bin/python3 -m http.server 8099 --directory /srv/e2e
          [Install]
          WantedBy=multi-user.target
    - name: Service started and enabled
      ansible.builtin.systemd_service:
        name: e2e-web
        state: started
        enabled: true
        daemon_reload: true
    - name: Port open
      ansible.builtin.wait_for:
        port: 8099
        timeout: 30

- name: Reach it from checkbox
  hosts: checkbox
  gather_facts: false
  tasks:
    - name: Fetch the page across hosts
      ansible.builtin.uri:
        url: "http://{{ hostvars['itrust'].ansible_host }}:8099/index.html"
        return_content: true
      register: page
    - name: Page came from itrust
      ansible.builtin.assert:
        that: page.content == "served by itrust\n"
"#;

#[test]
#[ignore = "needs root and the local sandbox; run by scripts/e2e.sh"]
fn shared_prod_hosts_answer_ansible_ping_with_the_written_inventory() {
    let prod = common::prod();
    let out = prod.ansible("ansible", &["all", "-m", "ansible.builtin.ping"]);
    assert!(out.success(), "{}\n{}", out.stdout, out.stderr);
    for host in common::PROD_HOSTS {
        assert!(
            out.stdout.contains(&format!("{host} | SUCCESS")),
            "{host} missing:\n{}",
            out.stdout
        );
        assert_eq!(prod.ssh_ok(host, "hostname").trim(), host);
    }
}

#[test]
#[ignore = "needs root and the local sandbox; run by scripts/e2e.sh"]
fn three_hosts_run_a_playbook_reach_a_service_across_hosts_and_down_leaves_nothing() {
    let env = &common::test_env("sbx");
    let sbx = common::up(env);
    let ping = sbx.ansible("ansible", &["all", "-m", "ansible.builtin.ping"]);
    assert!(ping.success(), "{}\n{}", ping.stdout, ping.stderr);
    assert_eq!(
        ping.stdout.matches("| SUCCESS").count(),
        3,
        "{}",
        ping.stdout
    );

    // Booted systemd, own hostname, own address, python3 for Ansible.
    for (host, ip) in &sbx.hosts {
        let facts = sbx.ssh_ok(
            host,
            "systemctl is-system-running; hostname; ip -4 -o addr show host0; python3 --version",
        );
        assert!(
            facts.starts_with("running\n") || facts.starts_with("degraded\n"),
            "{host}: {facts}"
        );
        assert!(facts.contains(&format!("\n{host}\n")), "{host}: {facts}");
        assert!(facts.contains(&format!("inet {ip}/30")), "{host}: {facts}");
    }

    let playbook = sbx.work.join("service.yml");
    std::fs::write(&playbook, SERVICE_PLAYBOOK).unwrap();
    let run = sbx.ansible("ansible-playbook", &[playbook.to_str().unwrap()]);
    assert!(run.success(), "{}\n{}", run.stdout, run.stderr);
    // The service is a real systemd unit on itrust, which saw the request come from checkbox's address.
    let journal = sbx.ssh_ok(
        "itrust",
        "systemctl is-active e2e-web; journalctl -u e2e-web --no-pager",
    );
    assert!(journal.starts_with("active\n"), "{journal}");
    assert!(
        journal.contains(&format!("{} - - ", sbx.ip("checkbox"))),
        "{journal}"
    );

    let before = common::state(env).expect("state recorded");
    assert_eq!(before.hosts.len(), 3);
    assert_eq!(common::down(env), ["checkbox", "itrust", "monitor"]);
    assert_eq!(common::leftovers(&before), Vec::<String>::new());
}

#[test]
#[ignore = "needs root and the local sandbox; run by scripts/e2e.sh"]
fn up_twice_keeps_the_running_hosts_and_down_twice_is_a_no_op() {
    let env = &common::test_env("idem");
    let first = common::up(env);
    // A marker in /run (tmpfs inside the container) survives only if the container is not restarted.
    first.ssh_ok("itrust", "touch /run/e2e-marker");
    let host_key = first.ssh_ok("itrust", "cat /etc/ssh/ssh_host_ed25519_key.pub");
    let before = common::state(env).unwrap();

    let second: Sandbox = common::up(env);
    assert_eq!(second.hosts, first.hosts);
    assert_eq!(
        common::state(env).unwrap(),
        before,
        "second up changed the state"
    );
    second.ssh_ok("itrust", "test -e /run/e2e-marker");

    assert_eq!(common::down(env), ["checkbox", "itrust", "monitor"]);
    assert_eq!(common::down(env), Vec::<String>::new());
    assert_eq!(common::leftovers(&before), Vec::<String>::new());

    // The hosts come back at the same addresses, with the same SSH host keys, as new machines.
    let again = common::up(env);
    assert_eq!(again.hosts, first.hosts);
    assert_eq!(
        again.ssh_ok("itrust", "cat /etc/ssh/ssh_host_ed25519_key.pub"),
        host_key
    );
    assert!(!again.ssh("itrust", "test -e /run/e2e-marker").success());
    common::down(env);
}

#[test]
#[ignore = "needs root and the local sandbox; run by scripts/e2e.sh"]
fn a_package_one_host_downloaded_is_in_every_host_of_the_next_run() {
    let env = &common::test_env("cache");
    let package = "sl";
    let shared = common::settings().cache_dir.join("apt-archives");
    let cached = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir(&shared)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with(&format!("{package}_"))
            })
            .map(|e| e.path())
            .collect()
    };
    for old in cached() {
        std::fs::remove_file(old).unwrap();
    }

    let first = common::up(env);
    first.ssh_ok(
        "itrust",
        &format!("apt-get update -qq && apt-get install -y -qq --no-install-recommends {package} >/dev/null"),
    );
    common::down(env);
    assert_eq!(
        cached().len(),
        1,
        "{package} not in the shared apt cache after down"
    );

    // Every new host of the next run starts with it (also one that never installed it: checkbox).
    let second = common::up(env);
    second.ssh_ok(
        "checkbox",
        &format!("ls /var/cache/apt/archives/{package}_*.deb"),
    );
    common::down(env);
}

/// Starts `pipeline prod up` for `env` and kills it (SIGKILL) as soon as the first container runs, so
/// the other hosts are recorded but half made or not made; returns the state it left.
fn killed_up(env: &str) -> EnvState {
    common::down(env);
    let work = common::work_root().join(env);
    std::fs::create_dir_all(&work).unwrap();
    // std::process rather than Cmd: the test must kill the command half-way, not wait for it.
    let mut child = std::process::Command::new(common::pipeline())
        .args([
            "prod",
            "up",
            "--provider",
            "local",
            "--env",
            env,
            "--inventory",
        ])
        .arg(work.join("inventory.ini"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start pipeline prod up");
    let deadline = Instant::now() + Duration::from_secs(300);
    while !common::state(env).is_some_and(|s| s.hosts.values().any(|h| h.pid.is_some())) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "up ended before it could be killed"
        );
        assert!(Instant::now() < deadline, "no host started in time");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    common::state(env).expect("state recorded before creating")
}

#[test]
#[ignore = "needs root and the local sandbox; run by scripts/e2e.sh"]
fn up_after_a_killed_up_recovers_and_down_still_removes_everything() {
    let env = &common::test_env("kill");
    let partial = killed_up(env);
    assert_eq!(
        partial.hosts.len(),
        3,
        "every host is recorded before the first is made"
    );
    assert!(partial.hosts.values().any(|h| h.pid.is_none()));

    let sbx = common::up(env);
    for host in common::PROD_HOSTS {
        assert_eq!(sbx.ssh_ok(host, "hostname").trim(), host);
    }
    let before = common::state(env).unwrap();
    assert_eq!(common::down(env), ["checkbox", "itrust", "monitor"]);
    assert_eq!(common::leftovers(&before), Vec::<String>::new());
}

#[test]
#[ignore = "needs root and the local sandbox; run by scripts/e2e.sh"]
fn down_after_a_killed_up_removes_the_half_made_hosts() {
    let env = &common::test_env("kill2");
    let before = killed_up(env);
    common::down(env);
    assert_eq!(common::leftovers(&before), Vec::<String>::new());
}

#[test]
#[ignore = "needs root and the local sandbox; run by scripts/e2e.sh"]
fn memory_limit_from_pipeline_toml_caps_each_container() {
    let env = &common::test_env("mem");
    let work = common::work_root().join(env);
    std::fs::create_dir_all(&work).unwrap();
    let config = work.join("pipeline.toml");
    std::fs::write(&config, "[prod]\nmemory_limit = \"384M\"\n").unwrap();
    common::prod_cmd(env, "up")
        .arg("--config")
        .arg(&config)
        .arg("--inventory")
        .arg(work.join("inventory.ini"))
        .run()
        .unwrap_or_else(|e| panic!("{e}"));
    let state = common::state(env).unwrap();
    for host in state.hosts.values() {
        let limited: Vec<String> = host
            .cgroups
            .iter()
            .filter_map(|cg| {
                std::fs::read_to_string(cg.join("memory.max"))
                    .or_else(|_| std::fs::read_to_string(cg.join("memory.limit_in_bytes")))
                    .ok()
            })
            .map(|v| v.trim().to_string())
            .collect();
        assert_eq!(limited, [(384u64 << 20).to_string()], "{}", host.name);
    }
    // Over the limit, the kernel kills the process inside the container, not the container.
    let sbx = common::read_sandbox(env);
    let hog = sbx.ssh("monitor", "python3 -c 'x = bytearray(600 * 1024 * 1024)'");
    assert!(!hog.success(), "a 600M allocation fit under a 384M limit");
    assert_eq!(sbx.ssh_ok("monitor", "hostname").trim(), "monitor");
    common::down(env);
    assert_eq!(common::leftovers(&state), Vec::<String>::new());
}
