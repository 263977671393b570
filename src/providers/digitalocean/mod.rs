//! DigitalOcean droplets through the REST API v2: the [`Provider`] implementation, its settings
//! (`[digitalocean]` in pipeline.toml) and the plan that decides what `up` creates and what it adopts.
//!
//! The tag `pipeline-<environment>` is the source of truth: every droplet `up` creates carries it (plus
//! `pipeline`), `up` adopts droplets that already carry it instead of creating duplicates, and `down` deletes
//! by it. A small state file (`<state_dir>/digitalocean-<environment>.json`, mode 0600) records ids for people.

pub mod api;
pub mod client;
pub mod sshkey;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;
use tokio::time::Instant;

use crate::providers::{Connection, Host, HostSpec, Provider, ProviderKind, WaitFor};
use crate::settings::{ConfigError, Global};
use crate::ui::Ui;
use api::{Droplet, DropletCreate, Readiness, RegionInfo, SizeInfo, SshKeyCreate};
use client::{ApiError, Client, RetryPolicy, Token};
use sshkey::KeyPair;

/// Environment variables the token is read from, in this order.
pub const TOKEN_VARS: [&str; 3] = [
    "NCSU_DOTOKEN",
    "DIGITALOCEAN_TOKEN",
    "DIGITALOCEAN_ACCESS_TOKEN",
];
/// Environment variable for the API base URL (below `--api-url`, above pipeline.toml).
pub const API_URL_VAR: &str = "DIGITALOCEAN_API_URL";
/// Hidden setting for tests: the port the SSH readiness probe connects to (default 22).
pub const SSH_PROBE_PORT_VAR: &str = "PIPELINE_SSH_PROBE_PORT";
/// The tag on every droplet this tool creates, whatever the environment.
pub const COMMON_TAG: &str = "pipeline";

