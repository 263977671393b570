//! Drives a run: one OS thread per core with a current-thread runtime, one task per connection, a
//! coordinator that reports progress and collects the threads' records and statistics.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use http::header::{HeaderValue, HOST};
use tokio::sync::{mpsc, watch};

use super::http1::{Conn, RequestBytes, Response};
use super::record::{RawRecord, RecordStream, RequestOutcome};
use super::{ErrorKind, LoadError, LoadPlan, LoadRun, Progress, Snapshot, Stats, Stop};

/// How often the progress sink is called.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(250);
/// Resolution of tokio's timer.
const TIMER_GRANULARITY: Duration = Duration::from_millis(1);
/// Distinct backend header values kept per thread; further values are counted under [`OVERFLOW_BACKEND`].
const MAX_BACKENDS: usize = 256;
const OVERFLOW_BACKEND: &str = "(other)";

/// What every thread reads: the request template, the schedule, and the stop flags.
struct Shared {
    addr: SocketAddr,
    request: RequestBytes,
    timeout: Duration,
    backend_header: Option<http::header::HeaderName>,
    start: Instant,
    deadline: Option<Instant>,
    /// Set by the coordinator when the progress sink asks to stop.
    stop: AtomicBool,
    counters: Vec<Counters>,
    tap: Option<super::Tap>,
}

/// Progress counters of one thread, written only by it; padded so threads do not share a cache line.
#[repr(align(128))]
#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    errors: AtomicU64,
}

/// A thread's share of the plan.
#[derive(Debug, Clone, Copy)]
struct Quota {
    connections: usize,
    /// Requests this thread may send (count mode).
    limit: Option<u64>,
    /// Under a rate: (first due time after start, interval) of this thread's schedule, in ns.
    schedule: Option<(f64, f64)>,
}

/// Splits `total` into `parts` shares that differ by at most one.
fn split(total: u64, parts: usize, i: usize) -> u64 {
    total / parts as u64 + u64::from((i as u64) < total % parts as u64)
}

fn quotas(plan: &LoadPlan, threads: usize) -> Vec<Quota> {
    (0..threads)
        .map(|i| {
            let connections = split(plan.concurrency as u64, threads, i) as usize;
            let share = connections as f64 / plan.concurrency as f64;
            Quota {
                connections,
                limit: match plan.stop {
                    Stop::Count(n) => Some(split(n, threads, i)),
                    Stop::Duration(_) => None,
                },
                // Thread i's requests are due at (i + k * threads') / rate: the threads interleave.
                schedule: plan.rate.map(|rate| {
                    let interval = 1e9 / (rate * share);
                    (i as f64 * 1e9 / rate, interval)
                }),
            }
        })
        .collect()
}

/// Runs the plan and returns every request's record. `progress` is called about four times a second and
/// may stop the run early.
pub async fn run(plan: LoadPlan, progress: &mut dyn Progress) -> Result<LoadRun, LoadError> {
    plan.validate()?;
    let host = plan.url.host().unwrap_or_default().to_string();
    let port = plan.url.port_u16().unwrap_or(80);
    let addr = tokio::net::lookup_host((host.trim_matches(['[', ']']), port))
        .await
        .and_then(|mut addrs| {
            addrs.next().ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::NotFound, "no address found")
            })
        })
        .map_err(|source| LoadError::Resolve {
            host: host.clone(),
            source,
        })?;
    let mut headers = plan.headers.clone();
    if !headers.contains_key(HOST) {
        let authority = plan.url.authority().map_or(host.as_str(), |a| a.as_str());
        let value = HeaderValue::from_str(authority).map_err(|e| LoadError::InvalidUrl {
            url: plan.url.to_string(),
            why: e.to_string(),
        })?;
        headers.insert(HOST, value);
    }
    let path = plan.url.path_and_query().map_or("/", |p| p.as_str());
    let request = RequestBytes::new(&plan.method, path, &headers, &plan.body);

    let threads = plan.thread_count();
    let start = Instant::now();
    let started_at = SystemTime::now();
    let shared = Arc::new(Shared {
        addr,
        request,
        timeout: plan.timeout,
        backend_header: plan.backend_header.clone(),
        start,
        deadline: match plan.stop {
            Stop::Duration(d) => Some(start + d),
            Stop::Count(_) => None,
        },
        stop: AtomicBool::new(false),
        counters: (0..threads).map(|_| Counters::default()).collect(),
        tap: plan.tap.clone(),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    let mut handles = Vec::with_capacity(threads);
    for (i, quota) in quotas(&plan, threads).into_iter().enumerate() {
        let thread_shared = shared.clone();
        let stop_rx = stop_rx.clone();
        let done_tx = done_tx.clone();
        let handle = std::thread::Builder::new()
            .name(format!("load-{i}"))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a current-thread runtime builds");
                let local = tokio::task::LocalSet::new();
                let result = local.block_on(&rt, thread_main(thread_shared, i, quota, stop_rx));
                let _ = done_tx.send(result);
            })
            .map_err(LoadError::Thread);
        match handle {
            Ok(h) => handles.push(h),
            Err(e) => {
                shared.stop.store(true, Ordering::Relaxed);
                let _ = stop_tx.send(true);
                return Err(e);
            }
        }
    }
    drop(done_tx);

    let mut results = Vec::with_capacity(threads);
    let mut ticker = tokio::time::interval_at(
        tokio::time::Instant::now() + PROGRESS_INTERVAL,
        PROGRESS_INTERVAL,
    );
    let mut stopped_early = false;
    loop {
        tokio::select! {
            r = done_rx.recv() => match r {
                Some(r) => results.push(r),
                None => break,
            },
            _ = ticker.tick(), if !stopped_early => {
                let snap = snapshot(&shared);
                if progress.update(&snap).is_break() {
                    stopped_early = true;
                    shared.stop.store(true, Ordering::Relaxed);
                    let _ = stop_tx.send(true);
                }
            }
        }
    }
    let elapsed = start.elapsed();
    for h in handles {
        h.join().map_err(|_| LoadError::ThreadPanicked)?;
    }
    if results.len() != threads {
        return Err(LoadError::ThreadPanicked);
    }
    let _ = progress.update(&snapshot(&shared));
    Ok(merge(
        plan,
        threads,
        started_at,
        elapsed,
        stopped_early,
        results,
    ))
}

