//! The HTTP client for the DigitalOcean API v2: authentication, retries with backoff and jitter, pagination,
//! and errors that carry DigitalOcean's message and request id (never the token).
//!
//! Retry rules: GET and DELETE are retried on 429, 5xx and transport failures. POST is retried only when
//! nothing can have been created: on 429 (rejected before any work) and on a failed connection. Any other
//! POST failure is returned as [`ApiError::is_unclear`] so the caller looks the droplets up before re-sending.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::api::{
    parse_error_body, ApiMessage, CreateResponse, Droplet, DropletCreate, RegionInfo, SizeInfo,
    SshKey, SshKeyCreate, SshKeyResponse,
};
use crate::ui::Ui;

/// The default API endpoint.
pub const DEFAULT_API_URL: &str = "https://api.digitalocean.com";
/// Largest page DigitalOcean serves.
const PER_PAGE: u32 = 200;
/// Stop following `next` links after this many pages (a loop guard; 200 × 100 droplets is far beyond any use).
const MAX_PAGES: usize = 100;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait a `retry-after` / `ratelimit-reset` header may impose before we give up instead.
const MAX_SERVER_DELAY: Duration = Duration::from_secs(300);

/// The API token. Its `Debug` is redacted and it is only ever written into a sensitive header.
#[derive(Clone)]
pub struct Token(String);

impl Token {
    pub fn new(value: String) -> Self {
        Token(value)
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// How often and how patiently idempotent requests are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total tries per request, the first included.
    pub attempts: u32,
    /// First backoff; doubles per retry up to `cap`, with jitter.
    pub base: Duration,
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 4,
            base: Duration::from_secs(1),
            cap: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(
        "DigitalOcean rejected the API token ({status}: {}{}); check the token in NCSU_DOTOKEN, \
         DIGITALOCEAN_TOKEN or DIGITALOCEAN_ACCESS_TOKEN (it needs read and write scope)",
        .message.message, request_id(.message)
    )]
    Unauthorized { status: u16, message: ApiMessage },
    #[error(
        "DigitalOcean answered {method} {path} with {status}: {}{}",
        .message.message, request_id(.message)
    )]
    Status {
        method: Method,
        path: String,
        status: u16,
        message: ApiMessage,
    },
    #[error("could not reach the DigitalOcean API at {base} ({method} {path}); check the network or --api-url")]
    Transport {
        method: Method,
        path: String,
        base: String,
        /// The connection was made, so the server may have received (and acted on) the request.
        connected: bool,
        #[source]
        source: reqwest::Error,
    },
    #[error("unexpected answer from DigitalOcean to {method} {path}: {message}")]
    Decode {
        method: Method,
        path: String,
        message: String,
    },
    #[error("the API token contains characters that cannot be sent in an HTTP header (a stray newline?)")]
    BadToken,
    #[error("invalid DigitalOcean API URL `{url}`: {message}")]
    BadUrl { url: String, message: String },
}

fn request_id(m: &ApiMessage) -> String {
    match &m.request_id {
        Some(id) => format!(" (request id {id})"),
        None => String::new(),
    }
}

impl ApiError {
    /// The HTTP status of an error response, if there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Unauthorized { status, .. } | ApiError::Status { status, .. } => {
                Some(*status)
            }
            _ => None,
        }
    }

    /// A failure that says nothing about the droplets, only that the API is briefly unavailable
    /// (transport error, 5xx, 429): a poll that meets one is "still pending", not the end of a wait.
    pub fn is_transient(&self) -> bool {
        match self {
            ApiError::Status { status, .. } => *status == 429 || *status >= 500,
            ApiError::Transport { .. } => true,
            _ => false,
        }
    }

    /// A POST ended in a way that leaves open whether the server acted on it (5xx, timeout, connection lost
    /// after sending): look before re-sending.
    pub fn is_unclear(&self) -> bool {
        match self {
            ApiError::Status { status, .. } => *status >= 500,
            ApiError::Transport { connected, .. } => *connected,
            _ => false,
        }
    }
}

/// A DigitalOcean API client bound to one token and endpoint.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    retry: RetryPolicy,
    ui: Ui,
}

