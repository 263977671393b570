//! A stateful fake of the DigitalOcean API v2 on loopback, for tests without network. It behaves like the
//! real API where `pipeline` depends on it:
//! - bearer-token authentication (401 with DigitalOcean's JSON error body otherwise);
//! - `POST /v2/droplets` answers 202 with `status: "new"`, `networks: {}` and empty `image`/`size`/`region`;
//! - droplets turn `active` after `active_after` listings that include them, gain a private address at once
//!   and their public one `ip_after_active` listings later, listed after the private one;
//! - new droplets can stay out of tag listings for a few listings ([`FakeDo::set_listing_lag`]);
//! - lists filter by `tag_name`, page by `per_page` (capped at `page_size`) and link `links.pages.next`;
//! - `DELETE /v2/droplets?tag_name=` removes the tagged droplets (still listed once, as `off`, then gone);
//! - SSH keys by fingerprint (404 when unknown), registered with 201;
//! - the `power_on` droplet action (droplets can be powered off with [`FakeDo::power_off`]);
//! - a small catalogue: regions (`nyc2` closed to new droplets), sizes, distribution images;
//! - scripted faults: 429 with `retry-after`, 500 with an HTML page, a create that succeeds but answers 500,
//!   a dropped connection, a duplicate made by a concurrent create, and runs of failures ([`FakeDo::outage`]);
//! - `DELETE /v2/droplets/{id}`.
//!
//! Every request is recorded (method, path, query, JSON body, Authorization header) for assertions.

use std::collections::{BTreeMap, VecDeque};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};

const REGIONS: [(&str, bool); 5] = [
    ("nyc1", true),
    ("nyc2", false),
    ("nyc3", true),
    ("sfo3", true),
    ("ams3", true),
];
const SIZES: [&str; 4] = ["s-1vcpu-1gb", "s-1vcpu-2gb", "s-2vcpu-2gb", "s-2vcpu-4gb"];
const IMAGES: [&str; 2] = ["ubuntu-24-04-x64", "ubuntu-22-04-x64"];

/// A request the fake received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: BTreeMap<String, String>,
    pub body: Option<Value>,
    pub authorization: Option<String>,
}

impl Recorded {
    pub fn is(&self, method: &str, path: &str) -> bool {
        self.method == method && self.path == path
    }
}

/// A one-shot fault for the next request matching a method and path.
#[derive(Debug, Clone)]
pub enum Fault {
    /// 429 with `retry-after: N` and DigitalOcean's rate-limit body.
    RateLimit { retry_after: u64 },
    /// 500 with a Cloudflare-style HTML page and an `x-request-id` header.
    Html500,
    /// Performs the create, then answers 500 (the unclear failure a client must not blindly retry).
    CreateThen500,
    /// Closes the connection without an answer (a transport error).
    Disconnect,
    /// Before the create, another droplet of each name appears (a concurrent `up` elsewhere), with a
    /// lower id; the answer names only the droplets of this request.
    DuplicateBefore,
}

/// A run of failures: the matching requests after the first `after` fail with `fault`, `count` times.
#[derive(Debug, Clone)]
struct Outage {
    method: String,
    path: String,
    after: usize,
    count: usize,
    fault: Fault,
}

#[derive(Debug, Clone)]
struct FakeDroplet {
    id: u64,
    index: u8,
    name: String,
    size: String,
    region: String,
    image: String,
    tags: Vec<String>,
    polls: u32,
    /// Listings that still leave this new droplet out (tag listings are eventually consistent).
    hidden_for: u32,
    /// Powered off (until a `power_on` action).
    off: bool,
    /// Listings left before a deleted droplet disappears.
    deleting: Option<u32>,
}

#[derive(Debug)]
struct State {
    base: String,
    token: String,
    active_after: u32,
    ip_after_active: u32,
    listing_lag: u32,
    page_size: usize,
    next_id: u64,
    next_index: u8,
    droplets: Vec<FakeDroplet>,
    keys: Vec<(u64, String, String)>,
    faults: VecDeque<(String, String, Fault)>,
    outages: Vec<Outage>,
    requests: Vec<Recorded>,
}

