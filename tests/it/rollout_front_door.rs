//! The front door's canary split on a real nginx on loopback: the role's own template (rendered by
//! Ansible's template module) with one stable backend, a canary written by `pipeline rollout`'s
//! `split.conf`/`map.conf`, weights changed by a graceful reload. Checks the per-request share, the
//! `X-Backend` name of the canary, and that the JSON access log parses into the same arms, statuses and
//! synthetic marks the client saw.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use pipeline::rollout::front_door::{map_conf, split_conf, LogTail};
use pipeline::rollout::world::Arm;

const ROLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/roles/front_door");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// nginx on a prefix directory, stopped when dropped.
pub(super) struct Nginx {
    dir: PathBuf,
}

impl Nginx {
    fn signal(&self, s: &str) {
        let out = Command::new("nginx")
            .arg("-p")
            .arg(&self.dir)
            .arg("-c")
            .arg(self.dir.join("nginx.conf"))
            .args(["-s", s])
            .output()
            .unwrap();
        assert!(out.status.success(), "nginx -s {s}: {out:?}");
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = Command::new("nginx")
            .arg("-p")
            .arg(&self.dir)
            .arg("-c")
            .arg(self.dir.join("nginx.conf"))
            .args(["-s", "stop"])
            .output();
    }
}

/// GET / through the front door: (status, X-Backend).
pub(super) fn get(port: u16, synthetic: bool) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mark = if synthetic {
        "X-Pipeline-Synthetic: 1\r\n"
    } else {
        ""
    };
    write!(s, "GET / HTTP/1.0\r\nHost: lb\r\n{mark}\r\n").unwrap();
    let mut r = String::new();
    s.read_to_string(&mut r).unwrap();
    let status = r.split_whitespace().nth(1).unwrap().parse().unwrap();
    let backend = r
        .lines()
        .find_map(|l| l.strip_prefix("X-Backend: "))
        .unwrap_or("")
        .trim()
        .to_string();
    (status, backend)
}

