//! `pipeline analyze --prometheus` against a real Prometheus on a free loopback port, its TSDB filled with
//! known samples by `promtool tsdb create-blocks-from openmetrics`: the judgement equals that of the same
//! values from a samples file; windows beyond 11,000 points are split; bad PromQL, empty results, two
//! series and an unreachable URL fail as documented. A tiny loopback server checks the credentials that
//! come from the environment. Needs the Debian packages prometheus (prometheus, promtool).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("find a free loopback port")
        .port()
}

fn pipeline(args: &[&str], dir: &Path, env: &[(&str, &str)]) -> Output {
    let mut cmd = crate::support::pipeline(dir);
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run pipeline")
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exited normally")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A real Prometheus serving a TSDB made from OpenMetrics text; killed when dropped.
pub(crate) struct Prometheus {
    child: Child,
    pub(crate) url: String,
    dir: tempfile::TempDir,
}

impl Prometheus {
    pub(crate) fn start(openmetrics: &str) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("data.om"), openmetrics).unwrap();
        let out = Command::new("promtool")
            .args(["tsdb", "create-blocks-from", "openmetrics", "-q"])
            .arg(d.join("data.om"))
            .arg(d.join("tsdb"))
            .output()
            .expect("promtool is installed (apt-get install prometheus)");
        assert!(out.status.success(), "promtool: {}", text(&out.stderr));
        std::fs::write(
            d.join("prometheus.yml"),
            "global:\n  scrape_interval: 15s\n",
        )
        .unwrap();
        let port = free_port();
        let log = std::fs::File::create(d.join("prometheus.log")).unwrap();
        let child = Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                d.join("prometheus.yml").display()
            ))
            .arg(format!("--storage.tsdb.path={}", d.join("tsdb").display()))
            .arg("--storage.tsdb.retention.time=30d")
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("prometheus is installed (apt-get install prometheus)");
        let mut p = Prometheus {
            child,
            url: format!("http://127.0.0.1:{port}"),
            dir,
        };
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = p.child.try_wait() {
                let log = std::fs::read_to_string(p.dir.path().join("prometheus.log"));
                panic!("prometheus exited with {status}: {log:?}");
            }
            if http_status(port, "/-/ready") == Some(200) {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "prometheus ready within 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        p
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
        .ok()?;
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).ok()?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A whole minute about three hours ago (inside the retention, well before Prometheus' head block).
pub(crate) fn base_time() -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    (now - 3 * 3600) / 60 * 60
}

/// Deterministic values with ties and a spread; `shift` moves the canary.
fn values(n: usize, salt: u64, shift: f64) -> Vec<f64> {
    (0..n as u64)
        .map(|i| 20.0 + ((i + salt) * 7919 % 1000) as f64 / 50.0 + shift)
        .collect()
}

/// OpenMetrics text: one gauge family, one series per `(labels, values)`, a sample every second from `t0`.
pub(crate) fn openmetrics(family: &str, series: &[(&str, &[f64])], t0: u64) -> String {
    let mut out = format!("# TYPE {family} gauge\n");
    for (labels, vals) in series {
        for (i, v) in vals.iter().enumerate() {
            out.push_str(&format!("{family}{{{labels}}} {v} {}\n", t0 + i as u64));
        }
    }
    out
}

fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    p
}

const LAT_METRICS: &str = r#"
[arms]
baseline = "blue"
canary = "green"

[[metric]]
name = "latency_ms"
unit = "ms"
fail_on = "increase"
allowed_increase = 0.01
query = 'lat{arm="$arm"}'
"#;

fn analyze_prometheus(
    url: &str,
    metrics: &Path,
    start: &str,
    end: &str,
    step: &str,
    dir: &Path,
) -> Output {
    pipeline(
        &[
            "analyze",
            "--prometheus",
            url,
            "--metrics",
            metrics.to_str().unwrap(),
            "--start",
            start,
            "--end",
            end,
            "--step",
            step,
            "--json",
        ],
        dir,
        &[],
    )
}

