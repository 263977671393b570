//! A small Prometheus HTTP API client: range queries (`/api/v1/query_range`), split into several requests
//! when a window has more than [`MAX_POINTS`] steps, with basic or bearer authentication from the
//! environment ([`Auth::from_env`]).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::PromError;

/// Prometheus refuses range queries of more than 11,000 points per series.
pub const MAX_POINTS: u64 = 11_000;

/// Environment variables holding the credentials (never argv, never the metrics file).
pub const USER_ENV: &str = "PIPELINE_PROMETHEUS_USER";
pub const PASSWORD_ENV: &str = "PIPELINE_PROMETHEUS_PASSWORD";
pub const TOKEN_ENV: &str = "PIPELINE_PROMETHEUS_TOKEN";

/// How requests authenticate.
#[derive(Clone, PartialEq)]
pub enum Auth {
    None,
    Basic { user: String, password: String },
    Bearer(String),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::None => f.write_str("None"),
            Auth::Basic { user, .. } => write!(f, "Basic({user}, ***)"),
            Auth::Bearer(_) => f.write_str("Bearer(***)"),
        }
    }
}

impl Auth {
    /// Reads [`USER_ENV`] + [`PASSWORD_ENV`] (basic) or [`TOKEN_ENV`] (bearer); both kinds at once, or a
    /// user without a password, is an error.
    pub fn from_env() -> Result<Auth, PromError> {
        let get = |k| std::env::var(k).ok().filter(|v: &String| !v.is_empty());
        Auth::from_values(get(USER_ENV), get(PASSWORD_ENV), get(TOKEN_ENV))
    }

    fn from_values(
        user: Option<String>,
        password: Option<String>,
        token: Option<String>,
    ) -> Result<Auth, PromError> {
        match (user, password, token) {
            (None, None, None) => Ok(Auth::None),
            (None, None, Some(t)) => Ok(Auth::Bearer(t)),
            (Some(user), Some(password), None) => Ok(Auth::Basic { user, password }),
            (_, _, Some(_)) => Err(PromError::Auth(format!(
                "both {TOKEN_ENV} and basic-auth credentials ({USER_ENV}/{PASSWORD_ENV}) are set; unset one"
            ))),
            (Some(_), None, None) => Err(PromError::Auth(format!(
                "{USER_ENV} is set but {PASSWORD_ENV} is not; set both for basic auth"
            ))),
            (None, Some(_), None) => Err(PromError::Auth(format!(
                "{PASSWORD_ENV} is set but {USER_ENV} is not; set both for basic auth"
            ))),
        }
    }
}

/// One series of a range query's answer: its labels and its `(unix seconds, value)` points.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeSeries {
    pub labels: BTreeMap<String, String>,
    pub points: Vec<(f64, f64)>,
}

impl RangeSeries {
    /// `{a="1", b="2"}` (Prometheus' notation).
    pub fn label_text(&self) -> String {
        let inner: Vec<String> = self
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect();
        format!("{{{}}}", inner.join(", "))
    }
}

#[derive(Deserialize)]
struct Envelope {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    warnings: Vec<String>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    result: Vec<RawSeries>,
}

#[derive(Deserialize)]
struct RawSeries {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    #[serde(default)]
    values: Vec<(f64, String)>,
}

/// A Prometheus server.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    http: reqwest::Client,
    auth: Auth,
}

