//! The front door role's nginx configuration on loopback, without sandbox hosts: ansible-playbook renders
//! the role's own templates (from its defaults and the variables `pipeline deploy itrust` passes: iTrust
//! at /iTrust2, two hosts) into a scratch directory, a real nginx serves them on a free loopback port, and
//! two stand-in backends on 127.0.0.2 and 127.0.0.3 answer. Checked: requests through the front door reach
//! both hosts and X-Backend names the inventory host, a drained host (its file rewritten `down` by the
//! role's backend template, then `nginx -s reload`) gets no new request, and a backend that stops answering
//! is skipped without a failed request (passive health checks, `proxy_next_upstream`).
//!
//! Needs nginx and ansible-playbook (scripts/setup.sh installs both).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

const ROLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/roles/front_door");

/// A stand-in app host on `ip:port`: answers 200 at /iTrust2/ until stopped, then refuses connections. It
/// closes each connection after one answer and says so (`Connection: close`), or nginx would reuse a
/// keep-alive connection the stand-in already closed and count that host as failed.
struct Backend {
    stopped: Arc<AtomicBool>,
}

impl Backend {
    fn start(ip: [u8; 4], port: u16) -> Backend {
        let listener = TcpListener::bind(SocketAddr::from((ip, port))).expect("bind a backend");
        listener.set_nonblocking(true).unwrap();
        let stopped = Arc::new(AtomicBool::new(false));
        let flag = stopped.clone();
        std::thread::spawn(move || {
            while !flag.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((mut conn, _)) => {
                        conn.set_nonblocking(false).unwrap();
                        let mut buf = [0u8; 4096];
                        let n = conn.read(&mut buf).unwrap_or(0);
                        let head = String::from_utf8_lossy(&buf[..n]);
                        let ok = head.starts_with("GET /iTrust2/");
                        let (status, body) = if ok {
                            ("200 OK", "itrust\n")
                        } else {
                            ("404 Not Found", "no\n")
                        };
                        let _ = write!(
                            conn,
                            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        );
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
            // Dropping the listener: connections are refused from now on.
        });
        Backend { stopped }
    }

    fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(50));
    }
}

struct Nginx(Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port()
}

/// Renders the role's templates with ansible-playbook: the upstream and server block, and one backend file
/// per host in `states` ((name, address, down)).
fn render(dir: &Path, listen: u16, backend_port: u16, states: &[(&str, &str, bool)]) {
    let conf_dir = dir.join("front_door");
    std::fs::create_dir_all(conf_dir.join("itrust")).unwrap();
    let backends: Vec<_> = states
        .iter()
        .map(|(name, address, _)| json!({"name": name, "address": address}))
        .collect();
    let vars = json!({
        "front_door_app": "itrust",
        "front_door_listen_port": listen,
        "front_door_backend_port": backend_port,
        "front_door_backends": backends,
        "front_door_conf_dir": conf_dir,
        "front_door_fail_timeout": "30s",
        "front_door_access_log_dir": dir,
    });
    // What the role's tasks create next to the template: no rollout, every request to the app's hosts.
    std::fs::create_dir_all(conf_dir.join("itrust-canary")).unwrap();
    std::fs::write(
        conf_dir.join("itrust-canary/split.conf"),
        pipeline::rollout::front_door::split_conf("itrust", None, 0),
    )
    .unwrap();
    std::fs::write(
        conf_dir.join("itrust-canary/map.conf"),
        pipeline::rollout::front_door::map_conf(None),
    )
    .unwrap();
    std::fs::write(dir.join("vars.json"), vars.to_string()).unwrap();
    let mut tasks = format!(
        "    - name: Load the role's defaults\n      ansible.builtin.include_vars: {ROLE}/defaults/main.yml\n    - name: Load the run's variables\n      ansible.builtin.include_vars: {}/vars.json\n    - name: Render the server block\n      ansible.builtin.template:\n        src: {ROLE}/templates/front_door.conf.j2\n        dest: {}/site.conf\n        mode: \"0644\"\n",
        dir.display(),
        dir.display()
    );
    for (name, address, down) in states {
        tasks.push_str(&format!(
            "    - name: Render {name}\n      ansible.builtin.template:\n        src: {ROLE}/templates/backend.conf.j2\n        dest: {}/itrust/{name}.conf\n        mode: \"0644\"\n      vars:\n        front_door_backend: {{name: {name}, address: \"{address}\"}}\n        front_door_backend_down: {down}\n",
            conf_dir.display()
        ));
    }
    std::fs::write(
        dir.join("render.yml"),
        format!("- name: Render the front door\n  hosts: localhost\n  connection: local\n  gather_facts: false\n  vars:\n    ansible_python_interpreter: \"{{{{ ansible_playbook_python }}}}\"\n  tasks:\n{tasks}"),
    )
    .unwrap();
    let out = Command::new("ansible-playbook")
        .args(["-i", "localhost,", "render.yml"])
        .current_dir(dir)
        .env("ANSIBLE_NOCOLOR", "1")
        .output()
        .expect("run ansible-playbook");
    assert!(
        out.status.success(),
        "rendering the front door failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One GET through the front door: (status, X-Backend), or the error.
fn get(port: u16, path: &str) -> Result<(u16, String), String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).map_err(|e| e.to_string())?;
    let status = buf
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("no status: {buf:?}"))?;
    let backend = buf
        .lines()
        .take_while(|l| !l.is_empty())
        .find_map(|l| l.strip_prefix("X-Backend: "))
        .unwrap_or("")
        .to_string();
    Ok((status, backend))
}