#[test]
fn prometheus_series_are_judged_exactly_like_the_same_samples_from_a_file_even_when_split() {
    // 12,500 points per series at step 1s: two range queries (11,000 + 1,500), merged without a duplicate.
    let n = 12_500;
    let t0 = base_time() - 2 * 3600;
    let blue = values(n, 0, 0.0);
    let green = values(n, 3, 0.4);
    let prom = Prometheus::start(&format!(
        "{}# EOF\n",
        openmetrics(
            "lat",
            &[("arm=\"blue\"", &blue), ("arm=\"green\"", &green)],
            t0
        )
    ));
    let dir = tempfile::tempdir().unwrap();
    let metrics = write(dir.path(), "metrics.toml", LAT_METRICS);
    let end = t0 + n as u64 - 1;
    let o = analyze_prometheus(
        &prom.url,
        &metrics,
        &t0.to_string(),
        &end.to_string(),
        "1s",
        dir.path(),
    );
    assert!(matches!(code(&o), 0 | 3 | 4), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("2 queries each"),
        "{}",
        text(&o.stderr)
    );
    let from_prom: Value = serde_json::from_slice(&o.stdout).unwrap();

    let times: Vec<f64> = (0..n).map(|i| i as f64).collect();
    let samples = json!({"metrics": [{
        "name": "latency_ms", "unit": "ms", "fail_on": "increase", "allowed_increase": 0.01,
        "baseline": blue, "canary": green, "baseline_time_s": times, "canary_time_s": times}]});
    let file = write(dir.path(), "samples.json", &samples.to_string());
    let f = pipeline(
        &["analyze", file.to_str().unwrap(), "--json"],
        dir.path(),
        &[],
    );
    assert_eq!(code(&f), code(&o), "{}", text(&f.stderr));
    let from_file: Value = serde_json::from_slice(&f.stdout).unwrap();

    let m = &from_prom["metrics"][0];
    assert_eq!(
        m["baseline"]["n"], n,
        "every point once, none duplicated at the split"
    );
    assert_eq!(m["canary"]["n"], n);
    assert!(m["u"].as_f64().is_some() && m["p_value"].as_f64().is_some());
    assert_eq!(m["u"], from_file["metrics"][0]["u"]);
    assert_eq!(m["p_value"], from_file["metrics"][0]["p_value"]);
    assert_eq!(
        from_prom["metrics"], from_file["metrics"],
        "the whole metric judgement"
    );
    assert_eq!(from_prom["score"], from_file["score"]);
    assert_eq!(from_prom["verdict"], from_file["verdict"]);
    let run = &from_prom["run"];
    assert_eq!(run["source"], format!("Prometheus {}", prom.url));
    assert_eq!(
        run["query latency_ms"],
        r#"baseline: lat{arm="blue"} | canary: lat{arm="green"}"#
    );
    assert_eq!(run["step_s"], 1.0);
}

#[test]
fn a_step_larger_than_the_scrape_interval_takes_one_sample_per_step() {
    let n = 900;
    let t0 = base_time();
    let blue = values(n, 0, 0.0);
    let green = values(n, 5, 0.0);
    let prom = Prometheus::start(&format!(
        "{}# EOF\n",
        openmetrics(
            "lat",
            &[("arm=\"blue\"", &blue), ("arm=\"green\"", &green)],
            t0
        )
    ));
    let dir = tempfile::tempdir().unwrap();
    let metrics = write(dir.path(), "metrics.toml", LAT_METRICS);
    let end = t0 + n as u64 - 1;
    let o = analyze_prometheus(
        &prom.url,
        &metrics,
        &t0.to_string(),
        &end.to_string(),
        "15s",
        dir.path(),
    );
    let from_prom: Value =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|_| panic!("{}", text(&o.stderr)));
    let every_15th = |v: &[f64]| v.iter().step_by(15).copied().collect::<Vec<f64>>();
    let times: Vec<f64> = (0..n).step_by(15).map(|i| i as f64).collect();
    let samples = json!({"metrics": [{
        "name": "latency_ms", "unit": "ms", "fail_on": "increase", "allowed_increase": 0.01,
        "baseline": every_15th(&blue), "canary": every_15th(&green),
        "baseline_time_s": times, "canary_time_s": times}]});
    let file = write(dir.path(), "samples.json", &samples.to_string());
    let f = pipeline(
        &["analyze", file.to_str().unwrap(), "--json"],
        dir.path(),
        &[],
    );
    let from_file: Value = serde_json::from_slice(&f.stdout).unwrap();
    assert_eq!(from_prom["metrics"][0]["baseline"]["n"], n / 15);
    assert_eq!(from_prom["metrics"], from_file["metrics"]);
}