impl Client {
    /// `api_url` is the scheme and host (a trailing `/v2` is accepted and dropped).
    pub fn new(api_url: &str, token: &Token, retry: RetryPolicy, ui: Ui) -> Result<Self, ApiError> {
        let base = normalize_base(api_url).map_err(|message| ApiError::BadUrl {
            url: api_url.to_string(),
            message,
        })?;
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", token.0))
            .map_err(|_| ApiError::BadToken)?;
        auth.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, auth);
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .user_agent(concat!("pipeline/", env!("CARGO_PKG_VERSION")))
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|e| ApiError::BadUrl {
                url: api_url.to_string(),
                message: e.to_string(),
            })?;
        Ok(Client {
            http,
            base,
            retry,
            ui,
        })
    }

    /// Every droplet carrying `tag`.
    pub async fn list_droplets(&self, tag: &str) -> Result<Vec<Droplet>, ApiError> {
        self.list_all(
            format!("/v2/droplets?tag_name={tag}&per_page={PER_PAGE}"),
            "droplets",
        )
        .await
    }

    /// Every region, with the sizes each offers.
    pub async fn regions(&self) -> Result<Vec<RegionInfo>, ApiError> {
        self.list_all(format!("/v2/regions?per_page={PER_PAGE}"), "regions")
            .await
    }

    /// Every droplet size.
    pub async fn sizes(&self) -> Result<Vec<SizeInfo>, ApiError> {
        self.list_all(format!("/v2/sizes?per_page={PER_PAGE}"), "sizes")
            .await
    }

    /// Whether a public image with this slug exists.
    pub async fn image_exists(&self, slug: &str) -> Result<bool, ApiError> {
        match self
            .send(Method::GET, &format!("/v2/images/{slug}"), None::<&()>)
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.status() == Some(404) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The `key` array of every page, following `links.pages.next` (absent, or `pages: {}`, on the last page).
    async fn list_all<T: DeserializeOwned>(
        &self,
        first: String,
        key: &str,
    ) -> Result<Vec<T>, ApiError> {
        let mut path = first;
        let mut all = Vec::new();
        for _ in 0..MAX_PAGES {
            let mut page: serde_json::Value = self.json(Method::GET, &path, None::<&()>).await?;
            let items = match page.get_mut(key).map(serde_json::Value::take) {
                None | Some(serde_json::Value::Null) => Vec::new(),
                Some(v) => serde_json::from_value::<Vec<T>>(v).map_err(|e| ApiError::Decode {
                    method: Method::GET,
                    path: strip_query(&path),
                    message: format!("`{key}`: {e}"),
                })?,
            };
            all.extend(items);
            let next = page
                .pointer("/links/pages/next")
                .and_then(serde_json::Value::as_str)
                .and_then(relative_path);
            match next {
                Some(next) if next != path => path = next,
                _ => break,
            }
        }
        Ok(all)
    }

    /// Creates droplets (one multi-create request). Retried only when nothing can have been created.
    pub async fn create_droplets(&self, body: &DropletCreate) -> Result<Vec<Droplet>, ApiError> {
        let resp: CreateResponse = self.json(Method::POST, "/v2/droplets", Some(body)).await?;
        Ok(resp.into_droplets())
    }

    /// Starts a droplet that is `off` (a droplet action; DigitalOcean answers 201 with the action).
    pub async fn power_on(&self, id: u64) -> Result<(), ApiError> {
        self.send(
            Method::POST,
            &format!("/v2/droplets/{id}/actions"),
            Some(&serde_json::json!({"type": "power_on"})),
        )
        .await
        .map(drop)
    }

    /// Deletes one droplet by id (a duplicate `up` resolved, a host `--prune` removes).
    pub async fn delete_droplet(&self, id: u64) -> Result<(), ApiError> {
        self.send(Method::DELETE, &format!("/v2/droplets/{id}"), None::<&()>)
            .await
            .map(drop)
    }

    /// Deletes every droplet carrying `tag`.
    pub async fn delete_droplets_by_tag(&self, tag: &str) -> Result<(), ApiError> {
        self.send(
            Method::DELETE,
            &format!("/v2/droplets?tag_name={tag}"),
            None::<&()>,
        )
        .await
        .map(drop)
    }

    /// The account's SSH key with this MD5 fingerprint, if registered.
    pub async fn ssh_key(&self, fingerprint: &str) -> Result<Option<SshKey>, ApiError> {
        let path = format!("/v2/account/keys/{fingerprint}");
        match self
            .json::<SshKeyResponse>(Method::GET, &path, None::<&()>)
            .await
        {
            Ok(r) => Ok(Some(r.ssh_key)),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Registers a public key on the account.
    pub async fn create_ssh_key(&self, body: &SshKeyCreate) -> Result<SshKey, ApiError> {
        let r: SshKeyResponse = self
            .json(Method::POST, "/v2/account/keys", Some(body))
            .await?;
        Ok(r.ssh_key)
    }

    async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<T, ApiError> {
        let text = self.send(method.clone(), path, body).await?;
        serde_json::from_str(&text).map_err(|e| ApiError::Decode {
            method,
            path: strip_query(path),
            message: e.to_string(),
        })
    }

    /// Sends one request with the retry rules above; returns the body of a 2xx answer.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<String, ApiError> {
        let idempotent = method != Method::POST;
        let url = format!("{}{}", self.base, path);
        let mut attempt = 1;
        loop {
            let mut req = self.http.request(method.clone(), &url);
            if let Some(b) = body {
                req = req.json(b);
            }
            let (error, server_delay) = match req.send().await {
                Ok(resp) => {
                    let status = resp.status();
                    let headers = resp.headers().clone();
                    let text = resp.text().await.unwrap_or_default();
                    if status.is_success() {
                        return Ok(text);
                    }
                    let header_id = headers
                        .get("x-request-id")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string);
                    let message = parse_error_body(&text, header_id);
                    let retryable = status == StatusCode::TOO_MANY_REQUESTS
                        || (idempotent && status.is_server_error());
                    let error = if status == StatusCode::UNAUTHORIZED {
                        ApiError::Unauthorized {
                            status: status.as_u16(),
                            message,
                        }
                    } else {
                        ApiError::Status {
                            method: method.clone(),
                            path: strip_query(path),
                            status: status.as_u16(),
                            message,
                        }
                    };
                    if !retryable {
                        return Err(error);
                    }
                    let delay = if status == StatusCode::TOO_MANY_REQUESTS {
                        server_delay(&headers, SystemTime::now())
                    } else {
                        None
                    };
                    (error, delay)
                }
                Err(source) => {
                    let connected = !source.is_connect();
                    let error = ApiError::Transport {
                        method: method.clone(),
                        path: strip_query(path),
                        base: self.base.clone(),
                        connected,
                        source,
                    };
                    if connected && !idempotent {
                        return Err(error);
                    }
                    (error, None)
                }
            };
            if attempt >= self.retry.attempts {
                return Err(error);
            }
            if server_delay.is_some_and(|d| d > MAX_SERVER_DELAY) {
                return Err(error);
            }
            let delay = retry_delay(&self.retry, attempt, server_delay, jitter_fraction());
            let mut cause = String::new();
            let mut source = std::error::Error::source(&error);
            while let Some(s) = source {
                cause = format!(": {s}");
                source = s.source();
            }
            self.ui.info(format!(
                "{error}{cause}; retrying in {} (attempt {}/{})",
                humantime::format_duration(round_ms(delay)),
                attempt + 1,
                self.retry.attempts
            ));
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }
}

fn round_ms(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis() as u64)
}