/// The running fake; stops with the test.
pub struct FakeDo {
    pub url: String,
    state: Arc<Mutex<State>>,
    _runtime: tokio::runtime::Runtime,
}

impl FakeDo {
    /// Starts the fake accepting `token`. Droplets turn active after 2 listings, get a public IP one listing
    /// later; pages hold up to 200 droplets.
    pub fn start(token: &str) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State {
            base: url.clone(),
            token: token.to_string(),
            active_after: 2,
            ip_after_active: 1,
            listing_lag: 0,
            page_size: 200,
            next_id: 3_164_400,
            next_index: 1,
            droplets: Vec::new(),
            keys: Vec::new(),
            faults: VecDeque::new(),
            outages: Vec::new(),
            requests: Vec::new(),
        }));
        let shared = state.clone();
        runtime.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = shared.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| handle(state.clone(), req));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        FakeDo {
            url,
            state,
            _runtime: runtime,
        }
    }

    /// Listings a new droplet needs before it is `active` (and before its public IP, plus `ip_after_active`).
    pub fn set_lifecycle(&self, active_after: u32, ip_after_active: u32) {
        let mut s = self.state.lock().unwrap();
        s.active_after = active_after;
        s.ip_after_active = ip_after_active;
    }

    /// Listings for which a newly created droplet is still missing from tag listings.
    pub fn set_listing_lag(&self, listings: u32) {
        self.state.lock().unwrap().listing_lag = listings;
    }

    /// The most droplets one page holds, whatever `per_page` asks.
    pub fn set_page_size(&self, n: usize) {
        self.state.lock().unwrap().page_size = n;
    }

    /// Queues a fault for the next `method path` request.
    pub fn inject(&self, method: &str, path: &str, fault: Fault) {
        self.state
            .lock()
            .unwrap()
            .faults
            .push_back((method.to_string(), path.to_string(), fault));
    }

    /// After `after` more `method path` requests, fails the next `count` of them with `fault` (an outage).
    pub fn outage(&self, method: &str, path: &str, after: usize, count: usize, fault: Fault) {
        self.state.lock().unwrap().outages.push(Outage {
            method: method.to_string(),
            path: path.to_string(),
            after,
            count,
            fault,
        });
    }

    /// Ids of the droplets named `name` that exist now, sorted.
    pub fn ids(&self, name: &str) -> Vec<u64> {
        let s = self.state.lock().unwrap();
        let mut ids: Vec<u64> = s
            .droplets
            .iter()
            .filter(|d| d.name == name && d.deleting.is_none())
            .map(|d| d.id)
            .collect();
        ids.sort_unstable();
        ids
    }

    /// Adds an already running droplet (active, with its public IP).
    pub fn add_droplet(&self, name: &str, size: &str, tags: &[&str]) -> u64 {
        let mut s = self.state.lock().unwrap();
        let polls = s.active_after + s.ip_after_active;
        let d = new_droplet(&mut s, name, size, "nyc1", "ubuntu-24-04-x64", tags, polls);
        let id = d.id;
        s.droplets.push(d);
        id
    }

    /// Powers a droplet off, as if someone stopped it in the console.
    pub fn power_off(&self, name: &str) {
        let mut s = self.state.lock().unwrap();
        s.droplets.iter_mut().find(|d| d.name == name).unwrap().off = true;
    }

    /// Registers an SSH key on the fake account.
    pub fn add_key(&self, fingerprint: &str, public_key: &str) {
        let mut s = self.state.lock().unwrap();
        let id = s.next_id;
        s.next_id += 1;
        s.keys
            .push((id, fingerprint.to_string(), public_key.to_string()));
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.clone()
    }

    pub fn count(&self, method: &str, path: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.is(method, path))
            .count()
    }

    /// Bodies of the create requests, in order.
    pub fn creates(&self) -> Vec<Value> {
        self.requests()
            .into_iter()
            .filter(|r| r.is("POST", "/v2/droplets"))
            .filter_map(|r| r.body)
            .collect()
    }

    /// Names of the droplets that exist now (deleted ones excluded), sorted.
    pub fn droplet_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .state
            .lock()
            .unwrap()
            .droplets
            .iter()
            .filter(|d| d.deleting.is_none())
            .map(|d| d.name.clone())
            .collect();
        names.sort();
        names
    }

    /// Public IPv4 the fake gives droplet `name` (a loopback address, so tests can listen on it).
    pub fn public_ip(&self, name: &str) -> Ipv4Addr {
        let s = self.state.lock().unwrap();
        let d = s.droplets.iter().find(|d| d.name == name).unwrap();
        public_ip(d.index)
    }

    pub fn key_count(&self) -> usize {
        self.state.lock().unwrap().keys.len()
    }
}

