//! Where the app answers on the canary host, from the same final variables its deploy gets
//! (`[deploy.vars]` below `-e`): the `address:port` the front door proxies to and logs (so a logged
//! request is told canary or stable by it), and the direct health check, the one a rolling deploy runs on
//! each host (`GET http://<host>:<port><path>/`: `:8080/iTrust2/` for iTrust, `:80/` for checkbox.io,
//! following `itrust_port`, `itrust_context_path`, `checkbox_http_port`; `-e pipeline_health=…` replaces
//! it), asked from this machine before the canary sees any traffic.

use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use crate::apps::{port_of, App, AppError, Endpoint};

/// Time between two tries of the direct health check (as in the rolling deploy).
pub const CHECK_EVERY: Duration = Duration::from_secs(2);
/// Tries of the direct health check unless `pipeline_health` says otherwise (as in the rolling deploy).
pub const CHECK_TRIES: u32 = 30;

/// Where the app answers on a host, and how it is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub app: App,
    /// The app's port and path on its hosts (what the front door proxies to).
    pub endpoint: Endpoint,
    /// The health check's port and path (ends with `/`).
    pub health_port: u16,
    pub health_path: String,
    pub health_tries: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error(transparent)]
    App(#[from] AppError),
    #[error("pipeline_health = {0} is not a health check; give an object, e.g. -e 'pipeline_health={{\"port\": 80, \"path\": \"/api/status\", \"retries\": 10}}'")]
    BadHealth(String),
    #[error("{url} on {host} did not answer 2xx within {seconds} s ({last}); look at the app on {host} (`journalctl` there), or roll back with `pipeline rollout abort`")]
    Unhealthy {
        url: String,
        host: String,
        seconds: u64,
        last: String,
    },
}

/// The variables the canary's deploy gets from the user: `[deploy.vars]`, then each `-e` over them.
pub fn user_vars(
    config_vars: Map<String, Value>,
    extra_vars: &[String],
) -> Result<Map<String, Value>, String> {
    let mut vars = config_vars;
    vars.extend(crate::deploy::vars::parse_extra_vars(extra_vars)?);
    Ok(vars)
}

impl Target {
    /// The target of `app` under the final variables `vars`.
    pub fn resolve(app: App, vars: &Map<String, Value>) -> Result<Self, TargetError> {
        let endpoint = app.endpoint(vars)?;
        let mut target = Target {
            app,
            health_port: endpoint.port,
            // `/iTrust2/`, not `/iTrust2`: Tomcat answers the bare context path with a redirect.
            health_path: if endpoint.path.ends_with('/') {
                endpoint.path.clone()
            } else {
                format!("{}/", endpoint.path)
            },
            health_tries: CHECK_TRIES,
            endpoint,
        };
        if let Some(h) = vars.get("pipeline_health") {
            let Value::Object(h) = h else {
                return Err(TargetError::BadHealth(h.to_string()));
            };
            if let Some(p) = h.get("port") {
                target.health_port = port_of(p).ok_or_else(|| TargetError::BadHealth(h_text(h)))?;
            }
            if let Some(p) = h.get("path") {
                let p = p
                    .as_str()
                    .ok_or_else(|| TargetError::BadHealth(h_text(h)))?;
                target.health_path = if p.starts_with('/') {
                    p.to_string()
                } else {
                    format!("/{p}")
                };
            }
            if let Some(r) = h.get("retries") {
                target.health_tries = r
                    .as_u64()
                    .and_then(|r| u32::try_from(r).ok())
                    .filter(|r| *r > 0)
                    .ok_or_else(|| TargetError::BadHealth(h_text(h)))?;
            }
        }
        Ok(target)
    }

    /// `address:port` of the app on a host, as nginx's `$upstream_addr` logs it.
    pub fn backend(&self, address: &str) -> String {
        if address.contains(':') {
            format!("[{address}]:{}", self.endpoint.port)
        } else {
            format!("{address}:{}", self.endpoint.port)
        }
    }

    /// The health check's URL on a host.
    pub fn health_url(&self, address: &str) -> String {
        Endpoint {
            port: self.health_port,
            path: self.health_path.clone(),
        }
        .url(address, false)
    }

    /// How long the health check keeps trying.
    pub fn health_timeout(&self) -> Duration {
        CHECK_EVERY * self.health_tries
    }
}

fn h_text(h: &Map<String, Value>) -> String {
    Value::Object(h.clone()).to_string()
}

