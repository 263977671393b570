//! Integration tests of the load generator against loopback test servers written here with hyper (and one
//! raw TCP server that drops connections), plus the `pipeline load --json` command line.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use pipeline::canary::load::{
    self, ErrorKind, LoadPlan, LoadRun, NoProgress, RequestOutcome, Snapshot, Stop,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

type Resp = Response<Full<Bytes>>;

/// Serves `handler` with hyper on a loopback port; `keep_alive: false` makes the server close each
/// connection after one response (`Connection: close`).
async fn serve<F, Fut>(keep_alive: bool, handler: F) -> SocketAddr
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Resp> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let handler = handler.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    let fut = handler(req);
                    async move { Ok::<_, Infallible>(fut.await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .keep_alive(keep_alive)
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

fn response(status: u16, body: &'static str) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = StatusCode::from_u16(status).unwrap();
    r
}

fn plan(addr: SocketAddr, concurrency: usize, stop: Stop) -> LoadPlan {
    let mut p = LoadPlan::new(&format!("http://{addr}/path?x=1")).unwrap();
    p.concurrency = concurrency;
    p.stop = stop;
    p.threads = Some(2);
    p
}

async fn run(plan: LoadPlan) -> LoadRun {
    load::run(plan, &mut NoProgress).await.expect("load run")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn count_mode_sends_exactly_n_requests_and_records_each() {
    let addr = serve(true, |_| async { response(200, "hello") }).await;
    let run = run(plan(addr, 3, Stop::Count(500))).await;
    let s = run.summary();
    assert_eq!((s.requests, s.responses, s.bytes), (500, 500, 2500));
    assert_eq!(s.status.get(&200), Some(&500));
    assert!(s.errors.is_empty());
    assert_eq!(run.len(), 500);
    let records: Vec<_> = run.records().collect();
    assert!(records
        .iter()
        .all(|r| r.status() == Some(200) && r.bytes == 5 && r.backend.is_none()));
    let mut latencies: Vec<Duration> = records.iter().map(|r| r.latency).collect();
    latencies.sort();
    let exact_max_ms = latencies.last().unwrap().as_secs_f64() * 1e3;
    assert!(
        (exact_max_ms - s.latency_ms.unwrap().max).abs() < 0.001,
        "records and summary disagree on the max"
    );
    assert!(records
        .iter()
        .all(|r| r.offset + r.latency <= run.elapsed() + Duration::from_millis(1)));
    assert!(
        s.latency_ms.unwrap().p50 > 0.0
            && s.latency_ms.unwrap().p50 <= s.latency_ms.unwrap().p99
            && s.latency_ms.unwrap().p99 <= s.latency_ms.unwrap().max
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_counted_by_status_not_as_transport_errors() {
    let addr = serve(true, |_| async { response(500, "boom") }).await;
    let run = run(plan(addr, 4, Stop::Duration(Duration::from_millis(300)))).await;
    let s = run.summary();
    assert!(s.requests > 50, "only {} requests", s.requests);
    assert_eq!(s.status.get(&500), Some(&s.requests));
    assert_eq!(s.responses, s.requests);
    assert!(s.errors.is_empty());
    assert_eq!(s.failure_ratio(), 1.0);
    let odd = run
        .records()
        .find(|r| !(r.outcome == RequestOutcome::Status(500) && r.bytes == 4))
        .map(|r| format!("{r:?}"));
    assert_eq!(odd, None);
}

/// A raw HTTP/1.1 server that takes every connection's first request only: on connections 0, 2, 4, …
/// it answers `200 ok` (keep-alive framing) and then closes; on connections 1, 3, 5, … it closes without
/// answering. Every other request is thus dropped on a fresh connection, which no retry can save.
async fn serve_dropping_every_other_request() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let counter = Arc::new(AtomicU64::new(0));
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Ok(n) = stream.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        if counter.fetch_add(1, Ordering::Relaxed) % 2 == 0 {
                            let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                            let _ = stream.write_all(ok).await;
                        }
                        return; // close after the first request
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connections_are_errors_and_the_client_reconnects() {
    let addr = serve_dropping_every_other_request().await;
    let run = run(plan(addr, 2, Stop::Count(400))).await;
    let s = run.summary();
    assert_eq!(s.requests, 400);
    let dropped: u64 = s.errors.values().sum();
    assert!(
        s.errors.keys().all(|k| *k == "closed" || *k == "reset"),
        "unexpected error kinds {:?}",
        s.errors
    );
    // Every other request is dropped, and each drop is followed by a reconnect that gets an answer.
    assert!(
        (150..=250).contains(&dropped),
        "{dropped} dropped of 400: {:?}",
        s.errors
    );
    assert_eq!(s.status.get(&200), Some(&(400 - dropped)));
    assert!(run
        .records()
        .all(|r| matches!(r.error(), None | Some(ErrorKind::Closed | ErrorKind::Reset))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_close_after_each_response_is_not_an_error() {
    let addr = serve(false, |_| async { response(200, "bye") }).await;
    let s = run(plan(addr, 2, Stop::Count(200))).await.summary();
    assert_eq!((s.requests, s.responses), (200, 200));
    assert!(s.errors.is_empty(), "{:?}", s.errors);
}

/// A raw HTTP/1.1 server that answers one request per connection (keep-alive framing, no
/// `Connection: close`) and then closes the connection, as a server with a short keep-alive timeout does.
async fn serve_one_request_per_connection() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                if let Ok(n) = stream.read(&mut buf).await {
                    if n > 0 {
                        let _ = stream
                            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                            .await;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_closed_by_the_server_is_replaced_without_an_error() {
    let addr = serve_one_request_per_connection().await;
    let mut p = plan(addr, 1, Stop::Count(5));
    p.rate = Some(20.0); // 50 ms apart: the server's close arrives while the connection is idle
    let s = run(p).await.summary();
    assert_eq!((s.requests, s.responses), (5, 5));
    assert!(s.errors.is_empty(), "{:?}", s.errors);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_closing_keep_alive_connections_causes_no_resets() {
    // Back to back on each connection: the next request often goes out before the server's close
    // arrives. Such a request got no byte on a reused connection and is retried on a fresh one.
    let addr = serve_one_request_per_connection().await;
    for _ in 0..3 {
        let s = run(plan(addr, 2, Stop::Count(300))).await.summary();
        assert_eq!((s.requests, s.responses), (300, 300), "{:?}", s.errors);
        assert!(s.errors.is_empty(), "{:?}", s.errors);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_not_latencies_and_rps_is_requests_over_the_window() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let s = run(plan(addr, 2, Stop::Count(20))).await.summary();
    assert_eq!((s.requests, s.responses), (20, 0));
    assert_eq!(s.latency_ms, None, "a refusal has no latency");
    assert!((s.rps - s.requests as f64 / s.duration_s).abs() < 1e-9);

    let ok = serve(true, |_| async { response(200, "ok") }).await;
    let mut p = plan(ok, 2, Stop::Duration(Duration::from_millis(500)));
    p.rate = Some(100.0);
    let s = run(p).await.summary();
    assert!((s.rps - s.requests as f64 / s.duration_s).abs() < 1e-9);
    assert!(
        (0.45..1.0).contains(&s.duration_s),
        "window {}",
        s.duration_s
    );
    assert!((40.0..=110.0).contains(&s.rps), "rps {}", s.rps);
    assert!(s.latency_ms.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_listening_is_connect_refused() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let s = run(plan(addr, 2, Stop::Count(10))).await.summary();
    assert_eq!(s.requests, 10);
    assert_eq!(s.errors.get("connect_refused"), Some(&10));
    assert_eq!(s.responses, 0);
}

/// A server that answers at once, except that from its `at`-th request on it stops answering anything for
/// `pause` (a stop-the-world pause): requests arriving meanwhile wait for the pause to end.
async fn serve_stalling(at: u64, pause: Duration) -> SocketAddr {
    let count = Arc::new(AtomicU64::new(0));
    let until: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
    serve(true, move |_| {
        let n = count.fetch_add(1, Ordering::SeqCst) + 1;
        let until = until.clone();
        async move {
            let wait = {
                let mut u = until.lock().unwrap();
                if n == at {
                    *u = Some(Instant::now() + pause);
                }
                *u
            };
            if let Some(t) = wait {
                tokio::time::sleep_until(t.into()).await;
            }
            response(200, "ok")
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stall_shows_in_rate_corrected_latency_but_hides_in_uncorrected() {
    // 200 req/s for 3 s; the server freezes for 1 s after about 1 s.
    let addr = serve_stalling(200, Duration::from_secs(1)).await;
    let mut p = plan(addr, 8, Stop::Duration(Duration::from_secs(3)));
    p.rate = Some(200.0);
    let run = run(p).await;
    let s = run.summary();
    let uncorrected = s
        .latency_uncorrected_ms
        .expect("uncorrected latency under a rate");
    // Every request due within the 3 s was either sent or counted as missed (all connections busy).
    assert_eq!(s.requests + run.missed(), 600);
    // About a third of the requests were due during the pause: each waited for its end, so the corrected
    // p90 is hundreds of ms. Only the 8 requests in flight saw the pause as service time.
    assert!(
        s.latency_ms.unwrap().p90 > 300.0,
        "corrected p90 {} ms",
        s.latency_ms.unwrap().p90
    );
    assert!(
        uncorrected.p90 < 50.0,
        "uncorrected p90 {} ms",
        uncorrected.p90
    );
    assert!(s.latency_ms.unwrap().max > 900.0 && uncorrected.max > 900.0);
    // Records carry the corrected latency and the schedule: at 200 req/s a request is due every 5 ms, each
    // slot is used once, and a request's offset is its due time or at most 1 ms before (sent early).
    let mut slots: Vec<u128> = run
        .records()
        .map(|r| {
            let us = r.offset.as_micros();
            let slot = us.div_ceil(5_000);
            assert!(
                slot * 5_000 - us <= 1_100,
                "offset {us} µs is not just before a 5 ms slot"
            );
            slot
        })
        .collect();
    slots.sort_unstable();
    slots.dedup();
    assert_eq!(slots.len() as u64, s.requests);
    let slow = run
        .records()
        .filter(|r| r.latency > Duration::from_millis(300))
        .count();
    assert!(slow > 100, "{slow} records slower than 300 ms");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_server_times_out() {
    let addr = serve_stalling(1, Duration::from_secs(30)).await;
    let mut p = plan(addr, 2, Stop::Count(4));
    p.timeout = Duration::from_millis(200);
    let started = Instant::now();
    let s = run(p).await.summary();
    assert_eq!(s.errors.get("timeout"), Some(&4));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(started.elapsed() >= Duration::from_millis(200));
    // A timeout is an error, not a latency.
    assert_eq!(s.latency_ms, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backends_told_apart_by_header_get_their_own_summaries_and_records() {
    // Requests alternate between "blue" (fast, always 200) and "green" (2 ms slower, every 5th answer a 503).
    let count = Arc::new(AtomicU64::new(0));
    let addr = serve(true, move |_| {
        let n = count.fetch_add(1, Ordering::SeqCst);
        async move {
            let (name, status) = if n % 2 == 0 {
                ("blue", 200)
            } else {
                tokio::time::sleep(Duration::from_millis(2)).await;
                ("green", if n % 10 == 1 { 503 } else { 200 })
            };
            let mut r = response(status, "x");
            r.headers_mut().insert("x-backend", name.parse().unwrap());
            r
        }
    })
    .await;
    let mut p = plan(addr, 2, Stop::Count(1000));
    p.backend_header = Some("x-backend".parse().unwrap());
    let run = run(p).await;
    let mut names = run.backends().to_vec();
    names.sort();
    assert_eq!(names, ["blue", "green"]);
    let per: Vec<_> = run.backend_summaries();
    let get = |n: &str| {
        per.iter()
            .find(|(b, _)| *b == Some(n))
            .map(|(_, s)| s.clone())
            .unwrap()
    };
    let (blue, green) = (get("blue"), get("green"));
    assert_eq!(blue.requests + green.requests, 1000);
    assert_eq!((blue.requests, green.requests), (500, 500));
    assert_eq!(blue.status.get(&503), None);
    assert_eq!(green.status.get(&503), Some(&100));
    assert!(green.latency_ms.unwrap().p50 > blue.latency_ms.unwrap().p50 + 1.5);
    for r in run.records() {
        match r.backend {
            Some("blue") => assert_eq!(r.status(), Some(200)),
            Some("green") => assert!(r.latency >= Duration::from_millis(2)),
            other => panic!("record without a known backend: {other:?}"),
        }
    }
    let json = run.to_json();
    assert_eq!(json["backends"].as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_progress_sink_sees_counts_and_can_stop_the_run() {
    let addr = serve(true, |_| async { response(200, "ok") }).await;
    let mut seen: Vec<Snapshot> = Vec::new();
    let mut sink = |s: &Snapshot| {
        seen.push(*s);
        if s.elapsed > Duration::from_millis(600) {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    };
    let started = Instant::now();
    let run = load::run(
        plan(addr, 2, Stop::Duration(Duration::from_secs(60))),
        &mut sink,
    )
    .await
    .unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(run.stopped_early());
    assert!(seen.len() >= 3);
    assert!(seen.windows(2).all(|w| w[0].requests <= w[1].requests));
    assert_eq!(seen.last().unwrap().requests, run.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_run_stopped_early_counts_as_missed_only_what_was_due_before_the_stop() {
    // 100 req/s planned for an hour, stopped after about 0.6 s by the sink: nothing was due after that.
    let addr = serve(true, |_| async { response(200, "ok") }).await;
    let mut p = plan(addr, 8, Stop::Duration(Duration::from_secs(3600)));
    p.rate = Some(100.0);
    let mut sink = |s: &Snapshot| {
        if s.elapsed > Duration::from_millis(600) {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    };
    let run = load::run(p, &mut sink).await.unwrap();
    assert!(run.stopped_early());
    let s = run.summary();
    assert!(s.requests >= 40, "{} sent", s.requests);
    // Before the fix: 360 000 minus the sent ones.
    assert!(
        run.missed() < 20,
        "{} missed of {} sent",
        run.missed(),
        s.requests
    );
}

#[test]
fn invalid_urls_and_headers_are_explained() {
    let err = LoadPlan::new("https://example.com/")
        .unwrap_err()
        .to_string();
    assert!(err.contains("https is not supported"), "{err}");
    let err = LoadPlan::new("localhost:8080").unwrap_err().to_string();
    assert!(err.contains("http://"), "{err}");
    let err = load::parse_header("no-colon").unwrap_err().to_string();
    assert!(err.contains("Name: value"), "{err}");
    let (name, value) = load::parse_header("X-Test:  a b ").unwrap();
    assert_eq!((name.as_str(), value.to_str().unwrap()), ("x-test", "a b"));
}

#[test]
fn cli_json_has_the_documented_shape() {
    // The server runs on its own runtime; the command is a separate process.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let addr = rt.block_on(serve(true, |req: Request<Incoming>| async move {
        let status = if req.headers().get("x-want") == Some(&"teapot".parse().unwrap()) {
            418
        } else {
            400
        };
        response(status, "tea")
    }));
    let dir = tempfile::tempdir().unwrap();
    let out = crate::support::pipeline(dir.path())
        .args([
            "load",
            &format!("http://{addr}/"),
            "-c",
            "2",
            "-n",
            "50",
            "-H",
            "X-Want: teapot",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("stdout is one JSON object");
    assert_eq!(v["requests"], 50);
    assert!(v["duration_s"].as_f64().unwrap() > 0.0);
    assert!(v["rps"].as_f64().unwrap() > 0.0);
    for k in ["p50", "p90", "p99", "p999", "max"] {
        assert!(v["latency_ms"][k].as_f64().unwrap() > 0.0, "latency_ms.{k}");
    }
    assert_eq!(v["status"]["418"], 50);
    assert!(v["errors"].as_object().unwrap().is_empty());
    assert_eq!(v["bytes"], 150);
}

#[test]
fn cli_rejects_bad_arguments_with_usage_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let out = crate::support::pipeline(dir.path())
        .args(["load", "https://127.0.0.1/", "-n", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("https is not supported"));
    let dir = tempfile::tempdir().unwrap();
    let out = crate::support::pipeline(dir.path())
        .args(["load", "http://127.0.0.1:1/", "-c", "0", "-n", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("concurrency"));
}

#[test]
fn an_invalid_port_is_a_usage_error_not_port_80() {
    for (url, why) in [
        ("http://127.0.0.1:99999/", "invalid port `99999`"),
        ("http://127.0.0.1:0/", "invalid port `0`"),
        ("http://127.0.0.1:/", "empty port"),
        ("http://[::1]:65536/", "invalid port `65536`"),
        ("http://user:pw@127.0.0.1:8080/", "user information"),
    ] {
        let err = LoadPlan::new(url).unwrap_err().to_string();
        assert!(err.contains(why), "{url}: {err}");
    }
    for url in [
        "http://127.0.0.1:65535/",
        "http://[::1]:8080/x",
        "http://localhost/",
    ] {
        LoadPlan::new(url).unwrap_or_else(|e| panic!("{url}: {e}"));
    }
    let dir = tempfile::tempdir().unwrap();
    let out = crate::support::pipeline(dir.path())
        .args(["load", "http://127.0.0.1:99999/", "-n", "1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("invalid port `99999`"), "{stderr}");
    assert!(stderr.contains("1 to 65535"), "{stderr}");
}

#[test]
fn a_missing_body_file_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = crate::support::pipeline(dir.path())
        .args([
            "load",
            "http://127.0.0.1:9/",
            "-n",
            "1",
            "--body-file",
            "/nonexistent/body.json",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--body-file /nonexistent/body.json"),
        "{stderr}"
    );
}

#[test]
fn an_error_cause_is_printed_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = crate::support::pipeline(dir.path())
        .args(["load", "http://no-such-host.invalid/", "-n", "1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot resolve `no-such-host.invalid`"),
        "{stderr}"
    );
    // The resolver's reason (e.g. "Name or service not known") is embedded in the message once.
    let reason = stderr
        .split("cannot resolve `no-such-host.invalid`: ")
        .nth(1)
        .and_then(|r| r.split(" (check").next())
        .unwrap();
    assert_eq!(stderr.matches(reason).count(), 1, "{stderr}");
}

#[test]
fn the_load_summary_keeps_its_wording_and_layout() {
    // 50 requests on one connection to a server that always answers 200 "tea": the counts are exact, the
    // timings vary and are scrubbed to placeholders.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let addr = rt.block_on(serve(true, |_req: Request<Incoming>| async move {
        response(200, "tea")
    }));
    let dir = tempfile::tempdir().unwrap();
    let out = crate::support::pipeline(dir.path())
        .args(["load", &format!("http://{addr}/"), "-c", "1", "-n", "50"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut settings = crate::support::snapshot_settings(dir.path());
    // Measured numbers: the run's duration and rate (with thousands separators) and the latencies.
    settings.add_filter(r"\d[\d,]*(\.\d+)? ?(s|req/s)\b", "[N $2]");
    settings.add_filter(r"\b(min|p50|p90|p99|p99\.9|max|mean) \d+(\.\d+)?", "$1 [N]");
    settings.bind(|| {
        insta::assert_snapshot!(
            "load_summary",
            String::from_utf8_lossy(&out.stdout).into_owned()
        );
    });
}