const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(5);
const DOWN_TIMEOUT: Duration = Duration::from_secs(600);
const SSH_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const SSH_BANNER_TIMEOUT: Duration = Duration::from_secs(5);
/// DigitalOcean's limit on `names` in one multi-create request.
const MAX_NAMES_PER_CREATE: usize = 10;
/// How many times `up` re-checks and re-sends a create that ended unclearly (5xx, timeout).
const CREATE_ATTEMPTS: u32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot use DigitalOcean: {}", .0.join("; "))]
    Prerequisites(Vec<String>),
    #[error(transparent)]
    Api(Box<ApiError>),
    #[error("{count} droplets named {name} carry tag {tag} (ids {ids}); destroy the extra one in the DigitalOcean console, then run `pipeline prod up` again")]
    Duplicate {
        name: String,
        tag: String,
        count: usize,
        ids: String,
    },
    #[error("creating droplets {names} failed ({cause}), and after {attempts} checks they do not carry tag {tag}; run `pipeline prod status`, then `pipeline prod up` again")]
    CreateFailed {
        names: String,
        tag: String,
        attempts: u32,
        cause: String,
    },
    #[error("DigitalOcean cannot create these hosts as configured")]
    Catalogue(#[source] ConfigError),
    #[error("DigitalOcean accepted the create request but did not return droplet {name}; run `pipeline prod up` again (it adopts what exists)")]
    NotCreated { name: String },
    #[error("timed out after {} waiting for {}; run `pipeline prod up` again to keep waiting (it adopts the droplets) or `pipeline prod status` to look", humantime::format_duration(*.timeout), pending_list(.pending))]
    WaitTimeout {
        timeout: Duration,
        pending: Vec<(String, String)>,
    },
    #[error("timed out after {} waiting for DigitalOcean to delete {}; run `pipeline prod down` again", humantime::format_duration(*.timeout), .left.join(", "))]
    DownTimeout {
        timeout: Duration,
        left: Vec<String>,
    },
    #[error("cannot write state file {path}: {source}")]
    State {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl From<ApiError> for Error {
    fn from(e: ApiError) -> Self {
        Error::Api(Box::new(e))
    }
}

fn pending_list(pending: &[(String, String)]) -> String {
    pending
        .iter()
        .map(|(name, why)| format!("{name} ({why})"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The `[digitalocean]` section of pipeline.toml.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Section {
    /// API base URL (default https://api.digitalocean.com).
    pub api_url: Option<String>,
    /// Private SSH key; its `.pub` is registered on the account (default ~/.ssh/id_ed25519, then id_rsa).
    pub ssh_key: Option<PathBuf>,
    /// Time between status polls while waiting (default 5s).
    pub poll_interval: Option<String>,
    /// First retry delay for failed GET/DELETE requests; doubles per retry up to 30s (default 1s).
    pub retry_base_delay: Option<String>,
    /// Tries per GET/DELETE request, the first included (default 4).
    pub retry_attempts: Option<u32>,
}

/// Values given on the command line (or by a calling command); they beat the environment and the config.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub api_url: Option<String>,
    pub ssh_key: Option<PathBuf>,
}

/// Everything the DigitalOcean provider needs, resolved: flag > environment > pipeline.toml > default.
#[derive(Debug, Clone)]
pub struct Settings {
    pub api_url: String,
    /// Explicit private key, if any (else the default locations are searched).
    pub ssh_key: Option<PathBuf>,
    pub poll_interval: Duration,
    pub retry: RetryPolicy,
    pub ssh_probe_port: u16,
    pub state_dir: PathBuf,
}

impl Settings {
    pub fn resolve(global: &Global, options: &Options) -> Result<Self, ConfigError> {
        let section: Section = global.config.section("digitalocean")?;
        let api_url = options
            .api_url
            .clone()
            .or_else(|| non_empty_env(API_URL_VAR))
            .or(section.api_url)
            .unwrap_or_else(|| client::DEFAULT_API_URL.to_string());
        if let Err(e) = reqwest::Url::parse(&api_url) {
            return Err(invalid("the DigitalOcean API URL", &api_url, e));
        }
        let ssh_key = options.ssh_key.clone().or(section.ssh_key).map(expand_home);
        let poll_interval = duration(
            "[digitalocean] poll_interval",
            section.poll_interval.as_deref(),
            DEFAULT_POLL_INTERVAL,
        )?;
        let mut retry = RetryPolicy::default();
        retry.base = duration(
            "[digitalocean] retry_base_delay",
            section.retry_base_delay.as_deref(),
            retry.base,
        )?;
        if let Some(n) = section.retry_attempts {
            if n == 0 {
                return Err(invalid(
                    "[digitalocean] retry_attempts",
                    "0",
                    "must be at least 1",
                ));
            }
            retry.attempts = n;
        }
        let ssh_probe_port = match non_empty_env(SSH_PROBE_PORT_VAR) {
            None => 22,
            Some(p) => p.parse().map_err(|e| invalid(SSH_PROBE_PORT_VAR, &p, e))?,
        };
        Ok(Settings {
            api_url,
            ssh_key,
            poll_interval,
            retry,
            ssh_probe_port,
            state_dir: global.state_dir.clone(),
        })
    }
}

fn invalid(what: &str, value: &str, why: impl std::fmt::Display) -> ConfigError {
    ConfigError::Invalid {
        what: what.to_string(),
        message: format!("`{value}`: {why}"),
    }
}

fn duration(what: &str, value: Option<&str>, default: Duration) -> Result<Duration, ConfigError> {
    match value {
        None => Ok(default),
        Some(v) => match humantime::parse_duration(v) {
            Ok(d) if !d.is_zero() => Ok(d),
            Ok(_) => Err(invalid(what, v, "must be longer than zero")),
            Err(e) => Err(invalid(what, v, format!("{e} (use e.g. `5s`, `500ms`)"))),
        },
    }
}

fn non_empty_env(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.trim().is_empty())
}

fn home() -> Option<PathBuf> {
    non_empty_env("HOME").map(PathBuf::from)
}

fn expand_home(p: PathBuf) -> PathBuf {
    match (p.strip_prefix("~"), home()) {
        (Ok(rest), Some(h)) => h.join(rest),
        _ => p,
    }
}

/// Reads the token from [`TOKEN_VARS`]; `None` when none is set.
fn token_from_env() -> Option<Token> {
    TOKEN_VARS
        .iter()
        .find_map(|v| non_empty_env(v))
        .map(|t| Token::new(t.trim().to_string()))
}

/// What `up` will do, decided from the specs and the droplets already carrying the tag. Pure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpPlan {
    /// Specs whose droplet exists: adopted as they are.
    pub adopt: Vec<(HostSpec, Droplet)>,
    /// Create requests, one per distinct (region, size, image) and per ten names, each with every missing
    /// name sharing it.
    pub create: Vec<DropletCreate>,
    /// Human-readable notes (adopted droplets that differ from their spec, tagged droplets not in the spec).
    pub notes: Vec<String>,
}

/// Plans `up`: adopt what exists under `tags[1]`, create the rest with as few multi-create requests as specs allow.
pub fn plan_up(
    specs: &[HostSpec],
    existing: &[Droplet],
    tags: &[String],
    ssh_key: &str,
) -> Result<UpPlan, Error> {
    let env_tag = tags.last().cloned().unwrap_or_default();
    let mut by_name: BTreeMap<&str, Vec<&Droplet>> = BTreeMap::new();
    for d in existing {
        by_name.entry(d.name.as_str()).or_default().push(d);
    }
    if let Some((name, ds)) = by_name.iter().find(|(_, ds)| ds.len() > 1) {
        return Err(Error::Duplicate {
            name: name.to_string(),
            tag: env_tag,
            count: ds.len(),
            ids: ds
                .iter()
                .map(|d| d.id.to_string())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    let mut plan = UpPlan {
        adopt: Vec::new(),
        create: Vec::new(),
        notes: Vec::new(),
    };
    for spec in specs {
        match by_name.get(spec.name.as_str()) {
            Some(ds) => {
                let d = ds[0];
                let region = &d.region.slug;
                if (!d.size_slug.is_empty() && d.size_slug != spec.size)
                    || (!region.is_empty() && *region != spec.region)
                {
                    plan.notes.push(format!(
                        "droplet {} exists as {} in {} but the spec asks for {} in {}; keeping it (run `pipeline prod down` first to recreate it)",
                        spec.name, d.size_slug, region, spec.size, spec.region
                    ));
                }
                plan.adopt.push((spec.clone(), d.clone()));
            }
            None => {
                let group = plan.create.iter_mut().find(|c| {
                    c.region == spec.region
                        && c.size == spec.size
                        && c.image == spec.image
                        && c.names.len() < MAX_NAMES_PER_CREATE
                });
                match group {
                    Some(c) => c.names.push(spec.name.clone()),
                    None => plan.create.push(DropletCreate {
                        names: vec![spec.name.clone()],
                        region: spec.region.clone(),
                        size: spec.size.clone(),
                        image: spec.image.clone(),
                        ssh_keys: vec![ssh_key.to_string()],
                        tags: tags.to_vec(),
                    }),
                }
            }
        }
    }
    for name in by_name.keys() {
        if !specs.iter().any(|s| s.name == *name) {
            plan.notes.push(format!(
                "droplet {name} carries tag {env_tag} but is not one of the hosts asked for; it is left alone (`pipeline prod down` destroys it)"
            ));
        }
    }
    Ok(plan)
}

/// Checks the create requests against DigitalOcean's catalogue: regions that exist and are available, sizes
/// that exist and are offered in the region, images that exist (`missing_images`). Returns one line per
/// problem; empty when all is well. Pure.
pub fn catalogue_problems(
    creates: &[DropletCreate],
    regions: &[RegionInfo],
    sizes: &[SizeInfo],
    missing_images: &[String],
) -> Vec<String> {
    let some = |slugs: Vec<&str>| {
        let n = slugs.len();
        let mut shown = slugs.into_iter().take(12).collect::<Vec<_>>().join(", ");
        if n > 12 {
            shown.push_str(", …");
        }
        shown
    };
    let available_regions = || {
        some(
            regions
                .iter()
                .filter(|r| r.available)
                .map(|r| r.slug.as_str())
                .collect(),
        )
    };
    let mut problems = Vec::new();
    for c in creates {
        let hosts = c.names.join(", ");
        let region = regions.iter().find(|r| r.slug == c.region);
        let size = sizes.iter().find(|s| s.slug == c.size);
        match region {
            None => problems.push(format!(
                "region `{}` (for {hosts}) does not exist; available: {}",
                c.region,
                available_regions()
            )),
            Some(r) if !r.available => problems.push(format!(
                "region `{}` (for {hosts}) is not taking new droplets; available: {}",
                c.region,
                available_regions()
            )),
            Some(_) => {}
        }
        match (size, region) {
            (None, _) => problems.push(format!(
                "size `{}` (for {hosts}) does not exist; sizes include: {}",
                c.size,
                some(
                    sizes
                        .iter()
                        .filter(|s| s.available)
                        .map(|s| s.slug.as_str())
                        .collect()
                )
            )),
            (Some(s), _) if !s.available => problems.push(format!(
                "size `{}` (for {hosts}) is not available any more",
                c.size
            )),
            (Some(_), Some(r)) if r.available && !r.sizes.contains(&c.size) => {
                problems.push(format!(
                    "size `{}` (for {hosts}) is not offered in region `{}`; there: {}",
                    c.size,
                    c.region,
                    some(r.sizes.iter().map(String::as_str).collect())
                ))
            }
            _ => {}
        }
        if missing_images.contains(&c.image) {
            problems.push(format!(
                "image `{}` (for {hosts}) does not exist; see GET /v2/images?type=distribution for slugs",
                c.image
            ));
        }
    }
    problems.dedup();
    problems
}

fn to_host(d: &Droplet) -> Host {
    Host {
        name: d.name.clone(),
        id: d.id.to_string(),
        status: d.status.clone(),
        ip: d.public_ipv4(),
        size: d.size_slug.clone(),
        region: d.region.slug.clone(),
    }
}

#[derive(Serialize)]
struct StateFile<'a> {
    provider: &'static str,
    environment: &'a str,
    tag: &'a str,
    droplets: BTreeMap<&'a str, u64>,
}

/// One environment's droplets on one DigitalOcean account.
pub struct DigitalOcean {
    client: Client,
    settings: Settings,
    environment: String,
    key: Option<KeyPair>,
    /// Droplets this `up` created (not adopted): their addresses may have served other machines before.
    created: HashSet<String>,
}

impl DigitalOcean {
    /// Checks the prerequisites (token; with `need_key`, the SSH key pair too) and reports every missing one
    /// in one error.
    pub fn new(
        settings: Settings,
        environment: &str,
        need_key: bool,
        ui: &Ui,
    ) -> Result<Self, Error> {
        let mut missing = Vec::new();
        let token = token_from_env();
        if token.is_none() {
            missing.push(format!(
                "no API token: set {} (create one at https://cloud.digitalocean.com/account/api/tokens)",
                TOKEN_VARS.join(", ")
            ));
        }
        let key = if need_key {
            match sshkey::choose(settings.ssh_key.as_deref(), home().as_deref())
                .and_then(|p| sshkey::load(&p))
            {
                Ok(k) => Some(k),
                Err(e) => {
                    missing.push(e.to_string());
                    None
                }
            }
        } else {
            None
        };
        let Some(token) = token else {
            return Err(Error::Prerequisites(missing));
        };
        if !missing.is_empty() {
            return Err(Error::Prerequisites(missing));
        }
        let client = Client::new(&settings.api_url, &token, settings.retry, ui.clone())?;
        Ok(DigitalOcean {
            client,
            settings,
            environment: environment.to_string(),
            key,
            created: HashSet::new(),
        })
    }

    /// `pipeline-<environment>`.
    pub fn env_tag(&self) -> String {
        format!("{COMMON_TAG}-{}", self.environment)
    }

    fn state_path(&self) -> PathBuf {
        self.settings
            .state_dir
            .join(format!("digitalocean-{}.json", self.environment))
    }

    fn save_state(&self, hosts: &[Host]) -> Result<(), Error> {
        let tag = self.env_tag();
        let state = StateFile {
            provider: "digitalocean",
            environment: &self.environment,
            tag: &tag,
            droplets: hosts
                .iter()
                .filter_map(|h| Some((h.name.as_str(), h.id.parse().ok()?)))
                .collect(),
        };
        let path = self.state_path();
        let json = serde_json::to_vec_pretty(&state).expect("state serializes");
        crate::fsutil::ensure_private_dir(&self.settings.state_dir)
            .and_then(|()| crate::fsutil::write_atomic(&path, &json, 0o600))
            .map_err(|source| Error::State { path, source })
    }

    fn remove_state(&self) -> Result<(), Error> {
        let path = self.state_path();
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(Error::State { path, source: e })
            }
            _ => Ok(()),
        }
    }

    fn key(&self) -> &KeyPair {
        self.key
            .as_ref()
            .expect("DigitalOcean::new(.., need_key = true) before up")
    }

    /// Validates region, size and image slugs once, before any create, and reports every problem together.
    async fn check_catalogue(&self, creates: &[DropletCreate]) -> Result<(), Error> {
        let regions = self.client.regions().await?;
        let sizes = self.client.sizes().await?;
        let mut images: Vec<&String> = creates.iter().map(|c| &c.image).collect();
        images.sort();
        images.dedup();
        let mut missing_images = Vec::new();
        for image in images {
            if !self.client.image_exists(image).await? {
                missing_images.push(image.clone());
            }
        }
        let problems = catalogue_problems(creates, &regions, &sizes, &missing_images);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::Catalogue(ConfigError::Invalid {
                what: "the host specs ([prod], [prod.hosts.NAME], --region/--size/--image)"
                    .to_string(),
                message: problems.join("; "),
            }))
        }
    }

    /// Makes sure the account knows our public key (looked up by fingerprint, registered if missing).
    async fn ensure_key(&self, ui: &Ui) -> Result<String, Error> {
        let key = self.key();
        if self.client.ssh_key(&key.fingerprint).await?.is_none() {
            let name = format!(
                "pipeline {}",
                key.public_line.split_whitespace().nth(2).unwrap_or("key")
            );
            ui.info(format!(
                "registering SSH key {} ({}) on DigitalOcean",
                key.private.display(),
                key.fingerprint
            ));
            let created = self
                .client
                .create_ssh_key(&SshKeyCreate {
                    name,
                    public_key: key.public_line.clone(),
                })
                .await;
            match created {
                Ok(_) => {}
                // Registered meanwhile by someone else: the fingerprint works all the same.
                Err(e) if e.status() == Some(422) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(key.fingerprint.clone())
    }

    /// Sends one create request; after an unclear failure, looks the names up by tag and re-sends only for
    /// those still missing. Never re-sends blindly.
    async fn create(&self, body: &DropletCreate, ui: &Ui) -> Result<Vec<Droplet>, Error> {
        let tag = self.env_tag();
        let mut body = body.clone();
        let mut found: Vec<Droplet> = Vec::new();
        for attempt in 1..=CREATE_ATTEMPTS {
            ui.info(format!(
                "creating droplet{} {} ({}, {}, {})",
                if body.names.len() > 1 { "s" } else { "" },
                body.names.join(", "),
                body.size,
                body.image,
                body.region
            ));
            let err = match self.client.create_droplets(&body).await {
                Ok(created) => {
                    found.extend(created);
                    return Ok(found);
                }
                Err(e) if e.is_unclear() => e,
                Err(e) => return Err(e.into()),
            };
            ui.warn(format!(
                "{err}; checking tag {tag} before sending anything again"
            ));
            tokio::time::sleep(self.settings.poll_interval).await;
            let listed = self.client.list_droplets(&tag).await?;
            let (now, still): (Vec<String>, Vec<String>) = body
                .names
                .iter()
                .cloned()
                .partition(|n| listed.iter().any(|d| &d.name == n));
            found.extend(listed.into_iter().filter(|d| now.contains(&d.name)));
            if still.is_empty() {
                return Ok(found);
            }
            if attempt == CREATE_ATTEMPTS {
                return Err(Error::CreateFailed {
                    names: still.join(", "),
                    tag,
                    attempts: CREATE_ATTEMPTS,
                    cause: err.to_string(),
                });
            }
            body.names = still;
        }
        unreachable!("the loop returns on its last attempt")
    }
}

impl Provider for DigitalOcean {
    type Error = Error;

    fn kind(&self) -> ProviderKind {
        ProviderKind::Digitalocean
    }

    fn connection(&self) -> Connection {
        Connection {
            user: "root".to_string(),
            private_key: self.key().private.clone(),
        }
    }

    async fn up(&mut self, specs: &[HostSpec], ui: &Ui) -> Result<Vec<Host>, Error> {
        let tag = self.env_tag();
        let tags = vec![COMMON_TAG.to_string(), tag.clone()];
        let existing = self.client.list_droplets(&tag).await?;
        let fingerprint = &self.key().fingerprint;
        let plan = plan_up(specs, &existing, &tags, fingerprint)?;
        for note in &plan.notes {
            ui.warn(note);
        }
        let mut by_name: HashMap<String, Droplet> = HashMap::new();
        for (spec, d) in &plan.adopt {
            ui.info(format!(
                "adopting droplet {} (id {}, {})",
                spec.name, d.id, d.status
            ));
            by_name.insert(spec.name.clone(), d.clone());
        }
        if !plan.create.is_empty() {
            self.check_catalogue(&plan.create).await?;
            self.ensure_key(ui).await?;
            for body in &plan.create {
                for d in self.create(body, ui).await? {
                    self.created.insert(d.name.clone());
                    by_name.insert(d.name.clone(), d);
                }
            }
        }
        let hosts = specs
            .iter()
            .map(|s| {
                by_name
                    .get(&s.name)
                    .map(to_host)
                    .ok_or_else(|| Error::NotCreated {
                        name: s.name.clone(),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.save_state(&hosts)?;
        Ok(hosts)
    }

    async fn list(&self) -> Result<Vec<Host>, Error> {
        let mut hosts: Vec<Host> = self
            .client
            .list_droplets(&self.env_tag())
            .await?
            .iter()
            .map(to_host)
            .collect();
        hosts.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(hosts)
    }

    async fn wait_ready(
        &self,
        names: &[String],
        wait: WaitFor,
        timeout: Duration,
        ui: &Ui,
    ) -> Result<Vec<Host>, Error> {
        let tag = self.env_tag();
        let deadline = Instant::now() + timeout;
        let mut progress = Progress::new(ui, names);
        let mut ssh_ok: HashSet<String> = HashSet::new();
        loop {
            let droplets = self.client.list_droplets(&tag).await?;
            let mut pending: Vec<(String, String)> = Vec::new();
            let mut probes = tokio::task::JoinSet::new();
            for name in names {
                let state = match droplets.iter().find(|d| &d.name == name) {
                    None => Err("not listed yet".to_string()),
                    Some(d) => match d.readiness() {
                        Readiness::Active(ip) if wait == WaitFor::Ssh && !ssh_ok.contains(name) => {
                            let port = self.settings.ssh_probe_port;
                            let name = name.clone();
                            probes.spawn(async move {
                                let r = ssh_answers(ip, port).await;
                                (name, ip, port, r)
                            });
                            continue;
                        }
                        Readiness::Active(ip) => Ok(ip),
                        other => Err(other.describe()),
                    },
                };
                match state {
                    Ok(ip) => progress.show(name, format!("ready at {ip}")),
                    Err(why) => {
                        progress.show(name, why.clone());
                        pending.push((name.clone(), why));
                    }
                }
            }
            while let Some(joined) = probes.join_next().await {
                let (name, ip, port, result) = joined.expect("SSH probe task does not panic");
                match result {
                    Ok(()) => {
                        progress.show(&name, format!("ready at {ip}, SSH answers"));
                        ssh_ok.insert(name);
                    }
                    Err(why) => {
                        let why = format!("active at {ip}, waiting for SSH on port {port}: {why}");
                        progress.show(&name, why.clone());
                        pending.push((name, why));
                    }
                }
            }
            if pending.is_empty() {
                progress.finish();
                let mut hosts: Vec<Host> = names
                    .iter()
                    .filter_map(|n| droplets.iter().find(|d| &d.name == n).map(to_host))
                    .collect();
                hosts.sort_by(|a, b| a.name.cmp(&b.name));
                self.save_state(&hosts)?;
                let fresh: Vec<Ipv4Addr> = hosts
                    .iter()
                    .filter(|h| self.created.contains(&h.name))
                    .filter_map(|h| h.ip)
                    .collect();
                forget_host_keys(&self.settings.state_dir, &fresh, ui);
                return Ok(hosts);
            }
            let now = Instant::now();
            if now >= deadline {
                progress.abandon();
                pending.sort();
                return Err(Error::WaitTimeout { timeout, pending });
            }
            tokio::time::sleep(self.settings.poll_interval.min(deadline - now)).await;
        }
    }

    async fn down(&mut self, ui: &Ui) -> Result<Vec<String>, Error> {
        let tag = self.env_tag();
        let droplets = self.client.list_droplets(&tag).await?;
        if droplets.is_empty() {
            ui.info(format!("no droplets carry tag {tag}: nothing to destroy"));
            self.remove_state()?;
            return Ok(Vec::new());
        }
        let mut names: Vec<String> = droplets.iter().map(|d| d.name.clone()).collect();
        names.sort();
        ui.info(format!(
            "destroying droplets tagged {tag}: {}",
            names.join(", ")
        ));
        match self.client.delete_droplets_by_tag(&tag).await {
            Err(e) if e.status() == Some(404) => {}
            other => other?,
        }
        let deadline = Instant::now() + DOWN_TIMEOUT;
        loop {
            let left = self.client.list_droplets(&tag).await?;
            if left.is_empty() {
                break;
            }
            if Instant::now() >= deadline {
                return Err(Error::DownTimeout {
                    timeout: DOWN_TIMEOUT,
                    left: left.into_iter().map(|d| d.name).collect(),
                });
            }
            tokio::time::sleep(self.settings.poll_interval).await;
        }
        self.remove_state()?;
        let freed: Vec<Ipv4Addr> = droplets.iter().filter_map(Droplet::public_ipv4).collect();
        forget_host_keys(&self.settings.state_dir, &freed, ui);
        Ok(names)
    }
}

/// One line per host while waiting: a spinner on a terminal, else a plain line whenever a host's state changes.
struct Progress {
    bars: HashMap<String, indicatif::ProgressBar>,
    last: HashMap<String, String>,
    ui: Ui,
    plain: bool,
}

impl Progress {
    fn new(ui: &Ui, names: &[String]) -> Self {
        let multi = ui.multi();
        let plain = multi.is_hidden();
        let bars = names
            .iter()
            .map(|n| (n.clone(), ui.spinner(&multi, n.clone())))
            .collect();
        Progress {
            bars,
            last: HashMap::new(),
            ui: ui.clone(),
            plain,
        }
    }

    fn show(&mut self, name: &str, message: String) {
        if self.last.get(name) == Some(&message) {
            return;
        }
        if self.plain {
            self.ui.info(format!("{name}: {message}"));
        } else if let Some(bar) = self.bars.get(name) {
            bar.set_message(message.clone());
        }
        self.last.insert(name.to_string(), message);
    }

    fn finish(&self) {
        self.bars.values().for_each(indicatif::ProgressBar::finish);
    }

    fn abandon(&self) {
        self.bars.values().for_each(indicatif::ProgressBar::abandon);
    }
}

/// Removes `ips` from the deployment's known_hosts (`<state_dir>/known_hosts`, shared with Ansible runs):
/// DigitalOcean reuses addresses, and a stale key there would make SSH refuse the new machine. Best effort.
fn forget_host_keys(state_dir: &std::path::Path, ips: &[Ipv4Addr], ui: &Ui) {
    let file = state_dir.join("known_hosts");
    if ips.is_empty() || !file.exists() {
        return;
    }
    for ip in ips {
        let forget = crate::process::Cmd::new(
            format!("forget the old SSH host key of {ip} in {}", file.display()),
            "ssh-keygen",
        )
        .arg("-R")
        .arg(ip.to_string())
        .arg("-f")
        .arg(&file)
        .install_hint("; install it with: apt-get install openssh-client");
        if let Err(e) = forget.run() {
            ui.warn(e.to_string());
        }
    }
}

/// Connects to `ip:port` and reads the server's first bytes: ready when they are an SSH banner (`SSH-…`).
async fn ssh_answers(ip: Ipv4Addr, port: u16) -> Result<(), String> {
    let addr = SocketAddr::from((ip, port));
    let mut stream =
        tokio::time::timeout(SSH_CONNECT_TIMEOUT, tokio::net::TcpStream::connect(addr))
            .await
            .map_err(|_| "connection timed out".to_string())?
            .map_err(|e| e.to_string())?;
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(SSH_BANNER_TIMEOUT, stream.read(&mut buf))
        .await
        .map_err(|_| "no SSH banner yet".to_string())?
        .map_err(|e| e.to_string())?;
    if buf[..n].starts_with(b"SSH-") {
        Ok(())
    } else {
        Err("the port answers, but not with an SSH banner".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, size: &str) -> HostSpec {
        HostSpec {
            name: name.into(),
            size: size.into(),
            image: "ubuntu-24-04-x64".into(),
            region: "nyc1".into(),
            memory_limit: None,
        }
    }

    fn droplet(id: u64, name: &str, size: &str) -> Droplet {
        serde_json::from_value(serde_json::json!({
            "id": id, "name": name, "status": "active", "size_slug": size, "region": {"slug": "nyc1"}
        }))
        .unwrap()
    }

    fn tags() -> Vec<String> {
        vec!["pipeline".into(), "pipeline-prod".into()]
    }

    fn prod_specs() -> Vec<HostSpec> {
        vec![
            spec("itrust", "s-1vcpu-2gb"),
            spec("checkbox", "s-1vcpu-1gb"),
            spec("monitor", "s-1vcpu-1gb"),
        ]
    }

    #[test]
    fn missing_hosts_sharing_a_spec_go_into_one_multi_create() {
        let plan = plan_up(&prod_specs(), &[], &tags(), "fp").unwrap();
        assert!(plan.adopt.is_empty());
        assert_eq!(plan.create.len(), 2);
        assert_eq!(plan.create[0].names, vec!["itrust"]);
        assert_eq!(plan.create[0].size, "s-1vcpu-2gb");
        assert_eq!(plan.create[1].names, vec!["checkbox", "monitor"]);
        assert_eq!(plan.create[1].ssh_keys, vec!["fp"]);
        assert_eq!(plan.create[1].tags, tags());
    }

    #[test]
    fn more_than_ten_hosts_of_one_spec_are_split_into_requests_of_ten() {
        let specs: Vec<HostSpec> = (0..12).map(|i| spec(&format!("h{i}"), "s")).collect();
        let plan = plan_up(&specs, &[], &tags(), "fp").unwrap();
        let sizes: Vec<usize> = plan.create.iter().map(|c| c.names.len()).collect();
        assert_eq!(sizes, vec![10, 2]);
    }

    #[test]
    fn tagged_droplets_are_adopted_not_recreated() {
        let existing = [droplet(7, "checkbox", "s-1vcpu-1gb")];
        let plan = plan_up(&prod_specs(), &existing, &tags(), "fp").unwrap();
        assert_eq!(plan.adopt.len(), 1);
        assert_eq!(plan.adopt[0].1.id, 7);
        let names: Vec<_> = plan.create.iter().flat_map(|c| c.names.clone()).collect();
        assert_eq!(names, vec!["itrust", "monitor"]);
        assert!(plan.notes.is_empty(), "{:?}", plan.notes);
    }

    #[test]
    fn duplicate_names_under_the_tag_are_an_error_listing_ids() {
        let existing = [droplet(7, "itrust", "x"), droplet(9, "itrust", "x")];
        let err = plan_up(&prod_specs(), &existing, &tags(), "fp").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("2 droplets named itrust") && msg.contains("7, 9"),
            "{msg}"
        );
    }

    #[test]
    fn adopted_droplet_of_another_size_and_stray_droplets_are_noted() {
        let existing = [
            droplet(7, "itrust", "s-1vcpu-1gb"),
            droplet(8, "old", "s-1vcpu-1gb"),
        ];
        let plan = plan_up(&prod_specs(), &existing, &tags(), "fp").unwrap();
        assert_eq!(plan.notes.len(), 2, "{:?}", plan.notes);
        assert!(plan.notes[0].contains("itrust exists as s-1vcpu-1gb"));
        assert!(plan.notes[1].contains("droplet old carries tag pipeline-prod"));
    }

    fn catalogue() -> (Vec<RegionInfo>, Vec<SizeInfo>) {
        let region = |slug: &str, available: bool, sizes: &[&str]| RegionInfo {
            slug: slug.into(),
            available,
            sizes: sizes.iter().map(|s| s.to_string()).collect(),
        };
        let size = |slug: &str| SizeInfo {
            slug: slug.into(),
            available: true,
        };
        (
            vec![
                region("nyc1", true, &["s-1vcpu-1gb", "s-1vcpu-2gb"]),
                region("sfo3", true, &["s-1vcpu-1gb"]),
                region("nyc2", false, &[]),
            ],
            vec![size("s-1vcpu-1gb"), size("s-1vcpu-2gb")],
        )
    }

    #[test]
    fn catalogue_accepts_the_defaults() {
        let (regions, sizes) = catalogue();
        let plan = plan_up(&prod_specs(), &[], &tags(), "fp").unwrap();
        assert!(catalogue_problems(&plan.create, &regions, &sizes, &[]).is_empty());
    }

    #[test]
    fn catalogue_reports_every_unknown_or_unavailable_slug_together() {
        let (regions, sizes) = catalogue();
        let mut specs = prod_specs();
        specs[0].size = "s-1vcpu-3gb".into();
        specs[1].region = "nyc2".into();
        specs[2].region = "sfo3".into();
        specs[2].size = "s-1vcpu-2gb".into();
        specs[2].image = "ubuntu-99-04-x64".into();
        let plan = plan_up(&specs, &[], &tags(), "fp").unwrap();
        let problems =
            catalogue_problems(&plan.create, &regions, &sizes, &["ubuntu-99-04-x64".into()]);
        assert_eq!(problems.len(), 4, "{problems:#?}");
        assert!(problems[0].starts_with("size `s-1vcpu-3gb` (for itrust) does not exist"));
        assert!(problems[1].starts_with(
            "region `nyc2` (for checkbox) is not taking new droplets; available: nyc1, sfo3"
        ));
        assert!(problems[2].starts_with(
            "size `s-1vcpu-2gb` (for monitor) is not offered in region `sfo3`; there: s-1vcpu-1gb"
        ));
        assert!(problems[3].starts_with("image `ubuntu-99-04-x64` (for monitor) does not exist"));
    }

    #[tokio::test]
    async fn ssh_probe_accepts_a_banner_and_rejects_other_servers() {
        use tokio::io::AsyncWriteExt;
        for (greeting, ok) in [
            (&b"SSH-2.0-OpenSSH_9.6\r\n"[..], true),
            (b"HTTP/1.1 400\r\n", false),
        ] {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let server = tokio::spawn(async move {
                let (mut s, _) = listener.accept().await.unwrap();
                s.write_all(greeting).await.unwrap();
            });
            let r = ssh_answers(Ipv4Addr::LOCALHOST, port).await;
            assert_eq!(r.is_ok(), ok, "{r:?}");
            server.await.unwrap();
        }
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        assert!(ssh_answers(Ipv4Addr::LOCALHOST, port).await.is_err());
    }
}
