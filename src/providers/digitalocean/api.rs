//! Typed requests and responses of the DigitalOcean API v2 endpoints `pipeline` uses, plus the pure helpers
//! that read them (public address, readiness, error bodies).
//!
//! Deserialization is lenient where the API is: right after a create, `networks` is `{}` and `image`, `size`
//! and `region` can be empty objects or `null`, so every nested field defaults.

use std::net::Ipv4Addr;

use serde::{Deserialize, Deserializer, Serialize};

/// `null` or absent becomes `T::default()`.
fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A droplet as listed or created (`models/droplet.yml`, only the fields used).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Droplet {
    pub id: u64,
    pub name: String,
    /// `new`, `active`, `off` or `archive`.
    #[serde(default, deserialize_with = "null_default")]
    pub status: String,
    #[serde(default, deserialize_with = "null_default")]
    pub locked: bool,
    #[serde(default, deserialize_with = "null_default")]
    pub tags: Vec<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub size_slug: String,
    #[serde(default, deserialize_with = "null_default")]
    pub networks: Networks,
    #[serde(default, deserialize_with = "null_default")]
    pub region: Region,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct Networks {
    #[serde(default, deserialize_with = "null_default")]
    pub v4: Vec<NetworkV4>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct NetworkV4 {
    pub ip_address: String,
    /// `public` or `private`.
    #[serde(rename = "type", default, deserialize_with = "null_default")]
    pub kind: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct Region {
    #[serde(default, deserialize_with = "null_default")]
    pub slug: String,
}

impl Droplet {
    /// The public IPv4, chosen by `type == "public"` (the order of `networks.v4` is unspecified).
    pub fn public_ipv4(&self) -> Option<Ipv4Addr> {
        self.networks
            .v4
            .iter()
            .filter(|n| n.kind == "public")
            .find_map(|n| n.ip_address.parse().ok())
    }

    /// Where this droplet is on its way to being usable.
    pub fn readiness(&self) -> Readiness {
        if self.status != "active" {
            Readiness::Status(self.status.clone())
        } else if self.locked {
            Readiness::Locked
        } else {
            match self.public_ipv4() {
                None => Readiness::NoPublicIp,
                Some(ip) => Readiness::Active(ip),
            }
        }
    }
}

/// How far a droplet is from being usable, from one listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// Not `active` yet (or `off`/`archive`): the status.
    Status(String),
    /// `active` but `locked` by a running action.
    Locked,
    /// `active` and unlocked, but no public IPv4 listed yet (it can arrive after `active`).
    NoPublicIp,
    /// `active`, unlocked, with this public IPv4.
    Active(Ipv4Addr),
}

impl Readiness {
    /// A few words for progress lines and timeout errors.
    pub fn describe(&self) -> String {
        match self {
            Readiness::Status(s) if s.is_empty() => "status unknown".to_string(),
            Readiness::Status(s) => format!("status {s}"),
            Readiness::Locked => "active, locked by an action".to_string(),
            Readiness::NoPublicIp => "active, waiting for a public IPv4".to_string(),
            Readiness::Active(ip) => format!("active at {ip}"),
        }
    }
}

/// `POST /v2/droplets` body for several droplets with one spec (`droplet_create.yml`, multi-create form).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DropletCreate {
    pub names: Vec<String>,
    pub region: String,
    pub size: String,
    pub image: String,
    /// Key fingerprints (MD5, colon-separated) or ids.
    pub ssh_keys: Vec<String>,
    pub tags: Vec<String>,
}

/// `POST /v2/account/keys` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SshKeyCreate {
    pub name: String,
    pub public_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SshKey {
    pub id: u64,
    pub fingerprint: String,
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
}

#[derive(Debug, Deserialize)]
pub struct SshKeyResponse {
    pub ssh_key: SshKey,
}

/// Multi-create answers `{droplets: […]}`; single create `{droplet: {…}}`.
#[derive(Debug, Deserialize)]
pub struct CreateResponse {
    #[serde(default, deserialize_with = "null_default")]
    pub droplets: Vec<Droplet>,
    pub droplet: Option<Droplet>,
}

impl CreateResponse {
    pub fn into_droplets(self) -> Vec<Droplet> {
        let mut all = self.droplets;
        all.extend(self.droplet);
        all
    }
}

/// A region of `GET /v2/regions`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RegionInfo {
    pub slug: String,
    #[serde(default, deserialize_with = "null_default")]
    pub available: bool,
    /// Size slugs that can be created here.
    #[serde(default, deserialize_with = "null_default")]
    pub sizes: Vec<String>,
}

/// A size of `GET /v2/sizes`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SizeInfo {
    pub slug: String,
    #[serde(default, deserialize_with = "null_default")]
    pub available: bool,
}

/// The error body DigitalOcean sends with 4xx/5xx: `{id, message, request_id?}`.
#[derive(Debug, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    id: String,
    #[serde(default)]
    message: String,
    request_id: Option<String>,
}

/// What an error response said, whatever its body looked like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiMessage {
    /// DigitalOcean's error id (`unauthorized`, `not_found`, …); empty when the body was not JSON.
    pub id: String,
    /// DigitalOcean's message, or a summary of a non-JSON body (an HTML gateway page's title).
    pub message: String,
    pub request_id: Option<String>,
}