fn public_ip(index: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 10, index)
}

fn new_droplet(
    s: &mut State,
    name: &str,
    size: &str,
    region: &str,
    image: &str,
    tags: &[&str],
    polls: u32,
) -> FakeDroplet {
    let d = FakeDroplet {
        id: s.next_id,
        index: s.next_index,
        name: name.to_string(),
        size: size.to_string(),
        region: region.to_string(),
        image: image.to_string(),
        tags: tags.iter().map(std::string::ToString::to_string).collect(),
        polls,
        hidden_for: 0,
        off: false,
        deleting: None,
    };
    s.next_id += 1;
    s.next_index += 1;
    d
}

/// The droplet as the API shows it after `d.polls` listings.
fn render(s: &State, d: &FakeDroplet) -> Value {
    let active = d.polls >= s.active_after;
    let status = match (d.deleting, active) {
        (Some(_), _) => "off",
        (None, _) if d.off => "off",
        (None, true) => "active",
        (None, false) => "new",
    };
    let mut v4 = Vec::new();
    if active {
        v4.push(
            json!({"ip_address": format!("10.10.0.{}", d.index), "netmask": "255.255.0.0",
                       "gateway": null, "type": "private"}),
        );
        if d.polls >= s.active_after + s.ip_after_active {
            v4.push(
                json!({"ip_address": public_ip(d.index).to_string(), "netmask": "255.255.240.0",
                           "gateway": "127.0.10.254", "type": "public"}),
            );
        }
    }
    let networks = if v4.is_empty() {
        json!({})
    } else {
        json!({"v4": v4, "v6": []})
    };
    json!({
        "id": d.id, "name": d.name, "memory": 1024, "vcpus": 1, "disk": 25, "locked": false,
        "status": status, "kernel": null, "created_at": "2026-11-28T18:00:00Z",
        "features": [], "backup_ids": [], "next_backup_window": null, "snapshot_ids": [],
        "image": {"slug": d.image, "distribution": "Ubuntu"},
        "volume_ids": [], "size": {"slug": d.size}, "size_slug": d.size,
        "networks": networks,
        "region": {"slug": d.region, "name": "New York 1"},
        "tags": d.tags, "vpc_uuid": "00000000-0000-4000-8000-000000000000"
    })
}

