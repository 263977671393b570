//! The one headless-Chromium driver (the dashboard and report tests, loopback and end to end): the DevTools protocol over
//! `--remote-debugging-pipe` (NUL-separated JSON on file descriptors 3 and 4), so no WebSocket client
//! and no npm package is needed. It opens a page, evaluates JavaScript, takes screenshots and collects
//! console errors, uncaught exceptions and failed loads.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The Debian package's binary, as the issue asks.
pub const CHROMIUM: &str = "/usr/bin/chromium";

const CALL_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Browser {
    child: Child,
    to_browser: File,
    from_browser: Receiver<Value>,
    next_id: u64,
    /// Events received while waiting for replies, in arrival order.
    events: Vec<Value>,
    session: String,
    _profile: tempfile::TempDir,
}

fn pipe() -> (RawFd, RawFd) {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid two-element array; O_CLOEXEC keeps the ends out of other children.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(rc, 0, "pipe2 failed: {}", std::io::Error::last_os_error());
    (fds[0], fds[1])
}

impl Browser {
    /// Starts headless Chromium with a fresh profile and opens one blank page (1280×900).
    pub fn launch() -> Browser {
        assert!(
            Path::new(CHROMIUM).exists(),
            "{CHROMIUM} is missing; install it with scripts/setup.sh (apt-get install chromium)"
        );
        let profile = tempfile::tempdir().expect("create a Chromium profile directory");
        let (cmd_read, cmd_write) = pipe();
        let (evt_read, evt_write) = pipe();
        let mut command = Command::new(CHROMIUM);
        command
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--remote-debugging-pipe",
                "--window-size=1280,900",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: only async-signal-safe calls (fcntl, dup2) between fork and exec. The pipe ends are
        // first copied above 9 so that placing them on 3 and 4 cannot clobber one another; dup2 clears
        // close-on-exec on 3 and 4 only.
        unsafe {
            command.pre_exec(move || {
                let high_cmd = libc::fcntl(cmd_read, libc::F_DUPFD_CLOEXEC, 10);
                let high_evt = libc::fcntl(evt_write, libc::F_DUPFD_CLOEXEC, 10);
                if high_cmd < 0
                    || high_evt < 0
                    || libc::dup2(high_cmd, 3) < 0
                    || libc::dup2(high_evt, 4) < 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().expect("start chromium");
        // SAFETY: these descriptors came from pipe2 above and are owned here from now on.
        let (to_browser, from_browser_file) = unsafe {
            libc::close(cmd_read);
            libc::close(evt_write);
            (File::from_raw_fd(cmd_write), File::from_raw_fd(evt_read))
        };
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(from_browser_file);
            let mut buf = Vec::new();
            while reader.read_until(0, &mut buf).unwrap_or(0) > 0 {
                if buf.last() == Some(&0) {
                    buf.pop();
                }
                if let Ok(v) = serde_json::from_slice::<Value>(&buf) {
                    if tx.send(v).is_err() {
                        break;
                    }
                }
                buf.clear();
            }
        });
        let mut browser = Browser {
            child,
            to_browser,
            from_browser: rx,
            next_id: 0,
            events: Vec::new(),
            session: String::new(),
            _profile: profile,
        };
        let target = browser.call_on(None, "Target.createTarget", json!({"url": "about:blank"}));
        let target_id = target["targetId"].as_str().expect("targetId").to_string();
        let attached = browser.call_on(
            None,
            "Target.attachToTarget",
            json!({"targetId": target_id, "flatten": true}),
        );
        browser.session = attached["sessionId"]
            .as_str()
            .expect("sessionId")
            .to_string();
        for domain in ["Runtime.enable", "Log.enable", "Page.enable"] {
            browser.call(domain, json!({}));
        }
        browser.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": false}),
        );
        browser
    }

