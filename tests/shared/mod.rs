//! Helpers shared by the monitoring tests (`tests/it/monitor_dashboard.rs` on loopback and `tests/e2e/monitor.rs`
//! on sandbox hosts): a headless-Chromium driver, the report schema check, a plain HTTP GET, the page's card state, and where
//! screenshots go.

pub mod browser;
pub mod report_schema;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Minimal HTTP/1.0 GET: (status, body). Errors are connection errors (refused, timed out, …).
pub fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    http_get_as(addr, path, None)
}

/// [`http_get`] with an `Authorization` header value (e.g. from [`basic_auth`]).
pub fn http_get_as(
    addr: SocketAddr,
    path: &str,
    authorization: Option<&str>,
) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let auth = authorization
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: {}\r\n{auth}\r\n",
        addr.ip()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// The `Authorization` header value for HTTP basic auth.
pub fn basic_auth(user: &str, password: &str) -> String {
    use base64::Engine as _;
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {token}")
}

/// Where tests keep screenshots: `target/test-artifacts/`.
pub fn artifacts_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target directory")
        .join("test-artifacts")
}

/// JavaScript returning every card as [host, app state, cpu, memory, response time] (values as shown in
/// the page's data attributes; "" when there is no recent number).
pub const CARDS_JS: &str = r"Array.from(document.querySelectorAll('.host')).map(c => [
  c.dataset.host, c.dataset.appState,
  c.querySelector('[data-metric=cpu] .value').dataset.value,
  c.querySelector('[data-metric=memory] .value').dataset.value,
  c.querySelector('[data-metric=latency] .value').dataset.value])";

/// JavaScript that is `true` once the page shows exactly `hosts`, each up with CPU, memory and response time.
pub fn all_live_js(hosts: &[&str]) -> String {
    let wanted = serde_json::to_string(hosts).expect("host names serialize");
    format!(
        "(() => {{ const cards = {CARDS_JS}; const want = {wanted}; \
         return cards.length === want.length && want.every(h => cards.some(c => c[0] === h \
         && c[1] === 'up' && c[2] !== '' && c[3] !== '' && c[4] !== '')); }})()"
    )
}

/// JavaScript that is `true` once `host`'s card shows its app in `state` (up, down or unknown).
pub fn app_state_js(host: &str, state: &str) -> String {
    format!("document.querySelector('[data-host={host}]')?.dataset.appState === '{state}'")
}

/// Checks the numbers the page shows are plausible: percentages within 0–100, response times ≥ 0.
pub fn assert_plausible_numbers(cards: &serde_json::Value) {
    for card in cards.as_array().expect("cards are a list") {
        let number = |i: usize| -> f64 {
            card[i]
                .as_str()
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("card {card} has no number at {i}"))
        };
        let (cpu, memory, latency) = (number(2), number(3), number(4));
        assert!((0.0..=100.0).contains(&cpu), "CPU of {} is {cpu}", card[0]);
        assert!(
            memory > 0.0 && memory <= 100.0,
            "memory of {} is {memory}",
            card[0]
        );
        assert!(latency >= 0.0, "response time of {} is {latency}", card[0]);
    }
}