/// A small Prometheus with `lat` (one series per arm) and `two` (two series for blue).
fn small_prometheus() -> (Prometheus, u64, u64) {
    let n = 120;
    let t0 = base_time();
    let v = values(n, 0, 0.0);
    let data = format!(
        "{}{}# EOF\n",
        openmetrics("lat", &[("arm=\"blue\"", &v), ("arm=\"green\"", &v)], t0),
        openmetrics(
            "two",
            &[
                ("arm=\"blue\",instance=\"a\"", &v),
                ("arm=\"blue\",instance=\"b\"", &v)
            ],
            t0
        )
    );
    (Prometheus::start(&data), t0, t0 + n as u64 - 1)
}

/// `analyze --prometheus` over the whole of [`small_prometheus`] at 1 s steps with the metrics file
/// `metrics`; the output and its stderr.
fn analyze_small(metrics: &str) -> (Output, String) {
    let (prom, t0, end) = small_prometheus();
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "m.toml", metrics);
    let o = analyze_prometheus(
        &prom.url,
        &file,
        &t0.to_string(),
        &end.to_string(),
        "1s",
        dir.path(),
    );
    let err = text(&o.stderr);
    (o, err)
}

#[test]
fn bad_promql_quotes_prometheus_error_and_exits_2() {
    let (o, err) = analyze_small(
        "[[metric]]\nname = \"broken\"\nbaseline_query = 'rate(lat[1m]'\ncanary_query = 'lat'\n",
    );
    assert_eq!(code(&o), 2, "{err}");
    assert!(err.contains("rate(lat[1m]"), "names the query: {err}");
    assert!(err.contains("bad_data"), "quotes errorType: {err}");
    assert!(
        err.contains("parse error"),
        "quotes Prometheus' message: {err}"
    );
}

#[test]
fn an_empty_result_is_nodata_and_never_a_pass() {
    let (o, err) = analyze_small(
        "[arms]\nbaseline = 'blue'\ncanary = 'green'\n\
         [[metric]]\nname = 'latency_ms'\nquery = 'lat{arm=\"$arm\"}'\n\
         [[metric]]\nname = 'missing'\nquery = 'no_such_metric{arm=\"$arm\"}'\n",
    );
    assert_eq!(code(&o), 5, "INCONCLUSIVE: {err}");
    assert!(
        err.contains("`missing`") && err.contains("no series"),
        "{err}"
    );
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["verdict"], "INCONCLUSIVE");
    assert_eq!(report["metrics"][0]["classification"], "Pass");
    assert_eq!(report["metrics"][1]["classification"], "NoData");
}

#[test]
fn two_series_for_one_arm_exit_2_naming_the_metric_and_both_series() {
    let (o, err) = analyze_small(
        "[[metric]]\nname = 'doubled'\nbaseline_query = 'two'\ncanary_query = 'lat{arm=\"green\"}'\n",
    );
    assert_eq!(code(&o), 2, "{err}");
    assert!(
        err.contains("`doubled`") && err.contains("2 series"),
        "{err}"
    );
    assert!(
        err.contains(r#"instance="a""#) && err.contains(r#"instance="b""#),
        "{err}"
    );
}

#[test]
fn relative_times_query_the_window_before_now() {
    // The data ends ~3 h ago, so the last 30 minutes hold nothing: NoData, INCONCLUSIVE.
    let (prom, _, _) = small_prometheus();
    let dir = tempfile::tempdir().unwrap();
    let metrics = write(dir.path(), "m.toml", LAT_METRICS);
    let o = analyze_prometheus(&prom.url, &metrics, "-30m", "now", "15s", dir.path());
    assert_eq!(code(&o), 5, "{}", text(&o.stderr));
    let o = analyze_prometheus(&prom.url, &metrics, "now-4h", "now-2h", "1s", dir.path());
    let report: Value =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|_| panic!("{}", text(&o.stderr)));
    // 120 samples at 1 s plus the 5-minute lookback repeating the last one (see README, lookback).
    let n = report["metrics"][0]["baseline"]["n"].as_u64().unwrap();
    assert!(n >= 120, "{n}");
}

#[test]
fn an_unreachable_prometheus_exits_1_naming_the_url() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = write(dir.path(), "m.toml", LAT_METRICS);
    let url = format!("http://127.0.0.1:{}", free_port());
    let o = analyze_prometheus(&url, &metrics, "-1h", "now", "15s", dir.path());
    let err = text(&o.stderr);
    assert_eq!(code(&o), 1, "{err}");
    assert!(
        err.contains("cannot reach Prometheus") && err.contains(&url),
        "{err}"
    );
}

