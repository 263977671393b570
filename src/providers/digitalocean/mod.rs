//! DigitalOcean droplets through the REST API v2: the [`Provider`] implementation. Its parts: [`client`]
//! (HTTP, retries, pagination), [`api`] (typed requests and responses), [`plan`] (what `up` adopts and
//! creates), [`settings`] (`[digitalocean]` in pipeline.toml), [`ssh`] (readiness probe, known_hosts) and
//! [`sshkey`] (the user's key and its fingerprint).
//!
//! The tag `pipeline-<environment>` is the source of truth: every droplet `up` creates carries it (plus
//! `pipeline`), `up` adopts droplets that already carry it instead of creating duplicates, and `down` deletes
//! by it. A small state file (`<state_dir>/digitalocean-<environment>.json`, mode 0600) records ids for people.

pub mod api;
pub mod client;
pub mod guard;
pub mod plan;
mod progress;
mod prune;
pub mod settings;
pub mod ssh;
pub mod sshkey;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use crate::providers::{Connection, Host, HostSpec, Provider, ProviderKind, WaitFor};
use crate::settings::ConfigError;
use crate::ui::Ui;
use api::{Droplet, DropletCreate, Readiness, SshKeyCreate};
use client::{ApiError, Client};
use plan::{catalogue_problems, plan_up};
use progress::Progress;
pub use settings::{Options, Section, Settings, API_URL_VAR, SSH_PROBE_PORT_VAR, TOKEN_VARS};
use ssh::{forget_host_keys, ssh_answers};
use sshkey::KeyPair;

/// The tag on every droplet this tool creates, whatever the environment.
pub const COMMON_TAG: &str = "pipeline";

