//! Providers make named hosts and tell how to reach them: the [`Provider`] trait, implemented by
//! [`digitalocean`] (droplets through the REST API) and [`local`] (systemd-nspawn containers on this machine).
//!
//! A provider instance is bound to one *environment* (`prod` for itrust/checkbox/monitor, `canary` for
//! blue/green/proxy): `up`, `list` and `down` only ever see that environment's hosts.

pub mod digitalocean;
pub mod keys;
pub mod local;
mod open;

pub use open::{open, Error as OpenError, Opened, Purpose};

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ui::Ui;

/// Which provider to use; `--provider`, `PIPELINE_PROVIDER` or `provider = "…"` in pipeline.toml.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// Droplets on DigitalOcean (needs an API token).
    Digitalocean,
    /// systemd-nspawn containers on this Linux machine (needs root).
    Local,
}

impl ProviderKind {
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "digitalocean" | "do" => Some(ProviderKind::Digitalocean),
            "local" => Some(ProviderKind::Local),
            _ => None,
        }
    }
}

/// What to create: one named host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostSpec {
    /// Host name; also the inventory group (`itrust`, `checkbox`, `monitor`, `blue`, …).
    pub name: String,
    /// Provider size slug (DigitalOcean, e.g. `s-1vcpu-2gb`); informational for local hosts.
    pub size: String,
    /// Image slug (DigitalOcean) or distribution release (local).
    pub image: String,
    /// Region slug (DigitalOcean); `local` for local hosts.
    pub region: String,
    /// Optional memory limit (local provider), e.g. `2G`.
    pub memory_limit: Option<String>,
}

/// A host as the provider sees it now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Host {
    pub name: String,
    /// Provider id (droplet id, container machine name).
    pub id: String,
    /// Provider status (`new`, `active`, `running`, `stopped`, …).
    pub status: String,
    /// The address Ansible and users reach it at (public IPv4 on DigitalOcean), once known.
    pub ip: Option<Ipv4Addr>,
    pub size: String,
    pub region: String,
}

/// How Ansible logs in to this provider's hosts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection {
    pub user: String,
    pub private_key: PathBuf,
}

/// How far `up` waits: until the provider calls the host active, or until SSH answers too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum WaitFor {
    Active,
    Ssh,
}

/// Creates, lists, waits for and destroys one environment's hosts.
#[allow(async_fn_in_trait)]
pub trait Provider {
    type Error: std::error::Error + Send + Sync + 'static;

    /// Short name for messages (`digitalocean`, `local`).
    fn kind(&self) -> ProviderKind;

    /// The user and key Ansible connects with.
    fn connection(&self) -> Connection;

    /// Creates the hosts of `specs` that do not exist yet and adopts (or starts) those that do.
    /// Returns without waiting for them to become usable.
    async fn up(&mut self, specs: &[HostSpec], ui: &Ui) -> Result<Vec<Host>, Self::Error>;

    /// This environment's hosts, as they are now.
    async fn list(&self) -> Result<Vec<Host>, Self::Error>;

    /// Waits until every host in `names` is usable (`wait`), at most `timeout`; the error names the hosts
    /// still pending.
    async fn wait_ready(
        &self,
        names: &[String],
        wait: WaitFor,
        timeout: Duration,
        ui: &Ui,
    ) -> Result<Vec<Host>, Self::Error>;

    /// The hosts of this environment that exist but that no spec of the last `up` asked for (a lowered
    /// `count`), sorted. Costs no API request: it reuses what `up` saw.
    async fn unrequested(&self, specs: &[HostSpec]) -> Result<Vec<String>, Self::Error>;

    /// Destroys the hosts `names` of this environment (those beyond a lowered `count`: `prod up --prune`),
    /// and only those; names not there are skipped. Returns the names destroyed.
    async fn remove(&mut self, names: &[String], ui: &Ui) -> Result<Vec<String>, Self::Error>;

    /// Destroys everything `up` created for this environment, and only that. Safe to run twice.
    /// Returns the names of the hosts destroyed.
    async fn down(&mut self, ui: &Ui) -> Result<Vec<String>, Self::Error>;
}