fn snapshot(shared: &Shared) -> Snapshot {
    let (mut requests, mut errors) = (0, 0);
    for c in &shared.counters {
        requests += c.requests.load(Ordering::Relaxed);
        errors += c.errors.load(Ordering::Relaxed);
    }
    Snapshot {
        elapsed: shared.start.elapsed(),
        requests,
        errors,
    }
}

/// Combines the threads' results, giving backend names one global index.
fn merge(
    plan: LoadPlan,
    threads: usize,
    started_at: SystemTime,
    elapsed: Duration,
    stopped_early: bool,
    results: Vec<ThreadResult>,
) -> LoadRun {
    let rate_limited = plan.rate.is_some();
    let mut backends: Vec<String> = Vec::new();
    let mut overall = Stats::new(rate_limited);
    let mut per_backend = vec![Stats::new(rate_limited)];
    let mut streams = Vec::new();
    let mut missed = 0;
    for r in results {
        let map: Arc<[u32]> = r
            .backends
            .iter()
            .map(|name| match backends.iter().position(|b| b == name) {
                Some(i) => i as u32,
                None => {
                    backends.push(name.clone());
                    per_backend.push(Stats::new(rate_limited));
                    (backends.len() - 1) as u32
                }
            })
            .collect();
        for (local, stats) in r.stats.iter().enumerate() {
            overall.add(stats);
            let global = if local == 0 {
                0
            } else {
                map[local - 1] as usize + 1
            };
            per_backend[global].add(stats);
        }
        streams.extend(r.streams.into_iter().map(|s| (s, map.clone())));
        missed += r.missed;
    }
    LoadRun {
        plan,
        threads,
        started_at,
        elapsed,
        stopped_early,
        missed,
        streams,
        backends,
        overall,
        per_backend,
    }
}

struct ThreadResult {
    streams: Vec<RecordStream>,
    /// Backend names; record backend index `i + 1` means `backends[i]`.
    backends: Vec<String>,
    /// Index 0: no backend header; `i + 1`: `backends[i]`.
    stats: Vec<Stats>,
    missed: u64,
}

/// State shared by the connections of one thread (single-threaded: plain cells).
struct Local {
    shared: Arc<Shared>,
    index: usize,
    quota: Quota,
    next_slot: Cell<u64>,
    completed: Cell<u64>,
    errors: Cell<u64>,
    streams: RefCell<Vec<RecordStream>>,
    backends: RefCell<Vec<Box<[u8]>>>,
    stats: RefCell<Vec<Stats>>,
}

/// When the claimed request should start.
enum Slot {
    Now,
    At(Instant),
}

impl Local {
    /// Claims the next request, or `None` when the run is over for this thread.
    fn claim(&self, now: Instant) -> Option<Slot> {
        let s = &self.shared;
        if s.stop.load(Ordering::Relaxed) || s.deadline.is_some_and(|d| now >= d) {
            return None;
        }
        let k = self.next_slot.get();
        if self.quota.limit.is_some_and(|l| k >= l) {
            return None;
        }
        let slot = match self.quota.schedule {
            None => Slot::Now,
            Some((first, interval)) => {
                let due = s.start + Duration::from_nanos((first + k as f64 * interval) as u64);
                if s.deadline.is_some_and(|d| due >= d) {
                    return None;
                }
                Slot::At(due)
            }
        };
        self.next_slot.set(k + 1);
        Some(slot)
    }