/// A loopback stand-in for Prometheus' API that records the Authorization header of each request and
/// answers 401 without `expected`, a timeout error for a query `slow`, else one series of 60 points
/// with a warning.
fn fake_api(expected: &'static str) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut request_line = String::new();
            let _ = reader.read_line(&mut request_line);
            let mut auth = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line
                    .strip_prefix("authorization: ")
                    .or(line.strip_prefix("Authorization: "))
                {
                    auth = v.trim().to_string();
                }
            }
            log.lock().unwrap().push(auth.clone());
            let (status, body) = if auth != expected {
                ("401 Unauthorized", "Unauthorized\n".to_string())
            } else if request_line.contains("query=slow") {
                (
                    "503 Service Unavailable",
                    r#"{"status":"error","errorType":"timeout","error":"query timed out in expression evaluation"}"#.to_string(),
                )
            } else {
                let values: Vec<Value> = (0..60)
                    .map(|i| json!([1000 + i, format!("{}", 10 + i % 7)]))
                    .collect();
                (
                    "200 OK",
                    json!({"status": "success", "data": {"resultType": "matrix",
                    "result": [{"metric": {}, "values": values}]},
                    "warnings": ["fake warning: partial response"]})
                    .to_string(),
                )
            };
            let mut conn = conn;
            let _ = conn.write_all(
                format!(
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            );
            let mut sink = [0u8; 1];
            let _ = conn.read(&mut sink);
        }
    });
    (url, seen)
}

const AB_METRICS: &str = "[[metric]]\nname = 'x'\nbaseline_query = 'a'\ncanary_query = 'b'\n";

fn analyze_fake(url: &str, metrics: &Path, dir: &Path, env: &[(&str, &str)]) -> Output {
    pipeline(
        &[
            "analyze",
            "--prometheus",
            url,
            "--metrics",
            metrics.to_str().unwrap(),
            "--start",
            "1000",
            "--end",
            "1059",
            "--step",
            "1s",
        ],
        dir,
        env,
    )
}

#[test]
fn a_bearer_token_from_the_environment_is_sent_and_never_printed() {
    let (url, seen) = fake_api("Bearer s3cr3t-token");
    let dir = tempfile::tempdir().unwrap();
    let metrics = write(dir.path(), "m.toml", AB_METRICS);
    let o = analyze_fake(
        &url,
        &metrics,
        dir.path(),
        &[("PIPELINE_PROMETHEUS_TOKEN", "s3cr3t-token")],
    );
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert_eq!(seen.lock().unwrap().len(), 2);
    assert!(!text(&o.stdout).contains("s3cr3t") && !text(&o.stderr).contains("s3cr3t"));
    assert!(
        text(&o.stderr).contains("Prometheus warns: fake warning: partial response"),
        "Prometheus' warnings are passed on: {}",
        text(&o.stderr)
    );
}

#[test]
fn basic_auth_from_the_environment_is_sent() {
    // base64("ops:pa55") = b3BzOnBhNTU=
    let (url, seen) = fake_api("Basic b3BzOnBhNTU=");
    let dir = tempfile::tempdir().unwrap();
    let metrics = write(dir.path(), "m.toml", AB_METRICS);
    let env = [
        ("PIPELINE_PROMETHEUS_USER", "ops"),
        ("PIPELINE_PROMETHEUS_PASSWORD", "pa55"),
    ];
    let o = analyze_fake(&url, &metrics, dir.path(), &env);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert!(seen
        .lock()
        .unwrap()
        .iter()
        .all(|a| a == "Basic b3BzOnBhNTU="));
}

#[test]
fn missing_credentials_say_which_variables_to_set_and_exit_1() {
    let (url, _) = fake_api("Bearer t");
    let dir = tempfile::tempdir().unwrap();
    let metrics = write(dir.path(), "m.toml", AB_METRICS);
    let o = analyze_fake(&url, &metrics, dir.path(), &[]);
    let err = text(&o.stderr);
    assert_eq!(code(&o), 1, "{err}");
    assert!(
        err.contains("HTTP 401") && err.contains("PIPELINE_PROMETHEUS_TOKEN"),
        "{err}"
    );
}