fn respond(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("ratelimit-limit", "5000")
        .header("ratelimit-remaining", "4999")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

fn error(status: StatusCode, id: &str, message: &str) -> Response<Full<Bytes>> {
    respond(
        status,
        &json!({"id": id, "message": message, "request_id": "fake-req-0001"}),
    )
}

async fn handle(
    state: Arc<Mutex<State>>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, std::io::Error> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query: BTreeMap<String, String> = req
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (p.to_string(), String::new()),
        })
        .collect();
    let authorization = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let bytes = req.into_body().collect().await.unwrap().to_bytes();
    let body: Option<Value> = serde_json::from_slice(&bytes).ok();
    let mut s = state.lock().unwrap();
    s.requests.push(Recorded {
        method: method.to_string(),
        path: path.clone(),
        query: query.clone(),
        body: body.clone(),
        authorization: authorization.clone(),
    });
    if authorization.as_deref() != Some(&format!("Bearer {}", s.token)) {
        return Ok(error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Unable to authenticate you",
        ));
    }
    let fault = s
        .faults
        .iter()
        .position(|(m, p, _)| *m == method.as_str() && *p == path)
        .and_then(|i| s.faults.remove(i))
        .map(|(_, _, f)| f);
    let outage = s
        .outages
        .iter_mut()
        .filter(|o| o.method == method.as_str() && o.path == path && o.count > 0)
        .find_map(|o| {
            if o.after > 0 {
                o.after -= 1;
                None
            } else {
                o.count -= 1;
                Some(o.fault.clone())
            }
        });
    match fault.or(outage) {
        Some(Fault::Disconnect) => {
            return Err(std::io::Error::other("fake outage: connection dropped"));
        }
        Some(Fault::DuplicateBefore) => {
            // The concurrent create lands first; this request's create follows in `route`.
            let _ = create(&mut s, body.as_ref());
        }
        Some(Fault::RateLimit { retry_after }) => {
            let mut r = error(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                "API rate limit exceeded.",
            );
            r.headers_mut()
                .insert("retry-after", retry_after.to_string().parse().unwrap());
            return Ok(r);
        }
        Some(Fault::Html500) => {
            return Ok(Response::builder()
                .status(StatusCode::INTERNAL_SERVER_ERROR)
                .header("content-type", "text/html")
                .header("x-request-id", "fake-html-req")
                .body(Full::new(Bytes::from_static(
                    b"<!DOCTYPE html>\n<html><head><title>500 Internal Server Error | cloudflare</title></head>\
                      <body><h1>Internal Server Error</h1></body></html>",
                )))
                .unwrap());
        }
        Some(Fault::CreateThen500) => {
            let _ = create(&mut s, body.as_ref());
            return Ok(error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "Server was unable to give you a response.",
            ));
        }
        None => {}
    }
    Ok(route(&mut s, &method, &path, &query, body.as_ref()))
}