    /// Requests due before the deadline, or before now for a run stopped early, that were never
    /// claimed (called when the run is over).
    fn missed(&self) -> u64 {
        let (Some((first, interval)), Some(deadline)) = (self.quota.schedule, self.shared.deadline)
        else {
            return 0;
        };
        // A run stopped early (the progress sink, a rollout's step ending) owes nothing after the stop:
        // counting to the deadline made a stopped open-ended load report millions "due but not sent".
        let end = deadline.min(Instant::now());
        let window = end.saturating_duration_since(self.shared.start).as_nanos() as f64 - first;
        let due = if window > 0.0 {
            (window / interval).ceil() as u64
        } else {
            0
        };
        due.saturating_sub(self.next_slot.get())
    }

    /// Index of a backend header value in this thread's table (1-based; 0 is "no header").
    fn backend_index(&self, value: &[u8]) -> u32 {
        let mut backends = self.backends.borrow_mut();
        if let Some(i) = backends.iter().position(|b| **b == *value) {
            return i as u32 + 1;
        }
        let value = if backends.len() >= MAX_BACKENDS {
            let overflow = OVERFLOW_BACKEND.as_bytes();
            if let Some(i) = backends.iter().position(|b| **b == *overflow) {
                return i as u32 + 1;
            }
            overflow
        } else {
            value
        };
        backends.push(value.into());
        self.stats
            .borrow_mut()
            .push(Stats::new(self.quota.schedule.is_some()));
        backends.len() as u32
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        conn: usize,
        start: Instant,
        sent: Instant,
        end: Instant,
        outcome: RequestOutcome,
        bytes: u64,
        backend: u32,
    ) {
        let latency_ns = end.saturating_duration_since(start).as_nanos() as u64;
        let service_ns = end.saturating_duration_since(sent).as_nanos() as u64;
        self.stats.borrow_mut()[backend as usize].record(outcome, latency_ns, service_ns, bytes);
        self.streams.borrow_mut()[conn].push(&RawRecord {
            offset_us: start
                .saturating_duration_since(self.shared.start)
                .as_micros() as u64,
            latency_ns,
            outcome,
            bytes,
            backend,
        });
        if let Some(tap) = &self.shared.tap {
            tap.push(super::Tapped {
                offset_s: Duration::from_micros(
                    start
                        .saturating_duration_since(self.shared.start)
                        .as_micros() as u64,
                )
                .as_secs_f64(),
                latency_ms: Duration::from_nanos(latency_ns / 100 * 100).as_secs_f64() * 1e3,
                status: match outcome {
                    RequestOutcome::Status(s) => Some(s),
                    RequestOutcome::Error(_) => None,
                },
                bytes,
                backend: (backend > 0)
                    .then(|| backend_name(&self.backends.borrow()[backend as usize - 1])),
            });
        }
        let counters = &self.shared.counters[self.index];
        let n = self.completed.get() + 1;
        self.completed.set(n);
        counters.requests.store(n, Ordering::Relaxed);
        if matches!(outcome, RequestOutcome::Error(_)) {
            let e = self.errors.get() + 1;
            self.errors.set(e);
            counters.errors.store(e, Ordering::Relaxed);
        }
    }
}

async fn thread_main(
    shared: Arc<Shared>,
    index: usize,
    quota: Quota,
    mut stop_rx: watch::Receiver<bool>,
) -> ThreadResult {
    let local = Rc::new(Local {
        shared,
        index,
        quota,
        next_slot: Cell::new(0),
        completed: Cell::new(0),
        errors: Cell::new(0),
        streams: RefCell::new(
            (0..quota.connections)
                .map(|_| RecordStream::new())
                .collect(),
        ),
        backends: RefCell::new(Vec::new()),
        stats: RefCell::new(vec![Stats::new(quota.schedule.is_some())]),
    });
    let tasks: Vec<_> = (0..quota.connections)
        .map(|c| tokio::task::spawn_local(connection_loop(local.clone(), c)))
        .collect();
    let aborts: Vec<_> = tasks
        .iter()
        .map(tokio::task::JoinHandle::abort_handle)
        .collect();
    tokio::select! {
        () = async { for t in tasks { let _ = t.await; } } => {}
        _ = stop_rx.wait_for(|stop| *stop) => {
            for a in &aborts {
                a.abort();
            }
        }
    }
    // Aborted tasks may still hold clones of `local` until the runtime drops them: take the data out.
    ThreadResult {
        streams: local.streams.take(),
        backends: local
            .backends
            .take()
            .iter()
            .map(|b| backend_name(b))
            .collect(),
        stats: local.stats.take(),
        missed: local.missed(),
    }
}

