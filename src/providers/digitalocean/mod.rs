//! DigitalOcean droplets through the REST API v2: the [`Provider`] implementation. Its parts: [`client`]
//! (HTTP, retries, pagination), [`api`] (typed requests and responses), [`plan`] (what `up` adopts and
//! creates), [`settings`] (`[digitalocean]` in pipeline.toml), [`ssh`] (readiness probe, known_hosts) and
//! [`sshkey`] (the user's key and its fingerprint).
//!
//! The tag `pipeline-<environment>` is the source of truth: every droplet `up` creates carries it (plus
//! `pipeline`), `up` adopts droplets that already carry it instead of creating duplicates, and `down` deletes
//! by it. A small state file (`<state_dir>/digitalocean-<environment>.json`, mode 0600) records ids for people.//!
//! The lifecycle is one file per step: [`up`](self::up) (adopt, check the catalogue, register the key,
//! create), `wait` (until active and answering SSH), `prune` (named droplets) and `down` (the whole tag);
//! [`Error`] in `error`.

pub mod api;
pub mod client;
mod down;
mod error;
pub mod guard;
pub mod plan;
mod progress;
mod prune;
pub mod settings;
pub mod ssh;
pub mod sshkey;
mod up;
mod wait;

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::providers::{keys, Connection, Host, HostSpec, Provider, ProviderKind, WaitFor};
use crate::ui::Ui;
use api::Droplet;
use client::Client;
pub use settings::{Options, Section, Settings, API_URL_VAR, SSH_PROBE_PORT_VAR, TOKEN_VARS};
use sshkey::KeyPair;

/// The tag on every droplet this tool creates, whatever the environment.
pub const COMMON_TAG: &str = "pipeline";

/// Longest wait for deleted droplets to leave the tag's listing.
const DOWN_TIMEOUT: Duration = Duration::from_secs(600);

pub use error::Error;

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
            match sshkey::choose(settings.ssh_key.as_deref(), keys::home().as_deref())
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
        self.up_droplets(specs, ui).await
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
        self.wait_droplets(names, wait, timeout, ui).await
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
        self.down_droplets(ui).await
    }
}