/// Asks `url` (on `host`) until it answers 2xx, every `every`, at most `timeout` (redirects followed).
pub async fn check(
    url: &str,
    host: &str,
    timeout: Duration,
    every: Duration,
) -> Result<(), TargetError> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10).min(timeout.max(Duration::from_millis(500))))
        .build()
        .map_err(|e| TargetError::Unhealthy {
            url: url.into(),
            host: host.into(),
            seconds: 0,
            last: format!("no HTTP client: {e}"),
        })?;
    let started = Instant::now();
    loop {
        let last = match client.get(url).send().await {
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) => format!("it answered {}", r.status()),
            Err(e) => crate::exit::error_message(&anyhow::Error::from(e)),
        };
        if started.elapsed() + every > timeout {
            return Err(TargetError::Unhealthy {
                url: url.into(),
                host: host.into(),
                seconds: timeout.as_secs(),
                last,
            });
        }
        tokio::time::sleep(every).await;
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use serde_json::json;

    use super::*;

    fn vars(pairs: &[(&str, Value)]) -> Map<String, Value> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn itrust_is_checked_at_its_context_path_on_its_port_and_logged_on_that_port() {
        let t = Target::resolve(App::Itrust, &Map::new()).unwrap();
        assert_eq!(t.backend("10.0.0.9"), "10.0.0.9:8080");
        assert_eq!(t.health_url("10.0.0.9"), "http://10.0.0.9:8080/iTrust2/");
        assert_eq!(t.health_timeout(), Duration::from_secs(60));
        let c = Target::resolve(App::Checkbox, &Map::new()).unwrap();
        assert_eq!(c.backend("10.0.0.9"), "10.0.0.9:80");
        assert_eq!(c.health_url("10.0.0.9"), "http://10.0.0.9/");
    }

    #[test]
    fn the_canary_follows_e_over_deploy_vars_for_port_path_and_health_check() {
        let config = vars(&[("itrust_port", json!(9000))]);
        let v = user_vars(
            config.clone(),
            &["itrust_context_path=app".into(), "itrust_port=9090".into()],
        )
        .unwrap();
        let t = Target::resolve(App::Itrust, &v).unwrap();
        assert_eq!(t.backend("10.0.0.9"), "10.0.0.9:9090");
        assert_eq!(t.health_url("10.0.0.9"), "http://10.0.0.9:9090/app/");
        let t = Target::resolve(App::Itrust, &config).unwrap();
        assert_eq!(t.backend("10.0.0.9"), "10.0.0.9:9000");
        let v = user_vars(
            Map::new(),
            &[r#"pipeline_health={"port": 8081, "path": "iTrust2/login", "retries": 5}"#.into()],
        )
        .unwrap();
        let t = Target::resolve(App::Itrust, &v).unwrap();
        assert_eq!(t.backend("10.0.0.9"), "10.0.0.9:8080");
        assert_eq!(
            t.health_url("10.0.0.9"),
            "http://10.0.0.9:8081/iTrust2/login"
        );
        assert_eq!(t.health_timeout(), Duration::from_secs(10));
        let bad = vars(&[("pipeline_health", json!("soon"))]);
        assert!(matches!(
            Target::resolve(App::Itrust, &bad),
            Err(TargetError::BadHealth(_))
        ));
        let bad = vars(&[("itrust_port", json!("http"))]);
        let e = Target::resolve(App::Itrust, &bad).unwrap_err();
        assert!(e.to_string().contains("itrust_port"), "{e}");
        assert!(user_vars(Map::new(), &["no-equals".into()]).is_err());
    }

    /// An iTrust-like server on loopback: the bare context path redirects to `/iTrust2/`, which answers
    /// `fail_first` times 503 (starting up), then 200; anything else is 404. Returns its port and the
    /// paths it was asked for.
    fn itrust_like(fail_first: usize) -> (u16, Arc<std::sync::Mutex<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let asked = Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = asked.clone();
        let served = Arc::new(AtomicUsize::new(0));
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let mut line = String::new();
                let mut reader = BufReader::new(&conn);
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                        break;
                    }
                }
                let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                log.lock().unwrap().push(path.clone());
                let answer = match path.as_str() {
                    "/iTrust2" => "HTTP/1.1 302 Found\r\nLocation: /iTrust2/\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string(),
                    "/iTrust2/" if served.fetch_add(1, Ordering::SeqCst) < fail_first => {
                        "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string()
                    }
                    "/iTrust2/" => "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok".to_string(),
                    _ => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string(),
                };
                let _ = (&conn).write_all(answer.as_bytes());
            }
        });
        (port, asked)
    }

    #[tokio::test]
    async fn the_health_check_waits_for_itrust_to_answer_at_its_path_and_names_the_url_when_it_never_does(
    ) {
        let (port, asked) = itrust_like(3);
        let v = vars(&[("itrust_port", json!(port))]);
        let t = Target::resolve(App::Itrust, &v).unwrap();
        let url = t.health_url("127.0.0.1");
        let every = Duration::from_millis(20);
        check(&url, "itrust-canary", Duration::from_secs(5), every)
            .await
            .unwrap();
        assert_eq!(
            asked.lock().unwrap().as_slice(),
            ["/iTrust2/", "/iTrust2/", "/iTrust2/", "/iTrust2/"]
        );
        // The bare context path works too (the redirect is followed).
        let bare = Endpoint {
            port,
            path: "/iTrust2".into(),
        }
        .url("127.0.0.1", false);
        check(&bare, "itrust-canary", Duration::from_secs(5), every)
            .await
            .unwrap();

        // A wrong context path never answers 2xx: the error names the URL, the host and the last answer.
        let v = vars(&[
            ("itrust_port", json!(port)),
            ("itrust_context_path", json!("/app")),
        ]);
        let url = Target::resolve(App::Itrust, &v)
            .unwrap()
            .health_url("127.0.0.1");
        let e = check(&url, "itrust-canary", Duration::from_millis(200), every)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(&format!("http://127.0.0.1:{port}/app/ on itrust-canary"))
                && e.contains("404"),
            "{e}"
        );
        // Nothing listening: the connection error is the last answer.
        let closed = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{closed}/iTrust2/");
        let e = check(&url, "itrust-canary", Duration::from_millis(100), every)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("did not answer 2xx") && e.contains("abort"),
            "{e}"
        );
    }
}