impl Client {
    /// `url` is the server's root (e.g. `http://127.0.0.1:9090`, or a prefix such as `https://host/prometheus`).
    pub fn new(url: &str, auth: Auth) -> Result<Client, PromError> {
        let base = url.trim_end_matches('/').to_string();
        let parsed = reqwest::Url::parse(&base).map_err(|e| PromError::Url {
            url: url.to_string(),
            why: e.to_string(),
        })?;
        if !parsed.username().is_empty() || parsed.password().is_some() {
            // Never echoed: the URL would show the password in every message.
            return Err(PromError::Url {
                url: "(a URL with credentials)".into(),
                why: format!(
                    "credentials do not go into the URL; set {USER_ENV} and {PASSWORD_ENV} instead"
                ),
            });
        }
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(PromError::Url {
                url: url.to_string(),
                why: "the scheme must be http or https".into(),
            });
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(120))
            .build()
            .map_err(|e| PromError::Unreachable {
                url: base.clone(),
                cause: e.to_string(),
            })?;
        Ok(Client { base, http, auth })
    }

    pub fn url(&self) -> &str {
        &self.base
    }

    /// A range query over `[start, end]` at `step` (all seconds), split into requests of at most
    /// [`MAX_POINTS`] points on the grid `start + k·step`, merged per label set (each grid point once).
    /// Also returns the warnings Prometheus attached to its answers.
    pub async fn query_range(
        &self,
        query: &str,
        start: f64,
        end: f64,
        step: f64,
    ) -> Result<(Vec<RangeSeries>, Vec<String>), PromError> {
        let mut warnings = Vec::new();
        let steps = ((end - start) / step + 1e-9).floor().max(0.0) as u64;
        let mut merged: BTreeMap<BTreeMap<String, String>, Vec<(f64, f64)>> = BTreeMap::new();
        let mut k0 = 0u64;
        while k0 <= steps {
            let k1 = (k0 + MAX_POINTS - 1).min(steps);
            let (s, e) = (start + k0 as f64 * step, start + k1 as f64 * step);
            let (answer, warned) = self.query_range_once(query, s, e, step).await?;
            for w in warned {
                if !warnings.contains(&w) {
                    warnings.push(w);
                }
            }
            for series in answer {
                let points = merged.entry(series.labels).or_default();
                for p in series.points {
                    // A boundary point a server returns twice is kept once.
                    if points.last().is_none_or(|last| p.0 > last.0 + step * 1e-6) {
                        points.push(p);
                    }
                }
            }
            k0 = k1 + 1;
        }
        let series = merged
            .into_iter()
            .map(|(labels, points)| RangeSeries { labels, points })
            .collect();
        Ok((series, warnings))
    }

    async fn query_range_once(
        &self,
        query: &str,
        start: f64,
        end: f64,
        step: f64,
    ) -> Result<(Vec<RangeSeries>, Vec<String>), PromError> {
        let endpoint = format!("{}/api/v1/query_range", self.base);
        let form = [
            ("query", query.to_string()),
            ("start", format!("{start:.3}")),
            ("end", format!("{end:.3}")),
            ("step", format!("{step}")),
        ];
        let mut request = self.http.get(&endpoint).query(&form);
        request = match &self.auth {
            Auth::None => request,
            Auth::Basic { user, password } => request.basic_auth(user, Some(password)),
            Auth::Bearer(token) => request.bearer_auth(token),
        };
        let response = request.send().await.map_err(|e| PromError::Unreachable {
            url: self.base.clone(),
            cause: error_chain(&e),
        })?;
        let status = response.status();
        let body = response.text().await.map_err(|e| PromError::Unreachable {
            url: self.base.clone(),
            cause: format!("the answer broke off: {}", error_chain(&e)),
        })?;
        let envelope: Envelope = match serde_json::from_str(&body) {
            Ok(envelope) => envelope,
            Err(_) => {
                return Err(PromError::Http {
                    url: endpoint,
                    status: status.as_u16(),
                    body: snippet(&body),
                })
            }
        };
        if envelope.status != "success" {
            return Err(PromError::Query {
                query: query.to_string(),
                status: status.as_u16(),
                error_type: envelope.error_type.unwrap_or_else(|| "unknown".into()),
                error: envelope.error.unwrap_or_else(|| "(no message)".into()),
            });
        }
        let data = envelope.data.ok_or_else(|| PromError::Malformed {
            url: endpoint.clone(),
            why: "a success answer without `data`".into(),
        })?;
        if data.result_type != "matrix" {
            return Err(PromError::Malformed {
                url: endpoint,
                why: format!(
                    "a range query answered a `{}`, not a `matrix`",
                    data.result_type
                ),
            });
        }
        let series = data
            .result
            .into_iter()
            .map(|raw| {
                let points = raw
                    .values
                    .into_iter()
                    .map(|(t, v)| {
                        v.parse::<f64>()
                            .map(|v| (t, v))
                            .map_err(|_| PromError::Malformed {
                                url: endpoint.clone(),
                                why: format!("the value {v:?} at {t} is not a number"),
                            })
                    })
                    .collect::<Result<_, _>>()?;
                Ok(RangeSeries {
                    labels: raw.metric,
                    points,
                })
            })
            .collect::<Result<_, PromError>>()?;
        Ok((series, envelope.warnings))
    }
}

/// The error and its causes, e.g. "error sending request: connection refused".
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

fn snippet(body: &str) -> String {
    let one_line: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &one_line[..i]),
        None => one_line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::unnecessary_wraps)] // builds the Option arguments of Auth::from_values
    fn s(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    #[test]
    fn credentials_come_as_basic_or_bearer_never_both() {
        assert_eq!(Auth::from_values(None, None, None).unwrap(), Auth::None);
        assert_eq!(
            Auth::from_values(None, None, s("t")).unwrap(),
            Auth::Bearer("t".into())
        );
        assert_eq!(
            Auth::from_values(s("u"), s("p"), None).unwrap(),
            Auth::Basic {
                user: "u".into(),
                password: "p".into()
            }
        );
        for (u, p, t) in [
            (s("u"), s("p"), s("t")),
            (s("u"), None, None),
            (None, s("p"), None),
        ] {
            assert!(matches!(
                Auth::from_values(u, p, t),
                Err(PromError::Auth(_))
            ));
        }
    }

    #[test]
    fn debug_output_hides_the_secrets() {
        let basic = Auth::Basic {
            user: "u".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{basic:?}").contains("hunter2"));
        assert!(!format!("{:?}", Auth::Bearer("tok123".into())).contains("tok123"));
    }

    #[test]
    fn only_http_urls_are_accepted() {
        assert!(Client::new("http://127.0.0.1:9090/", Auth::None).is_ok());
        assert!(matches!(
            Client::new("127.0.0.1:9090", Auth::None),
            Err(PromError::Url { .. })
        ));
        assert!(matches!(
            Client::new("ftp://x", Auth::None),
            Err(PromError::Url { .. })
        ));
    }

    #[test]
    fn credentials_in_the_url_are_refused_without_echoing_them() {
        let e = Client::new("http://ops:hunter2@127.0.0.1:9090", Auth::None).unwrap_err();
        let text = e.to_string();
        assert!(
            !text.contains("hunter2") && text.contains(PASSWORD_ENV),
            "{text}"
        );
    }
}