/// Reads an error body: DigitalOcean's JSON, or anything else (HTML from a gateway, empty, plain text).
/// `header_request_id` is the `x-request-id` header, used when the body has none.
pub fn parse_error_body(body: &str, header_request_id: Option<String>) -> ApiMessage {
    if let Ok(parsed) = serde_json::from_str::<ErrorBody>(body) {
        if !parsed.message.is_empty() || !parsed.id.is_empty() {
            return ApiMessage {
                id: parsed.id,
                message: parsed.message,
                request_id: parsed.request_id.or(header_request_id),
            };
        }
    }
    ApiMessage {
        id: String::new(),
        message: summarize_non_json(body),
        request_id: header_request_id,
    }
}

/// The `<title>` of an HTML page, else the first non-empty line, at most 200 characters.
fn summarize_non_json(body: &str) -> String {
    let lower = body.to_ascii_lowercase();
    let text = match (lower.find("<title>"), lower.find("</title>")) {
        (Some(start), Some(end)) if end > start + 7 => body[start + 7..end].trim().to_string(),
        _ => body
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("")
            .to_string(),
    };
    if text.is_empty() {
        return "(empty response body)".to_string();
    }
    let mut out: String = text.chars().take(200).collect();
    if text.chars().count() > 200 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn droplet_right_after_create_with_empty_objects_and_nulls_parses() {
        let d: Droplet = serde_json::from_str(
            r#"{"id": 3164444, "name": "itrust", "status": "new", "locked": false,
                "networks": {}, "image": {}, "size": {}, "region": {}, "kernel": null,
                "next_backup_window": null, "tags": ["pipeline"]}"#,
        )
        .unwrap();
        assert_eq!(d.status, "new");
        assert!(d.networks.v4.is_empty());
        assert_eq!(d.readiness(), Readiness::Status("new".into()));
        let d: Droplet =
            serde_json::from_str(r#"{"id": 1, "name": "x", "networks": null, "region": null}"#)
                .unwrap();
        assert_eq!(d.public_ipv4(), None);
    }

    #[test]
    fn public_ip_is_chosen_by_type_not_position() {
        let d: Droplet = serde_json::from_str(
            r#"{"id": 1, "name": "itrust", "status": "active", "networks": {"v4": [
                {"ip_address": "10.128.192.124", "netmask": "255.255.0.0", "gateway": null, "type": "private"},
                {"ip_address": "192.241.165.154", "netmask": "255.255.240.0", "gateway": "192.241.160.1", "type": "public"}
            ]}}"#,
        )
        .unwrap();
        assert_eq!(d.public_ipv4(), Some(Ipv4Addr::new(192, 241, 165, 154)));
        assert_eq!(
            d.readiness(),
            Readiness::Active(Ipv4Addr::new(192, 241, 165, 154))
        );
    }

    #[test]
    fn active_droplet_without_public_ip_or_locked_is_not_ready() {
        let mut d: Droplet = serde_json::from_str(
            r#"{"id": 1, "name": "a", "status": "active", "networks": {"v4": [
                {"ip_address": "10.0.0.2", "type": "private"}]}}"#,
        )
        .unwrap();
        assert_eq!(d.readiness(), Readiness::NoPublicIp);
        d.locked = true;
        assert_eq!(d.readiness(), Readiness::Locked);
    }

    #[test]
    fn json_error_body_gives_message_and_request_id() {
        let m = parse_error_body(
            r#"{"id":"unauthorized","message":"Unable to authenticate you","request_id":"abc-1"}"#,
            Some("hdr".into()),
        );
        assert_eq!(m.id, "unauthorized");
        assert_eq!(m.message, "Unable to authenticate you");
        assert_eq!(m.request_id.as_deref(), Some("abc-1"));
    }

    #[test]
    fn html_gateway_page_is_summarized_by_its_title_and_header_request_id_kept() {
        let m = parse_error_body(
            "<html><head><title>504 Gateway Time-out</title></head><body><h1>cloudflare</h1></body></html>",
            Some("req-9".into()),
        );
        assert_eq!(m.id, "");
        assert_eq!(m.message, "504 Gateway Time-out");
        assert_eq!(m.request_id.as_deref(), Some("req-9"));
        assert_eq!(parse_error_body("", None).message, "(empty response body)");
    }

    #[test]
    fn multi_create_body_serializes_to_the_api_shape() {
        let body = DropletCreate {
            names: vec!["checkbox".into(), "monitor".into()],
            region: "nyc1".into(),
            size: "s-1vcpu-1gb".into(),
            image: "ubuntu-24-04-x64".into(),
            ssh_keys: vec!["aa:bb".into()],
            tags: vec!["pipeline".into(), "pipeline-prod".into()],
        };
        let v = serde_json::to_value(&body).unwrap();
        assert_eq!(v["names"], serde_json::json!(["checkbox", "monitor"]));
        assert_eq!(v["ssh_keys"], serde_json::json!(["aa:bb"]));
        assert!(v.get("name").is_none());
    }
}