fn route(
    s: &mut State,
    method: &Method,
    path: &str,
    query: &BTreeMap<String, String>,
    body: Option<&Value>,
) -> Response<Full<Bytes>> {
    match (method.as_str(), path) {
        ("GET", "/v2/droplets") => list(s, query),
        ("POST", "/v2/droplets") => create(s, body),
        ("DELETE", p) if p.starts_with("/v2/droplets/") => {
            let id = &p["/v2/droplets/".len()..];
            match s.droplets.iter_mut().find(|d| d.id.to_string() == id) {
                Some(d) => {
                    d.deleting.get_or_insert(1);
                    Response::builder()
                        .status(StatusCode::NO_CONTENT)
                        .body(Full::new(Bytes::new()))
                        .unwrap()
                }
                None => error(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    "The resource you were accessing could not be found.",
                ),
            }
        }
        ("DELETE", "/v2/droplets") => {
            let Some(tag) = query.get("tag_name") else {
                return error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "unprocessable_entity",
                    "tag_name is required",
                );
            };
            for d in s.droplets.iter_mut().filter(|d| d.tags.contains(tag)) {
                d.deleting.get_or_insert(1);
            }
            Response::builder()
                .status(StatusCode::NO_CONTENT)
                .body(Full::new(Bytes::new()))
                .unwrap()
        }
        ("POST", p) if p.starts_with("/v2/droplets/") && p.ends_with("/actions") => {
            let id = &p["/v2/droplets/".len()..p.len() - "/actions".len()];
            let Some(d) = s.droplets.iter_mut().find(|d| d.id.to_string() == id) else {
                return error(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    "The resource you were accessing could not be found.",
                );
            };
            if body.and_then(|b| b["type"].as_str()) != Some("power_on") {
                return error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "unprocessable_entity",
                    "unsupported action type",
                );
            }
            d.off = false;
            respond(
                StatusCode::CREATED,
                &json!({"action": {"id": 1, "status": "in-progress", "type": "power_on", "resource_id": d.id}}),
            )
        }
        ("GET", "/v2/regions") => {
            let offered = json!(SIZES);
            let regions: Vec<Value> = REGIONS
                .iter()
                .map(|(slug, available)| {
                    json!({"slug": slug, "name": slug, "available": available, "features": [],
                           "sizes": if *available { offered.clone() } else { json!([]) }})
                })
                .collect();
            respond(
                StatusCode::OK,
                &json!({"regions": regions, "links": {}, "meta": {"total": REGIONS.len()}}),
            )
        }
        ("GET", "/v2/sizes") => {
            let sizes: Vec<Value> = SIZES
                .iter()
                .map(|slug| {
                    json!({"slug": slug, "available": true, "vcpus": 1, "memory": 1024,
                                   "regions": ["nyc1", "nyc3", "sfo3", "ams3"]})
                })
                .collect();
            respond(
                StatusCode::OK,
                &json!({"sizes": sizes, "links": {"pages": {}}, "meta": {"total": SIZES.len()}}),
            )
        }
        ("GET", p) if p.starts_with("/v2/images/") => {
            let slug = &p["/v2/images/".len()..];
            if IMAGES.contains(&slug) {
                respond(
                    StatusCode::OK,
                    &json!({"image": {"id": 1, "slug": slug, "distribution": "Ubuntu", "public": true}}),
                )
            } else {
                error(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    "The resource you were accessing could not be found.",
                )
            }
        }
        ("POST", "/v2/account/keys") => {
            let Some(public_key) = body.and_then(|b| b["public_key"].as_str()) else {
                return error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "unprocessable_entity",
                    "public_key is required",
                );
            };
            let fingerprint =
                pipeline::providers::digitalocean::sshkey::md5_fingerprint(public_key).unwrap();
            if s.keys.iter().any(|k| k.1 == fingerprint) {
                return error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "unprocessable_entity",
                    "SSH Key is already in use on your account",
                );
            }
            let id = s.next_id;
            s.next_id += 1;
            s.keys
                .push((id, fingerprint.clone(), public_key.to_string()));
            respond(
                StatusCode::CREATED,
                &json!({"ssh_key": {"id": id, "fingerprint": fingerprint, "public_key": public_key,
                                   "name": body.and_then(|b| b["name"].as_str())}}),
            )
        }
        ("GET", p) if p.starts_with("/v2/account/keys/") => {
            let wanted = &p["/v2/account/keys/".len()..];
            match s
                .keys
                .iter()
                .find(|k| k.1 == wanted || k.0.to_string() == wanted)
            {
                Some((id, fp, public_key)) => respond(
                    StatusCode::OK,
                    &json!({"ssh_key": {"id": id, "fingerprint": fp, "public_key": public_key, "name": "k"}}),
                ),
                None => error(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    "The resource you were accessing could not be found.",
                ),
            }
        }
        _ => error(
            StatusCode::NOT_FOUND,
            "not_found",
            "The resource you were accessing could not be found.",
        ),
    }
}