#[test]
fn a_prometheus_timeout_is_a_runtime_error_quoting_its_message() {
    let (url, _) = fake_api("");
    let dir = tempfile::tempdir().unwrap();
    let metrics = write(
        dir.path(),
        "m.toml",
        "[[metric]]\nname = 'x'\nbaseline_query = 'slow'\ncanary_query = 'b'\n",
    );
    let o = analyze_fake(&url, &metrics, dir.path(), &[]);
    let err = text(&o.stderr);
    assert_eq!(code(&o), 1, "{err}");
    assert!(
        err.contains("timeout") && err.contains("query timed out in expression evaluation"),
        "{err}"
    );
}

#[test]
fn samples_file_numbers_are_read_back_bit_for_bit() {
    // Without serde_json's `float_roundtrip`, some values came back one ULP off, so a samples file and
    // Prometheus (which prints shortest round-trip values) gave different U for the same data.
    let values = values(12_500, 3, 0.4);
    let text = serde_json::to_string(&values).unwrap();
    let back: Vec<f64> = serde_json::from_str(&text).unwrap();
    let off = values
        .iter()
        .zip(&back)
        .filter(|(a, b)| a.to_bits() != b.to_bits())
        .count();
    assert_eq!(off, 0, "{off} values changed in a JSON round trip");
}

#[test]
fn a_query_prometheus_cannot_evaluate_is_a_usage_error_quoting_it() {
    // One `lat` series against two `two` series on the same (empty) match group: an execution error (422).
    let (o, err) = analyze_small(
        "[[metric]]\nname = 'joined'\nbaseline_query = 'lat{arm=\"blue\"} + on() two'\ncanary_query = 'lat'\n",
    );
    assert_eq!(code(&o), 2, "{err}");
    assert!(
        err.contains("execution") && err.contains("HTTP 422"),
        "{err}"
    );
}

#[tokio::test]
async fn canary_queries_cover_the_load_window_with_offsets_from_its_start() {
    use pipeline::canary::prometheus::canary::{resolve, CanaryPromSection};
    let (prom, t0, _) = small_prometheus();
    let section: CanaryPromSection = toml::from_str(&format!(
        "prometheus = '{}'\nprometheus_step = '10s'\n[[metric]]\nname = 'lat'\nmin_samples = 5\nquery = 'lat{{arm=\"$arm\"}}'\n",
        prom.url
    ))
    .unwrap();
    let queries = resolve(None, section, Path::new("pipeline.toml"), || {
        panic!("the monitor is not asked when a URL is given")
    })
    .unwrap()
    .unwrap();
    let start = UNIX_EPOCH + Duration::from_secs(t0 + 30);
    let (metrics, notes) = queries
        .query(start, start + Duration::from_secs(60))
        .await
        .unwrap();
    assert!(notes.is_empty(), "{notes:?}");
    let m = &metrics[0];
    assert_eq!(
        m.baseline_time_s.as_deref(),
        Some(&[0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0][..])
    );
    let v = values(120, 0, 0.0);
    let expected: Vec<f64> = (0..7).map(|k| v[30 + 10 * k]).collect();
    assert_eq!(m.baseline, expected);
    assert_eq!(m.canary, expected);
}