fn backend_name(v: &[u8]) -> String {
    String::from_utf8_lossy(v).into_owned()
}

async fn connection_loop(local: Rc<Local>, index: usize) {
    let shared = local.shared.clone();
    let mut conn: Option<Conn> = None;
    let mut intern = |value: &[u8]| local.backend_index(value);
    let timer = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(timer);
    loop {
        let now = Instant::now();
        let Some(slot) = local.claim(now) else { break };
        let (start, sent) = match slot {
            Slot::Now => (now, now),
            Slot::At(due) => {
                // tokio's timer wakes on the first millisecond tick at or after its deadline. Aiming a
                // millisecond early sends the request within the millisecond before it is due instead of
                // up to a millisecond after, which would add the timer's lateness to every latency.
                let wake = due.checked_sub(TIMER_GRANULARITY).unwrap_or(due);
                if wake > now {
                    tokio::time::sleep_until(wake.into()).await;
                }
                // Latency counts from the due time, or from the actual send if that came first.
                let sent = Instant::now();
                (due.min(sent), sent)
            }
        };
        timer.as_mut().reset((sent + shared.timeout).into());
        let result = tokio::select! {
            biased;
            r = exchange(&shared, &mut conn, &mut intern) => r,
            () = timer.as_mut() => Err(ErrorKind::Timeout),
        };
        let end = Instant::now();
        match result {
            Ok(r) => {
                if !r.keep_alive {
                    conn = None;
                }
                local.record(
                    index,
                    start,
                    sent,
                    end,
                    RequestOutcome::Status(r.status),
                    r.bytes,
                    r.backend,
                );
            }
            Err(kind) => {
                conn = None;
                local.record(index, start, sent, end, RequestOutcome::Error(kind), 0, 0);
            }
        }
    }
}

/// Sends one request, connecting first when there is no usable open connection.
///
/// A request that fails on a reused keep-alive connection before any response byte arrived is sent once
/// more on a fresh connection, as browsers and wrk do: the server closed the idle connection while the
/// request was on its way (a keep-alive timeout race), which says nothing about the service.
async fn exchange(
    shared: &Shared,
    conn: &mut Option<Conn>,
    intern: &mut dyn FnMut(&[u8]) -> u32,
) -> Result<Response, ErrorKind> {
    let reused = conn.as_mut().is_some_and(Conn::is_usable);
    if !reused {
        *conn = Some(Conn::connect(shared.addr).await?);
    }
    let c = conn.as_mut().expect("connected above");
    let result = c
        .send(&shared.request, shared.backend_header.as_ref(), intern)
        .await;
    match result {
        Err(ErrorKind::Reset | ErrorKind::Closed) if reused && !c.got_response_bytes() => {
            *conn = Some(Conn::connect(shared.addr).await?);
            let c = conn.as_mut().expect("connected above");
            c.send(&shared.request, shared.backend_header.as_ref(), intern)
                .await
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(concurrency: usize, stop: Stop, rate: Option<f64>) -> LoadPlan {
        let mut p = LoadPlan::new("http://127.0.0.1:1/").unwrap();
        p.concurrency = concurrency;
        p.stop = stop;
        p.rate = rate;
        p
    }

    #[test]
    fn connections_and_counts_are_split_evenly_across_threads() {
        let q = quotas(&plan(5, Stop::Count(11), None), 2);
        assert_eq!(q.iter().map(|q| q.connections).collect::<Vec<_>>(), [3, 2]);
        assert_eq!(
            q.iter().map(|q| q.limit.unwrap()).collect::<Vec<_>>(),
            [6, 5]
        );
    }

    #[test]
    fn rate_schedules_interleave_and_sum_to_the_rate() {
        let q = quotas(
            &plan(4, Stop::Duration(Duration::from_secs(1)), Some(1000.0)),
            2,
        );
        let (first0, int0) = q[0].schedule.unwrap();
        let (first1, int1) = q[1].schedule.unwrap();
        assert_eq!((first0, first1), (0.0, 1e6));
        assert_eq!((int0, int1), (2e6, 2e6));
        let per_second: f64 = q.iter().map(|q| 1e9 / q.schedule.unwrap().1).sum();
        assert!((per_second - 1000.0).abs() < 1e-9);
    }

    #[test]
    fn more_threads_than_connections_are_not_used() {
        let mut p = plan(1, Stop::Count(1), None);
        p.threads = Some(8);
        assert_eq!(p.thread_count(), 1);
    }
}