fn list(s: &mut State, query: &BTreeMap<String, String>) -> Response<Full<Bytes>> {
    let tag = query.get("tag_name").cloned();
    let page: usize = query.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
    let per_page: usize = query
        .get("per_page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(20)
        .min(s.page_size);
    // Deleted droplets linger for one listing (as `off`), then disappear.
    if page == 1 {
        s.droplets.retain(|d| d.deleting != Some(0));
    }
    if page == 1 {
        for d in s.droplets.iter_mut().filter(|d| d.hidden_for > 0) {
            d.hidden_for -= 1;
            if d.hidden_for > 0 {
                d.polls = 0;
            }
        }
    }
    let matching: Vec<usize> = (0..s.droplets.len())
        .filter(|&i| s.droplets[i].hidden_for == 0)
        .filter(|&i| tag.as_ref().is_none_or(|t| s.droplets[i].tags.contains(t)))
        .collect();
    let total = matching.len();
    let shown: Vec<usize> = matching
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .collect();
    for &i in &shown {
        let d = &mut s.droplets[i];
        d.polls += 1;
        if let Some(n) = d.deleting.as_mut() {
            *n = n.saturating_sub(1);
        }
    }
    let droplets: Vec<Value> = shown.iter().map(|&i| render(s, &s.droplets[i])).collect();
    let link = |p: usize| {
        let mut url = format!("{}/v2/droplets?page={p}&per_page={per_page}", s.base);
        if let Some(t) = &tag {
            url.push_str(&format!("&tag_name={t}"));
        }
        url
    };
    let last = total.div_ceil(per_page.max(1)).max(1);
    let mut pages = serde_json::Map::new();
    if page < last {
        pages.insert("next".into(), json!(link(page + 1)));
        pages.insert("last".into(), json!(link(last)));
    }
    if page > 1 {
        pages.insert("first".into(), json!(link(1)));
        pages.insert("prev".into(), json!(link(page - 1)));
    }
    respond(
        StatusCode::OK,
        &json!({"droplets": droplets, "links": {"pages": pages}, "meta": {"total": total}}),
    )
}

fn create(s: &mut State, body: Option<&Value>) -> Response<Full<Bytes>> {
    let Some(body) = body else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "request body is not JSON",
        );
    };
    let names: Vec<String> = match (body.get("names"), body.get("name")) {
        (Some(Value::Array(ns)), _) => ns
            .iter()
            .filter_map(|n| n.as_str().map(str::to_string))
            .collect(),
        (_, Some(Value::String(n))) => vec![n.clone()],
        _ => Vec::new(),
    };
    let field = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_string);
    let (Some(size), Some(image)) = (field("size"), field("image")) else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable_entity",
            "size and image are required",
        );
    };
    let name_ok = |n: &String| {
        !n.is_empty()
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
    };
    if names.is_empty() || names.len() > 10 || !names.iter().all(name_ok) {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable_entity",
            "Name Only valid hostname characters are allowed. (a-z, A-Z, 0-9, . and -)",
        );
    }
    let region = field("region").unwrap_or_else(|| "nyc3".to_string());
    let tags: Vec<String> = body
        .get("tags")
        .and_then(Value::as_array)
        .map(|ts| {
            ts.iter()
                .filter_map(|t| t.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let tag_refs: Vec<&str> = tags.iter().map(String::as_str).collect();
    let mut created = Vec::new();
    for name in &names {
        let mut d = new_droplet(s, name, &size, &region, &image, &tag_refs, 0);
        d.hidden_for = s.listing_lag;
        created.push(json!({
            "id": d.id, "name": d.name, "memory": 1024, "vcpus": 1, "disk": 25, "locked": false,
            "status": "new", "kernel": null, "created_at": "2026-11-28T18:00:00Z", "features": [],
            "backup_ids": [], "next_backup_window": null, "snapshot_ids": [], "image": {},
            "volume_ids": [], "size": {}, "size_slug": d.size, "networks": {}, "region": {},
            "tags": d.tags
        }));
        s.droplets.push(d);
    }
    let actions: Vec<Value> = created
        .iter()
        .map(|d| json!({"id": d["id"], "rel": "create", "href": format!("{}/v2/actions/{}", s.base, d["id"])}))
        .collect();
    let body = if created.len() == 1 && body.get("name").is_some() {
        json!({"droplet": created[0], "links": {"actions": actions}})
    } else {
        json!({"droplets": created, "links": {"actions": actions}})
    };
    respond(StatusCode::ACCEPTED, &body)
}