/// Scheme and host (plus any proxy prefix) without a trailing `/` or `/v2`; the error says what is wrong.
pub(super) fn normalize_base(api_url: &str) -> Result<String, String> {
    let trimmed = api_url.trim().trim_end_matches('/');
    let trimmed = trimmed.strip_suffix("/v2").unwrap_or(trimmed);
    let parsed = reqwest::Url::parse(trimmed).map_err(|e| e.to_string())?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err("expected http(s)://host[:port]".to_string());
    }
    Ok(trimmed.to_string())
}

/// The `/v2/…?query` part of an absolute `next` link, so pages are fetched through the configured base URL.
fn relative_path(link: &str) -> Option<String> {
    let url = reqwest::Url::parse(link).ok()?;
    let path = url.path();
    let start = path.find("/v2/")?;
    Some(match url.query() {
        Some(q) => format!("{}?{q}", &path[start..]),
        None => path[start..].to_string(),
    })
}

fn strip_query(path: &str) -> String {
    path.split('?').next().unwrap_or(path).to_string()
}

/// What a 429 asks for: `retry-after` seconds, else the time until `ratelimit-reset` (epoch seconds).
fn server_delay(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    if let Some(secs) = header("retry-after") {
        return Some(Duration::from_secs(secs));
    }
    let reset = header("ratelimit-reset")?;
    let now = now.duration_since(UNIX_EPOCH).ok()?.as_secs();
    Some(Duration::from_secs(reset.saturating_sub(now)))
}

