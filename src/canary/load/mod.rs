//! The HTTP load generator behind `pipeline load` and `pipeline canary`: plans a run ([`LoadPlan`]), drives
//! it ([`run`]), and keeps every request's record plus summaries ([`LoadRun`]).
//!
//! Design, in short (BENCHMARKS.md has the measurements):
//! - one OS thread per core, each with its own current-thread tokio runtime; connections are split across
//!   them and never migrate, so nothing in the hot path is shared between threads except a relaxed counter;
//! - one task per connection speaking HTTP/1.1 with keep-alive through a small codec (`http1.rs`: request
//!   encoded once, responses parsed in place with `httparse`, no allocation per request), reconnecting after
//!   an error or a server-side close;
//! - closed model by default (each connection sends its next request when the last one is done); with a
//!   rate, an open model: request `k` is due at `k / rate` and its latency is measured from that due time
//!   (or from its actual send, if that came earlier), so a stalled server shows up in the latency instead of
//!   silently lowering the send rate;
//! - every request is stored in about 4 bytes (`record.rs`), summaries come from log-linear histograms
//!   (`histogram.rs`) kept per thread and backend while the run goes, merged at the end.

mod histogram;
mod http1;
mod options;
mod record;
mod summary;
mod worker;

use std::ops::ControlFlow;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Method, Uri};

pub use histogram::{Histogram, PERCENTILE_DEFINITION};
pub use options::LoadOptions;
pub use record::RequestOutcome;
pub use summary::{thousands, LatencyMs, RequestSummary};
pub use worker::run;

/// How a request failed when no complete HTTP response came back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorKind {
    /// The TCP connection was refused (nothing listening).
    ConnectRefused,
    /// Connecting failed for another reason (unreachable, no route, …).
    ConnectFailed,
    /// No complete response within `--timeout` (connecting included).
    Timeout,
    /// The connection was reset or the pipe broke while writing or reading.
    Reset,
    /// The server closed the connection before the response was complete.
    Closed,
    /// The response was not valid HTTP/1.
    HttpParse,
    /// Another I/O error.
    Io,
}

impl ErrorKind {
    /// Every kind, in index order.
    pub const ALL: [ErrorKind; 7] = [
        ErrorKind::ConnectRefused,
        ErrorKind::ConnectFailed,
        ErrorKind::Timeout,
        ErrorKind::Reset,
        ErrorKind::Closed,
        ErrorKind::HttpParse,
        ErrorKind::Io,
    ];

    /// The snake_case name used in summaries and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::ConnectRefused => "connect_refused",
            ErrorKind::ConnectFailed => "connect_failed",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Reset => "reset",
            ErrorKind::Closed => "closed",
            ErrorKind::HttpParse => "http_parse",
            ErrorKind::Io => "io",
        }
    }

    fn from_index(i: usize) -> ErrorKind {
        ErrorKind::ALL[i]
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// When a run ends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stop {
    /// Send requests for this long, then let the ones in flight finish (each within the timeout).
    Duration(Duration),
    /// Send exactly this many requests.
    Count(u64),
}

/// Everything a load run needs. Build with [`LoadPlan::new`] and adjust the public fields.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    /// Target, `http://host[:port][/path][?query]` (no TLS).
    pub url: Uri,
    pub method: Method,
    /// Extra request headers; `Host` is added from the URL unless set here.
    pub headers: HeaderMap,
    pub body: Bytes,
    /// Connections, one request in flight on each.
    pub concurrency: usize,
    pub stop: Stop,
    /// Total requests per second across all connections (open model); `None` = as fast as possible.
    pub rate: Option<f64>,
    /// Limit for one request, connecting included.
    pub timeout: Duration,
    /// Response header naming the backend that served the request (e.g. `x-backend`).
    pub backend_header: Option<HeaderName>,
    /// OS threads; `None` = one per core, at most one per connection.
    pub threads: Option<usize>,
    /// Also hands every finished request to this tap while the run goes on (interim looks).
    pub tap: Option<Tap>,
}

/// A finished request as a [`Tap`] sees it, while the load runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Tapped {
    /// Start since the run began, in seconds (as [`Record::offset`]).
    pub offset_s: f64,
    pub latency_ms: f64,
    /// HTTP status, `None` when no complete response came back.
    pub status: Option<u16>,
    pub bytes: u64,
    /// The backend header's value.
    pub backend: Option<String>,
}