fn served_by(port: u16, n: usize) -> std::collections::BTreeMap<String, usize> {
    let mut seen = std::collections::BTreeMap::new();
    for _ in 0..n {
        let (status, backend) = get(port, "/iTrust2/").unwrap();
        assert_eq!(status, 200, "through the front door (from {backend})");
        *seen.entry(backend).or_insert(0) += 1;
    }
    seen
}

#[test]
fn front_door_balances_itrust_at_its_path_names_the_host_and_skips_drained_and_dead_hosts() {
    let nginx_found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join("nginx").is_file()))
        .unwrap_or(false);
    assert!(nginx_found, "nginx is not installed; run scripts/setup.sh");
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::create_dir_all(dir.join("tmp")).unwrap();
    let (listen, backend_port) = (free_port(), free_port());
    let one = Backend::start([127, 0, 0, 2], backend_port);
    let _two = Backend::start([127, 0, 0, 3], backend_port);
    render(
        dir,
        listen,
        backend_port,
        &[
            ("itrust-1", "127.0.0.2", false),
            ("itrust-2", "127.0.0.3", false),
        ],
    );
    let site = std::fs::read_to_string(dir.join("site.conf")).unwrap();
    assert!(
        site.contains("keepalive 32;") && site.contains("X-Backend"),
        "{site}"
    );
    let d = dir.display();
    std::fs::write(
        dir.join("nginx.conf"),
        format!(
            "daemon off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{}}\nhttp {{\n  access_log {d}/access.log;\n  client_body_temp_path {d}/tmp;\n  proxy_temp_path {d}/tmp;\n  fastcgi_temp_path {d}/tmp;\n  uwsgi_temp_path {d}/tmp;\n  scgi_temp_path {d}/tmp;\n  include {d}/site.conf;\n}}\n"
        ),
    )
    .unwrap();
    let nginx_args = |extra: &[&str]| {
        let mut a: Vec<String> = [
            "-p",
            &d.to_string(),
            "-e",
            &format!("{d}/error.log"),
            "-c",
            &format!("{d}/nginx.conf"),
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        a.extend(extra.iter().map(ToString::to_string));
        a
    };
    let check = Command::new("nginx")
        .args(nginx_args(&["-t"]))
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "nginx -t: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    let _nginx = Nginx(
        Command::new("nginx")
            .args(nginx_args(&[]))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nginx"),
    );
    let started = Instant::now();
    while get(listen, "/iTrust2/").is_err() {
        assert!(started.elapsed() < Duration::from_secs(20), "nginx listens");
        std::thread::sleep(Duration::from_millis(100));
    }

    // Both hosts serve, each named by its inventory name.
    let seen = served_by(listen, 20);
    assert_eq!(
        seen.keys().collect::<Vec<_>>(),
        ["itrust-1", "itrust-2"],
        "{seen:?}"
    );

    // Drained (the role's backend template with `down`, then a graceful reload): no new request reaches it.
    render(
        dir,
        listen,
        backend_port,
        &[
            ("itrust-1", "127.0.0.2", true),
            ("itrust-2", "127.0.0.3", false),
        ],
    );
    assert!(
        std::fs::read_to_string(dir.join("front_door/itrust/itrust-1.conf"))
            .unwrap()
            .contains(" down;")
    );
    let reload = Command::new("nginx")
        .args(nginx_args(&["-s", "reload"]))
        .output()
        .unwrap();
    assert!(
        reload.status.success(),
        "{}",
        String::from_utf8_lossy(&reload.stderr)
    );
    std::thread::sleep(Duration::from_millis(500));
    let seen = served_by(listen, 20);
    assert_eq!(seen.keys().collect::<Vec<_>>(), ["itrust-2"], "{seen:?}");

    // Back in rotation, then itrust-1 dies without being drained: every request still succeeds (retried
    // on itrust-2, then itrust-1 skipped for fail_timeout).
    render(
        dir,
        listen,
        backend_port,
        &[
            ("itrust-1", "127.0.0.2", false),
            ("itrust-2", "127.0.0.3", false),
        ],
    );
    let reload = Command::new("nginx")
        .args(nginx_args(&["-s", "reload"]))
        .output()
        .unwrap();
    assert!(
        reload.status.success(),
        "{}",
        String::from_utf8_lossy(&reload.stderr)
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(served_by(listen, 20).contains_key("itrust-1"));
    one.stop();
    let seen = served_by(listen, 20);
    assert!(
        seen.keys().all(|b| b.ends_with("itrust-2")),
        "a dead host's requests are retried on the other: {seen:?}"
    );
}