/// The wait before retry number `attempt` (1 = first retry): the server's delay plus up to one `base` of
/// jitter, else exponential backoff `base·2^(attempt-1)` capped at `cap`, with "equal jitter" (half fixed,
/// half random). `jitter` is in [0, 1).
pub fn retry_delay(
    policy: &RetryPolicy,
    attempt: u32,
    server: Option<Duration>,
    jitter: f64,
) -> Duration {
    match server {
        Some(d) => d + policy.base.mul_f64(jitter),
        None => {
            let exp = policy
                .base
                .saturating_mul(1u32 << (attempt.saturating_sub(1)).min(16))
                .min(policy.cap);
            exp / 2 + (exp / 2).mul_f64(jitter)
        }
    }
}

/// A random number in [0, 1) from the standard library's randomly seeded hasher (enough for jitter).
fn jitter_fraction() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_jitter_stays_within_half() {
        let p = RetryPolicy {
            attempts: 4,
            base: Duration::from_secs(1),
            cap: Duration::from_secs(30),
        };
        assert_eq!(retry_delay(&p, 1, None, 0.0), Duration::from_millis(500));
        let top = retry_delay(&p, 1, None, 0.999_999);
        assert!(top > Duration::from_millis(999) && top < Duration::from_secs(1));
        assert_eq!(retry_delay(&p, 3, None, 0.0), Duration::from_secs(2));
        assert_eq!(retry_delay(&p, 10, None, 0.0), Duration::from_secs(15));
        assert!(retry_delay(&p, 10, None, 0.99) < Duration::from_secs(30));
    }

    #[test]
    fn server_delay_wins_over_backoff_plus_bounded_jitter() {
        let p = RetryPolicy::default();
        let d = retry_delay(&p, 3, Some(Duration::from_secs(7)), 0.5);
        assert_eq!(d, Duration::from_millis(7500));
    }

    #[test]
    fn retry_after_beats_ratelimit_reset_which_counts_from_now() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        let mut h = HeaderMap::new();
        h.insert("ratelimit-reset", HeaderValue::from_static("1012"));
        assert_eq!(server_delay(&h, now), Some(Duration::from_secs(12)));
        h.insert("retry-after", HeaderValue::from_static("3"));
        assert_eq!(server_delay(&h, now), Some(Duration::from_secs(3)));
        assert_eq!(server_delay(&HeaderMap::new(), now), None);
    }

    #[test]
    fn next_links_are_followed_through_the_configured_base() {
        assert_eq!(
            relative_path(
                "https://api.digitalocean.com/v2/droplets?page=2&per_page=200&tag_name=x"
            )
            .as_deref(),
            Some("/v2/droplets?page=2&per_page=200&tag_name=x")
        );
        assert_eq!(relative_path("not a url"), None);
    }

    #[test]
    fn base_url_accepts_v2_suffix_and_rejects_non_http() {
        assert_eq!(
            normalize_base("https://api.digitalocean.com/v2/").unwrap(),
            "https://api.digitalocean.com"
        );
        assert_eq!(
            normalize_base("http://127.0.0.1:8080").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert!(normalize_base("ftp://x").is_err());
        assert!(normalize_base("api.digitalocean.com").is_err());
    }

    #[test]
    fn only_server_errors_leave_a_create_unclear() {
        let status = |code: u16| ApiError::Status {
            method: Method::POST,
            path: "/v2/droplets".into(),
            status: code,
            message: parse_error_body("", None),
        };
        assert!(status(500).is_unclear());
        assert!(status(504).is_unclear());
        assert!(!status(422).is_unclear());
        assert!(!status(429).is_unclear());
        assert_eq!(status(404).status(), Some(404));
    }

    #[test]
    fn token_debug_is_redacted_in_the_token_and_the_client() {
        let t = Token::new("dop_v1_secret".into());
        assert!(!format!("{t:?}").contains("secret"));
        let client = Client::new(
            "https://api.digitalocean.com",
            &t,
            RetryPolicy::default(),
            Ui::new(true),
        )
        .unwrap();
        assert!(!format!("{client:?}").contains("secret"));
    }

    #[test]
    fn jitter_is_a_fraction() {
        for _ in 0..100 {
            let j = jitter_fraction();
            assert!((0.0..1.0).contains(&j));
        }
    }
}