    fn call_on(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"id": id, "method": method});
        message["params"] = params;
        if let Some(s) = session {
            message["sessionId"] = json!(s);
        }
        let mut bytes = serde_json::to_vec(&message).expect("serialize");
        bytes.push(0);
        self.to_browser
            .write_all(&bytes)
            .unwrap_or_else(|e| panic!("send {method} to chromium: {e}"));
        let deadline = Instant::now() + CALL_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.from_browser.recv_timeout(left) {
                Ok(reply) if reply["id"] == json!(id) => {
                    if let Some(err) = reply.get("error") {
                        panic!("chromium rejected {method}: {err}");
                    }
                    return reply["result"].clone();
                }
                Ok(event) => self.events.push(event),
                Err(RecvTimeoutError::Timeout) => {
                    panic!("chromium did not answer {method} within {CALL_TIMEOUT:?}")
                }
                Err(RecvTimeoutError::Disconnected) => panic!("chromium exited during {method}"),
            }
        }
    }

    /// A DevTools command on the page.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        let session = self.session.clone();
        self.call_on(Some(&session), method, params)
    }

    pub fn navigate(&mut self, url: &str) {
        let result = self.call("Page.navigate", json!({"url": url}));
        if let Some(err) = result.get("errorText") {
            panic!("chromium could not load {url}: {err}");
        }
    }

    /// Evaluates `expression` in the page (promises awaited) and returns its JSON value.
    pub fn eval(&mut self, expression: &str) -> Value {
        let result = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
        );
        if let Some(details) = result.get("exceptionDetails") {
            panic!("evaluating `{expression}` threw: {details}");
        }
        result["result"]["value"].clone()
    }

    /// Polls `expression` every 250 ms until it is `true`; returns how long that took, or `None` on timeout.
    pub fn wait_for(&mut self, expression: &str, timeout: Duration) -> Option<Duration> {
        let started = Instant::now();
        while started.elapsed() < timeout {
            if self.eval(expression) == json!(true) {
                return Some(started.elapsed());
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        None
    }

    /// Saves a PNG of the whole page.
    pub fn screenshot(&mut self, path: &Path) {
        let shot = self.call(
            "Page.captureScreenshot",
            json!({"format": "png", "captureBeyondViewport": true}),
        );
        let png = base64_decode(shot["data"].as_str().expect("screenshot data"));
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("create the screenshot directory");
        }
        std::fs::write(path, png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }

    /// Console errors, uncaught exceptions and failed resource loads seen so far, as readable lines.
    pub fn console_errors(&mut self) -> Vec<String> {
        while let Ok(event) = self.from_browser.try_recv() {
            self.events.push(event);
        }
        self.events.iter().filter_map(describe_error).collect()
    }

    /// Every console message (any level, `console.log` included) plus [`Browser::console_errors`]: for pages
    /// that must be silent.
    pub fn console_messages(&mut self) -> Vec<String> {
        let mut all = self.console_errors();
        all.extend(self.events.iter().filter_map(|event| {
            let params = &event["params"];
            (event["method"] == "Runtime.consoleAPICalled"
                && !matches!(params["type"].as_str(), Some("error" | "assert")))
            .then(|| format!("console.{}: {}", params["type"], params["args"]))
        }));
        all
    }

    /// Opens `url` and waits (up to 30 s) until the document and its resources have loaded.
    pub fn open(&mut self, url: &str) {
        self.navigate(url);
        assert!(
            self.wait_for("document.readyState === 'complete'", CALL_TIMEOUT)
                .is_some(),
            "{url} did not finish loading within {CALL_TIMEOUT:?}"
        );
    }
}

fn describe_error(event: &Value) -> Option<String> {
    let params = &event["params"];
    match event["method"].as_str()? {
        "Runtime.consoleAPICalled"
            if matches!(params["type"].as_str(), Some("error" | "assert")) =>
        {
            Some(format!(
                "console.{}: {}",
                params["type"].as_str()?,
                params["args"]
            ))
        }
        "Runtime.exceptionThrown" => Some(format!(
            "uncaught exception: {}",
            params["exceptionDetails"]["exception"]["description"]
        )),
        "Log.entryAdded" if params["entry"]["level"] == "error" => Some(format!(
            "{}: {} ({})",
            params["entry"]["source"], params["entry"]["text"], params["entry"]["url"]
        )),
        _ => None,
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Standard base64 (as DevTools sends screenshots).
fn base64_decode(text: &str) -> Vec<u8> {
    fn value(c: u8) -> u32 {
        match c {
            b'A'..=b'Z' => (c - b'A') as u32,
            b'a'..=b'z' => (c - b'a' + 26) as u32,
            b'0'..=b'9' => (c - b'0' + 52) as u32,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("invalid base64 byte {c}"),
        }
    }
    let bytes: Vec<u8> = text.bytes().filter(|&c| c != b'=' && c != b'\n').collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= value(c) << (18 - 6 * i);
        }
        let produced = chunk.len() - 1;
        for i in 0..produced {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    out
}