/// Where a running load copies its finished requests, for a reader that looks at the data so far (the
/// canary's sequential judge). Each load thread appends under a short lock; [`Tap::drain`] takes what
/// came since the last drain.
#[derive(Debug, Clone, Default)]
pub struct Tap(std::sync::Arc<std::sync::Mutex<Vec<Tapped>>>);

impl Tap {
    pub fn new() -> Self {
        Self::default()
    }

    pub(crate) fn push(&self, r: Tapped) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(r);
    }

    /// The requests finished since the last drain.
    pub fn drain(&self) -> Vec<Tapped> {
        std::mem::take(
            &mut *self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}

impl LoadPlan {
    /// A plan for `url` with the defaults of `pipeline load`: GET, 10 connections, 10 s, no rate, 10 s timeout.
    pub fn new(url: &str) -> Result<LoadPlan, LoadError> {
        Ok(LoadPlan {
            url: parse_url(url)?,
            method: Method::GET,
            headers: HeaderMap::new(),
            body: Bytes::new(),
            concurrency: 10,
            stop: Stop::Duration(Duration::from_secs(10)),
            rate: None,
            timeout: Duration::from_secs(10),
            backend_header: None,
            threads: None,
            tap: None,
        })
    }

    /// Checks the numbers; [`run`] calls this first.
    pub fn validate(&self) -> Result<(), LoadError> {
        let bad = |m: &str| Err(LoadError::InvalidPlan(m.to_string()));
        if self.concurrency == 0 {
            return bad("concurrency must be at least 1");
        }
        if self.threads == Some(0) {
            return bad("threads must be at least 1");
        }
        match self.stop {
            Stop::Duration(d) if d.is_zero() => return bad("duration must be more than 0"),
            Stop::Count(0) => return bad("request count must be at least 1"),
            _ => {}
        }
        if let Some(r) = self.rate {
            if !(r.is_finite() && r > 0.0) {
                return bad("rate must be a positive number of requests per second");
            }
        }
        if self.timeout.is_zero() {
            return bad("timeout must be more than 0");
        }
        Ok(())
    }

    /// Threads this plan runs on.
    pub fn thread_count(&self) -> usize {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        self.threads
            .unwrap_or(cores)
            .clamp(1, self.concurrency.max(1))
    }
}

/// Parses and checks a target URL: `http` scheme, a host, an optional port and path.
pub fn parse_url(url: &str) -> Result<Uri, LoadError> {
    let invalid = |why: &str| LoadError::InvalidUrl {
        url: url.to_string(),
        why: why.to_string(),
    };
    let uri: Uri = url
        .parse()
        .map_err(|e: http::uri::InvalidUri| invalid(&e.to_string()))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err(invalid(
                "https is not supported; point the load at a plain http:// endpoint",
            ))
        }
        Some(other) => {
            return Err(invalid(&format!(
                "unsupported scheme `{other}`; use http://"
            )))
        }
        None => return Err(invalid("missing scheme; write it as http://host:port/path")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(invalid("missing host"));
    }
    // `Uri` keeps a port it cannot read as a u16 (`:99999`) and then reports no port at all, which would
    // silently mean port 80: check the authority's own text.
    let authority = uri.authority().map_or("", |a| a.as_str());
    if authority.contains('@') {
        return Err(invalid(
            "user information (`user@`) is not supported; send credentials with -H 'Authorization: …'",
        ));
    }
    let after_host = match authority.rfind(']') {
        Some(end) => &authority[end + 1..],
        None => authority,
    };
    if let Some((_, port)) = after_host.rsplit_once(':') {
        match port.parse::<u16>() {
            Ok(p) if p > 0 && port.bytes().all(|b| b.is_ascii_digit()) => {}
            _ if port.is_empty() => {
                return Err(invalid(
                    "empty port after `:`; give a port from 1 to 65535 or leave out the `:`",
                ))
            }
            _ => {
                return Err(invalid(&format!(
                    "invalid port `{port}`; a port is a number from 1 to 65535"
                )))
            }
        }
    }
    Ok(uri)
}