/// nginx in front of `prom` as the dashboard role sets it up: basic auth (user `pipeline`, `password`)
/// on the whole site and only `/api/v1/query` and `/api/v1/query_range` passed through. Killed when dropped.
struct DashboardNginx {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl DashboardNginx {
    fn start(prom: &Prometheus, password: &str) -> DashboardNginx {
        use pipeline::monitoring::access::{htpasswd_hash, DASHBOARD_USER};
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // nginx workers run unprivileged and must read the password hashes.
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::create_dir_all(d.join("tmp")).unwrap();
        std::fs::write(
            d.join("htpasswd"),
            format!("{DASHBOARD_USER}:{}\n", htpasswd_hash(password)),
        )
        .unwrap();
        let port = free_port();
        let upstream = prom.url.trim_start_matches("http://");
        std::fs::write(
            d.join("nginx.conf"),
            format!(
                "daemon off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{}}\nhttp {{\n  access_log {d}/access.log;\n  client_body_temp_path {d}/tmp;\n  proxy_temp_path {d}/tmp;\n  fastcgi_temp_path {d}/tmp;\n  uwsgi_temp_path {d}/tmp;\n  scgi_temp_path {d}/tmp;\n  server {{\n    listen 127.0.0.1:{port};\n    auth_basic \"pipeline monitoring\";\n    auth_basic_user_file {d}/htpasswd;\n    location ~ ^/api/v1/(query|query_range)$ {{\n      limit_except GET {{ deny all; }}\n      proxy_pass http://{upstream};\n    }}\n    location / {{ return 404; }}\n  }}\n}}\n",
                d = d.display()
            ),
        )
        .unwrap();
        let child = Command::new("nginx")
            .arg("-p")
            .arg(d)
            .arg("-e")
            .arg(d.join("error.log"))
            .arg("-c")
            .arg(d.join("nginx.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx is installed (apt-get install nginx)");
        let mut n = DashboardNginx { child, port, dir };
        let started = Instant::now();
        // Up when it refuses an unauthenticated query.
        while http_status(port, "/api/v1/query?query=1") != Some(401) {
            if let Ok(Some(status)) = n.child.try_wait() {
                let log = std::fs::read_to_string(n.dir.path().join("error.log"));
                panic!("nginx exited with {status}: {log:?}");
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "nginx up within 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        n
    }
}

impl Drop for DashboardNginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A state directory holding the dashboard password as `monitor-setup` leaves it (0700 dirs, 0600 file).
fn state_with_dashboard_password(password: &str) -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let state = tempfile::tempdir().unwrap();
    let secrets = state.path().join("secrets");
    std::fs::create_dir(&secrets).unwrap();
    std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o700)).unwrap();
    let file = secrets.join("dashboard-password");
    std::fs::write(&file, format!("{password}\n")).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    state
}

#[tokio::test]
async fn canary_queries_without_a_url_go_to_the_monitor_s_prometheus_through_its_nginx_with_the_dashboard_login(
) {
    use pipeline::canary::prometheus::canary::{resolve, CanaryPromSection};
    use pipeline::monitoring::endpoint;
    let (prom, t0, _) = small_prometheus();
    let nginx = DashboardNginx::start(&prom, "Right0Password");
    let work = tempfile::tempdir().unwrap();
    let inventory = write(
        work.path(),
        "inventory.ini",
        &format!(
            "[monitor]\nmon ansible_host=127.0.0.1 dashboard_listen_port={}\n",
            nginx.port
        ),
    );
    let toml = "prometheus_step = '10s'\n[[metric]]\nname = 'lat'\nmin_samples = 5\nquery = 'lat{arm=\"$arm\"}'\n";
    let start = UNIX_EPOCH + Duration::from_secs(t0 + 30);
    let resolve_with = |state: &Path| {
        let section: CanaryPromSection = toml::from_str(toml).unwrap();
        resolve(None, section, Path::new("pipeline.toml"), || {
            endpoint::dashboard(&inventory, state).map_err(|e| e.to_string())
        })
        .unwrap()
        .unwrap()
    };

    let state = state_with_dashboard_password("Right0Password");
    let queries = resolve_with(state.path());
    assert_eq!(queries.url(), format!("http://127.0.0.1:{}", nginx.port));
    let (metrics, notes) = queries
        .query(start, start + Duration::from_secs(60))
        .await
        .unwrap();
    assert!(notes.is_empty(), "{notes:?}");
    let v = values(120, 0, 0.0);
    let expected: Vec<f64> = (0..7).map(|k| v[30 + 10 * k]).collect();
    assert_eq!(metrics[0].baseline, expected);
    assert_eq!(metrics[0].canary, expected);

    // A stale password (the dashboard was set up again elsewhere) is nginx's 401, said as such.
    let stale = state_with_dashboard_password("Old0Password");
    let err = resolve_with(stale.path())
        .query(start, start + Duration::from_secs(60))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("401"), "{err}");
    assert!(!err.contains("Old0Password"), "{err}");
}

#[test]
fn canary_metrics_without_a_url_or_a_monitor_host_are_a_usage_error_naming_the_inventory() {
    use pipeline::canary::prometheus::canary::{resolve, CanaryPromSection};
    use pipeline::monitoring::endpoint;
    let work = tempfile::tempdir().unwrap();
    let inventory = write(
        work.path(),
        "inventory.ini",
        "[app]\nweb ansible_host=127.0.0.1\n",
    );
    let section: CanaryPromSection =
        toml::from_str("[[metric]]\nname = 'lat'\nquery = 'lat{arm=\"$arm\"}'\n").unwrap();
    let err = resolve(None, section, Path::new("pipeline.toml"), || {
        endpoint::dashboard(&inventory, work.path()).map_err(|e| e.to_string())
    })
    .unwrap_err();
    let text = err.to_string();
    assert!(err.is_usage(), "{text}");
    assert!(
        text.contains("--prometheus") && text.contains("has no [monitor] host"),
        "{text}"
    );
}