/// Longest wait for deleted droplets to leave the tag's listing.
const DOWN_TIMEOUT: Duration = Duration::from_secs(600);
/// How many times `up` re-checks and re-sends a create that ended unclearly (5xx, timeout).
const CREATE_ATTEMPTS: u32 = 3;
/// How many tag listings (one poll interval apart) must miss a droplet before its create is sent again.
const LOOKUPS_BEFORE_RESEND: u32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("missing prerequisites: {}", .0.join("; "))]
    Prerequisites(Vec<String>),
    #[error(transparent)]
    Api(Box<ApiError>),
    #[error("{count} droplets named {name} carry tag {tag} (ids {ids}); destroy the extra one in the DigitalOcean console, then run the command again")]
    Duplicate {
        name: String,
        tag: String,
        count: usize,
        ids: String,
    },
    #[error("creating droplets {names} failed ({cause}), and after {attempts} checks they do not carry tag {tag}; look with `pipeline prod status --env {environment}`, then run the command again")]
    CreateFailed {
        names: String,
        tag: String,
        environment: String,
        attempts: u32,
        cause: String,
    },
    #[error("DigitalOcean cannot create these hosts as configured")]
    Catalogue(#[source] ConfigError),
    #[error("DigitalOcean accepted the create request but did not return droplet {name}; run the command again (it adopts what exists)")]
    NotCreated { name: String },
    #[error("timed out after {} waiting for {}; run the command again to keep waiting (it adopts the droplets), or look with `pipeline prod status --env {environment}`", humantime::format_duration(*.timeout), pending_list(.pending))]
    WaitTimeout {
        environment: String,
        timeout: Duration,
        pending: Vec<(String, String)>,
    },
    #[error("timed out after {} waiting for DigitalOcean to delete {}; run `pipeline prod down --env {environment}` again", humantime::format_duration(*.timeout), .left.join(", "))]
    DownTimeout {
        environment: String,
        timeout: Duration,
        left: Vec<String>,
    },
    #[error("cannot take the environment's lock {path}: {source}; check that the state directory is writable")]
    Lock {
        path: PathBuf,
        source: std::io::Error,
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
    /// The environment's lock, held from `up`/`down` until the provider is dropped.
    lock: Option<crate::lock::FileLock>,
    /// Names of the droplets carrying the tag when `up` listed them.
    listed: Vec<String>,
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
        let token = settings::token_from_env();
        if token.is_none() {
            missing.push(format!(
                "no API token: set {} (create one at https://cloud.digitalocean.com/account/api/tokens)",
                TOKEN_VARS.join(", ")
            ));
        }
        let key = if need_key {
            match sshkey::choose(settings.ssh_key.as_deref(), settings::home().as_deref())
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
            lock: None,
            listed: Vec::new(),
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

    /// Takes the environment's lock once (two runs at once would both create the hosts).
    async fn lock_environment(&mut self, ui: &Ui) -> Result<(), Error> {
        if self.lock.is_none() {
            let dir = self.settings.state_dir.clone();
            self.lock = Some(guard::lock(dir, &self.environment, ui).await?);
        }
        Ok(())
    }

    /// One listing for a wait: `None` when the API is briefly unavailable (the caller keeps waiting).
    async fn poll(
        &self,
        tag: &str,
        ui: &Ui,
        outage: &mut bool,
    ) -> Result<Option<Vec<Droplet>>, Error> {
        match self.client.list_droplets(tag).await {
            Ok(d) => {
                if std::mem::take(outage) {
                    ui.info("the DigitalOcean API answers again");
                }
                Ok(Some(d))
            }
            Err(e) if e.is_transient() => {
                if !*outage {
                    ui.warn(format!("{e}; still waiting until the deadline"));
                }
                *outage = true;
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
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
                what: "the hosts' region, size or image (pipeline.toml or flags)".to_string(),
                message: problems.join("; "),
            }))
        }
    }

    /// Makes sure the account knows our public key (looked up by fingerprint, registered if missing).
    async fn ensure_key(&self, ui: &Ui) -> Result<(), Error> {
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
        Ok(())
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
            // A droplet can take a moment to show up under its tag: look a few times before concluding.
            let mut listed = Vec::new();
            for _ in 0..LOOKUPS_BEFORE_RESEND {
                tokio::time::sleep(self.settings.poll_interval).await;
                listed = self.client.list_droplets(&tag).await?;
                if body
                    .names
                    .iter()
                    .all(|n| listed.iter().any(|d| &d.name == n))
                {
                    break;
                }
            }
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
                    environment: self.environment.clone(),
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
        self.lock_environment(ui).await?;
        let tag = self.env_tag();
        let tags = vec![COMMON_TAG.to_string(), tag.clone()];
        let existing = self.client.list_droplets(&tag).await?;
        self.listed = existing.iter().map(|d| d.name.clone()).collect();
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
            if d.status == "off" {
                ui.info(format!("powering on droplet {} (it is off)", spec.name));
                self.client.power_on(d.id).await?;
            }
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
        // The record is of the environment's droplets, not only of those asked for (a rollout's canary).
        let mut recorded: Vec<Host> = existing.iter().map(to_host).collect();
        recorded.retain(|h| !hosts.iter().any(|n| n.name == h.name));
        recorded.extend(hosts.iter().cloned());
        self.save_state(&recorded)?;
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
        let mut outage = false;
        // Duplicates deleted by this wait: still listed for a while after the DELETE, never deleted twice.
        let mut deleted_duplicates = std::collections::BTreeSet::new();
        loop {
            let Some(droplets) = self.poll(&tag, ui, &mut outage).await? else {
                let now = Instant::now();
                if now >= deadline {
                    progress.abandon();
                    return Err(Error::WaitTimeout {
                        environment: self.environment.clone(),
                        timeout,
                        pending: names
                            .iter()
                            .map(|n| (n.clone(), "the DigitalOcean API did not answer".to_string()))
                            .collect(),
                    });
                }
                tokio::time::sleep(self.settings.poll_interval.min(deadline - now)).await;
                continue;
            };
            // Another machine's `up` (the lock is per machine) or a create acted on twice can leave two
            // droplets with one name: keep the lowest id, delete the rest, wait for the one kept.
            let droplets = guard::resolve_duplicates(
                &self.client,
                droplets,
                &tag,
                &mut deleted_duplicates,
                ui,
            )
            .await?;
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
                    Ok(ip) if ssh_ok.contains(name) => {
                        progress.show(name, format!("ready at {ip}, SSH answers"))
                    }
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
                let listed: Vec<Host> = droplets.iter().map(to_host).collect();
                self.save_state(&listed)?;
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
                return Err(Error::WaitTimeout {
                    environment: self.environment.clone(),
                    timeout,
                    pending,
                });
            }
            tokio::time::sleep(self.settings.poll_interval.min(deadline - now)).await;
        }
    }

    async fn unrequested(&self, specs: &[HostSpec]) -> Result<Vec<String>, Error> {
        Ok(crate::fleet::extras(
            specs,
            self.listed.iter().map(String::as_str),
        ))
    }

    async fn remove(&mut self, names: &[String], ui: &Ui) -> Result<Vec<String>, Error> {
        self.lock_environment(ui).await?;
        prune::remove(self, names, ui).await
    }

    async fn down(&mut self, ui: &Ui) -> Result<Vec<String>, Error> {
        self.lock_environment(ui).await?;
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
        let mut outage = false;
        loop {
            let left = self.poll(&tag, ui, &mut outage).await?;
            if left.as_ref().is_some_and(Vec::is_empty) {
                break;
            }
            if Instant::now() >= deadline {
                return Err(Error::DownTimeout {
                    environment: self.environment.clone(),
                    timeout: DOWN_TIMEOUT,
                    left: match left {
                        Some(l) => l.into_iter().map(|d| d.name).collect(),
                        None => names.clone(),
                    },
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