/// Parses a `Name: value` header argument.
pub fn parse_header(arg: &str) -> Result<(HeaderName, HeaderValue), LoadError> {
    let invalid = |why: &str| LoadError::InvalidHeader {
        header: arg.to_string(),
        why: why.to_string(),
    };
    let (name, value) = arg
        .split_once(':')
        .ok_or_else(|| invalid("expected `Name: value`"))?;
    let name =
        HeaderName::from_bytes(name.trim().as_bytes()).map_err(|e| invalid(&e.to_string()))?;
    let value = HeaderValue::from_str(value.trim()).map_err(|e| invalid(&e.to_string()))?;
    Ok((name, value))
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("invalid URL `{url}`: {why}")]
    InvalidUrl { url: String, why: String },
    #[error("invalid header `{header}`: {why}")]
    InvalidHeader { header: String, why: String },
    #[error("invalid load plan: {0}")]
    InvalidPlan(String),
    #[error("cannot read --body-file {}: {source}; give a readable file", path.display())]
    BodyFile {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot resolve `{host}`: {source} (check the host name in the URL)")]
    Resolve {
        host: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start load thread: {0}")]
    Thread(#[source] std::io::Error),
    #[error("a load thread crashed; this is a bug in pipeline")]
    ThreadPanicked,
}

impl LoadError {
    /// Whether the user fixes it by changing what they passed (exit 2).
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            LoadError::InvalidUrl { .. }
                | LoadError::InvalidHeader { .. }
                | LoadError::InvalidPlan(_)
                | LoadError::BodyFile { .. }
        )
    }
}

/// Progress of a running load, handed to a [`Progress`] sink about four times a second.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot {
    pub elapsed: Duration,
    /// Requests completed so far (responses and errors).
    pub requests: u64,
    /// Of those, requests that got no complete response.
    pub errors: u64,
}

impl Snapshot {
    /// The snapshot of a load that has not started.
    pub const START: Snapshot = Snapshot {
        elapsed: Duration::ZERO,
        requests: 0,
        errors: 0,
    };

    /// Requests per second completed between `earlier` and this snapshot (0 when no time passed).
    pub fn rate_since(&self, earlier: &Snapshot) -> f64 {
        let dt = self.elapsed.saturating_sub(earlier.elapsed).as_secs_f64();
        if dt > 0.0 {
            self.requests.saturating_sub(earlier.requests) as f64 / dt
        } else {
            0.0
        }
    }
}

/// Receives progress while a load runs; returning `ControlFlow::Break(())` stops the run early (requests
/// still in flight are abandoned and not recorded).
pub trait Progress {
    fn update(&mut self, snapshot: &Snapshot) -> ControlFlow<()>;
}

impl<F: FnMut(&Snapshot) -> ControlFlow<()>> Progress for F {
    fn update(&mut self, snapshot: &Snapshot) -> ControlFlow<()> {
        self(snapshot)
    }
}

/// A sink that ignores progress.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn update(&mut self, _: &Snapshot) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }
}

/// One request of a finished run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Record<'a> {
    /// Start since the run began (1 µs resolution): the actual send time; under a rate, the time the request
    /// was due, or its actual send if that was earlier (requests go out up to 1 ms early because of the
    /// timer's granularity, never measured from after their due time).
    pub offset: Duration,
    /// From `offset` until the response body was read completely or the request failed (100 ns resolution).
    pub latency: Duration,
    pub outcome: RequestOutcome,
    /// Response body bytes.
    pub bytes: u64,
    /// Value of the backend header, if the plan names one and the response carried it.
    pub backend: Option<&'a str>,
}

impl Record<'_> {
    /// HTTP status, if a response arrived.
    pub fn status(&self) -> Option<u16> {
        match self.outcome {
            RequestOutcome::Status(s) => Some(s),
            RequestOutcome::Error(_) => None,
        }
    }

    /// How the request failed, if it did.
    pub fn error(&self) -> Option<ErrorKind> {
        match self.outcome {
            RequestOutcome::Status(_) => None,
            RequestOutcome::Error(k) => Some(k),
        }
    }
}

/// Counters and latency histograms for a set of requests (a whole run or one backend).
#[derive(Debug, Clone, Default)]
pub(crate) struct Stats {
    /// Requests completed: responses plus errors.
    pub requests: u64,
    /// Latency from the (scheduled) start, of answered requests only (a refusal is not a latency).
    pub latency: Histogram,
    /// Latency from the actual send (only kept under a rate, where it differs).
    pub service: Option<Histogram>,
    /// `(status, count)`, few entries.
    pub status: Vec<(u16, u64)>,
    pub errors: [u64; ErrorKind::ALL.len()],
    pub bytes: u64,
}

