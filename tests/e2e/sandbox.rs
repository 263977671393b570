//! e2e: the local sandbox provider itself. Hosts are real systemd-nspawn containers reached over SSH by
//! real Ansible; lifecycle tests use their own environments so the shared `e2e` hosts stay up.

use crate::common::{self, Sandbox};

/// A playbook that runs a small web service under systemd on `web` and fetches it from `client` with
/// Ansible's `uri` module (so the request goes from one host to the other).
const SERVICE_PLAYBOOK: &str = r#"
- name: Serve a page under systemd on web
  hosts: web
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

- name: Reach it from client
  hosts: client
  gather_facts: false
  tasks:
    - name: Fetch the page across hosts
      ansible.builtin.uri:
        url: "http://{{ hostvars['web'].ansible_host }}:8099/index.html"
        return_content: true
      register: page
    - name: Page came from web
      ansible.builtin.assert:
        that: page.content == "served by web\n"
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
    let env = "e2e-sbx";
    let sbx = common::up(env, &["web", "client", "spare"]);
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
    assert!(run.stdout.contains("web "), "{}", run.stdout);
    // The service is a real systemd unit on web, and web saw the request come from client's address.
    let journal = sbx.ssh_ok(
        "web",
        "systemctl is-active e2e-web; journalctl -u e2e-web --no-pager",
    );
    assert!(journal.starts_with("active\n"), "{journal}");
    assert!(
        journal.contains(&format!("{} - - ", sbx.ip("client"))),
        "{journal}"
    );

    let before = common::state(env).expect("state recorded");
    assert_eq!(before.hosts.len(), 3);
    let mut destroyed = common::down(env);
    destroyed.sort();
    assert_eq!(destroyed, ["client", "spare", "web"]);
    assert_eq!(common::leftovers(&before), Vec::<String>::new());
}

#[test]
#[ignore = "needs root and the local sandbox; run by scripts/e2e.sh"]
fn up_twice_keeps_the_running_host_and_down_twice_is_a_no_op() {
    let env = "e2e-idem";
    let first = common::up(env, &["solo"]);
    // A marker in /run (tmpfs inside the container) survives only if the container is not restarted.
    first.ssh_ok("solo", "touch /run/e2e-marker");
    let pid = common::state(env).unwrap().hosts["solo"].pid;

    let second: Sandbox = common::up(env, &["solo"]);
    assert_eq!(second.ip("solo"), first.ip("solo"));
    assert_eq!(common::state(env).unwrap().hosts["solo"].pid, pid);
    second.ssh_ok("solo", "test -e /run/e2e-marker");

    let before = common::state(env).unwrap();
    assert_eq!(common::down(env), ["solo"]);
    assert_eq!(common::down(env), Vec::<String>::new());
    assert_eq!(common::leftovers(&before), Vec::<String>::new());

    // The same host comes back at the same address with the same SSH host key.
    let again = common::up(env, &["solo"]);
    assert_eq!(again.ip("solo"), first.ip("solo"));
    common::down(env);
}

#[test]
#[ignore = "needs root and the local sandbox; run by scripts/e2e.sh"]
fn a_package_one_host_downloaded_is_in_the_next_hosts_apt_cache() {
    let env = "e2e-cache";
    let package = "sl";
    let shared = common::settings().cache_dir.join("apt-archives");
    let is_package = |e: &std::fs::DirEntry| {
        e.file_name()
            .to_string_lossy()
            .starts_with(&format!("{package}_"))
    };
    for e in std::fs::read_dir(&shared).into_iter().flatten().flatten() {
        if is_package(&e) {
            std::fs::remove_file(e.path()).unwrap();
        }
    }
    let first = common::up(env, &["first"]);
    first.ssh_ok(
        "first",
        &format!("apt-get update -qq && apt-get install -y -qq --no-install-recommends {package} >/dev/null"),
    );
    common::down(env);
    let cached = std::fs::read_dir(common::settings().cache_dir.join("apt-archives"))
        .unwrap()
        .flatten()
        .any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(&format!("{package}_"))
        });
    assert!(cached, "{package} not in the shared apt cache after down");

    let second = common::up(env, &["second"]);
    second.ssh_ok(
        "second",
        &format!("ls /var/cache/apt/archives/{package}_*.deb"),
    );
    common::down(env);
}
