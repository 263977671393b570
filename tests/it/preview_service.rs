//! Loopback test of the bundled preview-service stand-in (`examples/preview-service`): its branches, run
//! with the real `node` on 127.0.0.1, follow checkbox.io-micro-preview's contract. A survey without the JSON5
//! header before its `---` line is an HTTP 500 (as the original's `marqdown.render` throws), the default
//! canary body is a valid survey (200 with HTML), `broken` renders `req.body` (500, tiny body) and `hang`
//! never answers. Needs node and npm (`scripts/setup.sh` installs them) and the npm registry for `npm ci`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pipeline::canary::example::{make_repo, SURVEY_JSON};

/// The stand-in running under node; killed (by its own pid) when dropped.
struct Service {
    child: Child,
    port: u16,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn git(repo: &Path, args: &[&str]) {
    let st = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .status()
        .unwrap();
    assert!(st.success(), "git {args:?}");
}

fn start(repo: &Path) -> Service {
    let port = free_port();
    let child = Command::new("node")
        .arg("index.js")
        .current_dir(repo)
        .env("PORT", port.to_string())
        .stdout(Stdio::null())
        .spawn()
        .expect("node must be installed (scripts/setup.sh installs nodejs)");
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the stand-in never listened");
        std::thread::sleep(Duration::from_millis(100));
    }
    Service { child, port }
}

/// POSTs `body` as JSON to /preview; `None` when no answer came within `timeout`.
fn post(port: u16, body: &str, timeout: Duration) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(timeout)).unwrap();
    write!(
        s,
        "POST /preview HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = Vec::new();
    if s.read_to_end(&mut out).is_err() || out.is_empty() {
        return None;
    }
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text[9..12].parse().unwrap();
    let body = text.split_once("\r\n\r\n").unwrap().1.to_string();
    Some((status, body))
}

#[test]
fn the_stand_in_enforces_the_survey_contract_of_checkbox_io_micro_preview() {
    let dir = tempfile::tempdir().unwrap();
    let repo = make_repo(&dir.path().join("preview")).unwrap();
    let st = Command::new("npm")
        .args(["ci", "--omit=dev", "--no-audit", "--no-fund"])
        .current_dir(&repo)
        .status()
        .expect("npm must be installed");
    assert!(st.success(), "npm ci failed");
    let patience = Duration::from_secs(10);

    let master = start(&repo);
    let (status, body) = post(master.port, SURVEY_JSON, patience).unwrap();
    assert_eq!(status, 200, "{body}");
    let preview: serde_json::Value = serde_json::from_str(&body).unwrap();
    let html = preview["preview"].as_str().unwrap();
    assert!(html.contains("<h3>1. "), "questions are numbered: {html}");
    assert!(html.contains("data-page=\"1\""), "{html}");

    // Markdown without the JSON5 header is what the original rejects too.
    let headerless = serde_json::json!({"markdown": "# A survey\n\n### Question\n\n* a\n* b\n"});
    let (status, body) = post(master.port, &headerless.to_string(), patience).unwrap();
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("JSON5"), "{body}");
    let (status, _) = post(master.port, "{}", patience).unwrap();
    assert_eq!(status, 500, "no markdown at all");
    drop(master);

    git(&repo, &["checkout", "-q", "broken"]);
    let broken = start(&repo);
    let (status, body) = post(broken.port, SURVEY_JSON, patience).unwrap();
    assert_eq!(status, 500, "{body}");
    assert_eq!(body, r#"{"preview":"data.split is not a function"}"#);
    drop(broken);

    git(&repo, &["checkout", "-q", "hang"]);
    let hang = start(&repo);
    assert_eq!(post(hang.port, SURVEY_JSON, Duration::from_secs(2)), None);
}