impl Stats {
    fn new(rate_limited: bool) -> Self {
        Stats {
            service: rate_limited.then(Histogram::new),
            ..Stats::default()
        }
    }

    #[inline]
    fn record(&mut self, outcome: RequestOutcome, latency_ns: u64, service_ns: u64, bytes: u64) {
        self.requests += 1;
        if matches!(outcome, RequestOutcome::Status(_)) {
            self.latency.record(latency_ns);
            if let Some(h) = &mut self.service {
                h.record(service_ns);
            }
        }
        match outcome {
            RequestOutcome::Status(s) => match self.status.iter_mut().find(|(c, _)| *c == s) {
                Some((_, n)) => *n += 1,
                None => self.status.push((s, 1)),
            },
            RequestOutcome::Error(k) => self.errors[k as usize] += 1,
        }
        self.bytes += bytes;
    }

    fn add(&mut self, other: &Stats) {
        self.requests += other.requests;
        self.latency.add(&other.latency);
        match (&mut self.service, &other.service) {
            (Some(a), Some(b)) => a.add(b),
            (None, Some(b)) => self.service = Some(b.clone()),
            _ => {}
        }
        for &(s, n) in &other.status {
            match self.status.iter_mut().find(|(c, _)| *c == s) {
                Some((_, m)) => *m += n,
                None => self.status.push((s, n)),
            }
        }
        for (a, b) in self.errors.iter_mut().zip(other.errors) {
            *a += b;
        }
        self.bytes += other.bytes;
    }
}

/// The result of a run: every request's record, summaries overall and per backend.
#[derive(Debug)]
pub struct LoadRun {
    plan: LoadPlan,
    threads: usize,
    started_at: SystemTime,
    elapsed: Duration,
    stopped_early: bool,
    missed: u64,
    /// Per connection: its records and the map from its backend indexes to `backends`.
    streams: Vec<(record::RecordStream, std::sync::Arc<[u32]>)>,
    backends: Vec<String>,
    overall: Stats,
    /// Index 0: responses without the backend header; `i + 1`: `backends[i]`.
    per_backend: Vec<Stats>,
}

impl LoadRun {
    pub fn plan(&self) -> &LoadPlan {
        &self.plan
    }

    /// OS threads the run used.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Wall-clock time the run started.
    pub fn started_at(&self) -> SystemTime {
        self.started_at
    }

    /// From the start until the last request finished (or the run was stopped).
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }

    /// Whether the progress sink stopped the run before its stop condition.
    pub fn stopped_early(&self) -> bool {
        self.stopped_early
    }

    /// Under a rate with a duration: requests that were due before the end but never sent, because every
    /// connection was busy (raise the concurrency). Always 0 in the closed model.
    pub fn missed(&self) -> u64 {
        self.missed
    }

    /// Number of recorded requests.
    pub fn len(&self) -> u64 {
        self.streams.iter().map(|(s, _)| s.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Distinct backend header values seen, in order of first appearance per thread.
    pub fn backends(&self) -> &[String] {
        &self.backends
    }

    /// Every request: grouped by connection, in send order within a connection (not globally sorted by
    /// offset; sort if you need a single timeline).
    pub fn records(&self) -> impl Iterator<Item = Record<'_>> + '_ {
        self.streams.iter().flat_map(move |(stream, map)| {
            stream.iter().map(move |r| Record {
                offset: Duration::from_micros(r.offset_us),
                latency: Duration::from_nanos(r.latency_ns),
                outcome: r.outcome,
                bytes: r.bytes,
                backend: match r.backend {
                    0 => None,
                    i => map
                        .get(i as usize - 1)
                        .map(|&g| self.backends[g as usize].as_str()),
                },
            })
        })
    }

    /// Summary of the whole run.
    pub fn summary(&self) -> RequestSummary {
        RequestSummary::from_stats(&self.overall, self.elapsed)
    }

    /// Summary per backend header value (`None`: responses without the header, and errors).
    pub fn backend_summaries(&self) -> Vec<(Option<&str>, RequestSummary)> {
        self.per_backend
            .iter()
            .enumerate()
            .filter(|(_, s)| s.requests > 0)
            .map(|(i, s)| {
                let name = i.checked_sub(1).map(|i| self.backends[i].as_str());
                (name, RequestSummary::from_stats(s, self.elapsed))
            })
            .collect()
    }
}