/// The `python3` on PATH (Ansible's discovery may pick a pyenv shim of a version that is not installed).
fn python() -> String {
    let out = Command::new("sh")
        .args(["-c", "command -v python3"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Renders the role's template with Ansible, as the role does on the lb host.
fn render_template(dir: &Path, vars: &serde_json::Value, dest: &Path) {
    let vars_file = dir.join("vars.json");
    std::fs::write(&vars_file, vars.to_string()).unwrap();
    let out = Command::new("ansible")
        .args([
            "localhost",
            "-c",
            "local",
            "-i",
            "localhost,",
            "-m",
            "ansible.builtin.template",
        ])
        .arg("-a")
        .arg(format!(
            "src={ROLE}/templates/front_door.conf.j2 dest={}",
            dest.display()
        ))
        .arg("-e")
        .arg(format!("@{}", vars_file.display()))
        .arg("-e")
        .arg(format!("ansible_python_interpreter={}", python()))
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_LOCALHOST_WARNING", "0")
        .output()
        .expect("ansible is installed (scripts/setup.sh)");
    assert!(
        out.status.success(),
        "rendering the template failed: {out:?}"
    );
}

/// A front door on loopback: nginx with the role's template, one stable backend answering 200 and a
/// canary at another loopback address answering `canary` (an nginx `return`, e.g. `503 "broken"`); the
/// canary's weight is written as `pipeline rollout` writes it.
pub(super) struct Door {
    pub(super) nginx: Nginx,
    pub(super) front: u16,
    pub(super) canary: String,
    pub(super) conf_dir: PathBuf,
    pub(super) log: PathBuf,
}

impl Door {
    pub(super) fn start(dir: &Path, canary_answer: &str) -> Door {
        let (front, backend) = (free_port(), free_port());
        let conf_dir = dir.join("front_door");
        std::fs::create_dir_all(conf_dir.join("checkbox")).unwrap();
        std::fs::create_dir_all(conf_dir.join("checkbox-canary")).unwrap();
        std::fs::create_dir_all(dir.join("logs")).unwrap();
        let stable = format!("127.0.0.1:{backend}");
        let canary = format!("127.0.0.2:{backend}");
        std::fs::write(
            conf_dir.join("checkbox/checkbox-1.conf"),
            format!("server {stable} max_fails=2 fail_timeout=10s;\n"),
        )
        .unwrap();
        let vars = serde_json::json!({
            "front_door_app": "checkbox",
            "front_door_listen_port": front,
            "front_door_backend_port": backend,
            "front_door_backends": [{"name": "checkbox-1", "address": "127.0.0.1"}],
            "front_door_conf_dir": conf_dir,
            "front_door_access_log_dir": dir.join("logs"),
            "front_door_keepalive": 8,
            "front_door_keepalive_timeout": "4s",
            "front_door_next_upstream_tries": 3,
            "front_door_connect_timeout": "2s",
            "front_door_read_timeout": "10s",
            "front_door_backend_header": "X-Backend",
        });
        render_template(dir, &vars, &dir.join("front_door_checkbox.conf"));
        std::fs::write(
            dir.join("nginx.conf"),
            format!(
                "pid {d}/nginx.pid;\nerror_log {d}/logs/error.log;\nevents {{ worker_connections 256; }}\nhttp {{\n    access_log off;\n    include {d}/front_door_checkbox.conf;\n    server {{ listen {stable}; location / {{ return 200 \"stable version\"; }} }}\n    server {{ listen {canary}; location / {{ return {canary_answer}; }} }}\n}}\n",
                d = dir.display()
            ),
        )
        .unwrap();
        let door = Door {
            nginx: Nginx {
                dir: dir.to_path_buf(),
            },
            front,
            canary,
            conf_dir,
            log: dir.join("logs/front_door_checkbox.json"),
        };
        door.write_canary(0);
        let out = Command::new("nginx")
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .output()
            .unwrap();
        assert!(out.status.success(), "nginx did not start: {out:?}");
        std::thread::sleep(Duration::from_millis(300));
        door
    }

    /// The canary's weight as `pipeline rollout` writes it (the caller reloads nginx).
    pub(super) fn write_canary(&self, weight: u8) {
        std::fs::write(
            self.conf_dir.join("checkbox-canary/split.conf"),
            split_conf("checkbox", Some(&self.canary), weight),
        )
        .unwrap();
        std::fs::write(
            self.conf_dir.join("checkbox-canary/map.conf"),
            map_conf((weight > 0).then_some(("checkbox-canary", self.canary.as_str()))),
        )
        .unwrap();
    }

    /// A new weight with a graceful reload; the new workers take over, old ones finish what they hold.
    pub(super) fn set_weight(&self, weight: u8) {
        self.write_canary(weight);
        self.nginx.signal("reload");
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn the_front_door_splits_requests_by_the_canary_weight_and_logs_each_arm_as_json() {
    let tmp = tempfile::tempdir().unwrap();
    let door = Door::start(tmp.path(), r#"503 "broken""#);
    let (front, canary, log) = (door.front, door.canary.clone(), door.log.clone());
    let mut tail = LogTail::new(Some(canary.clone()));
    let mut round = |weight: u8, n: usize| {
        door.set_weight(weight);
        tail.skip_existing(&log).unwrap();
        let mut seen = Vec::new();
        for k in 0..n {
            seen.push(get(front, k % 4 == 0));
        }
        std::thread::sleep(Duration::from_millis(200));
        (seen, tail.read(&log).unwrap())
    };

    // Weight 0: everything to stable, named by its host.
    let (seen, logged) = round(0, 200);
    assert!(
        seen.iter().all(|s| *s == (200, "checkbox-1".to_string())),
        "{seen:?}"
    );
    assert_eq!(logged.len(), 200);
    assert!(logged
        .iter()
        .all(|o| o.arm == Arm::Stable && o.status == Some(200)));
    assert_eq!(logged.iter().filter(|o| o.synthetic).count(), 50);

    // Weight 25: about a quarter to the canary (its 503s are not retried onto stable), per request.
    let (seen, logged) = round(25, 800);
    let to_canary = seen.iter().filter(|s| s.1 == "checkbox-canary").count();
    assert!(
        (140..=260).contains(&to_canary),
        "{to_canary} of 800 to the canary at 25 %"
    );
    assert!(
        seen.iter()
            .all(|s| (s.1 == "checkbox-canary") == (s.0 == 503)),
        "a canary answer was retried or misnamed"
    );
    assert_eq!(logged.len(), 800);
    let logged_canary: Vec<_> = logged.iter().filter(|o| o.arm == Arm::Canary).collect();
    assert_eq!(logged_canary.len(), to_canary);
    assert!(logged_canary.iter().all(|o| o.status == Some(503)));
    assert!(logged.iter().all(|o| o.latency_ms >= 0.0 && o.at > 1.0e9));

    // Weight 100, then back to 0.
    let (seen, _) = round(100, 100);
    assert!(seen.iter().all(|s| s.1 == "checkbox-canary"), "{seen:?}");
    let (seen, logged) = round(0, 100);
    assert!(
        seen.iter().all(|s| *s == (200, "checkbox-1".to_string())),
        "{seen:?}"
    );
    assert!(logged.iter().all(|o| o.arm == Arm::Stable));
    drop(door);
}
