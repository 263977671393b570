//! The one place a provider is chosen: [`open`] turns a [`ProviderKind`] and the resolved settings into an
//! [`Opened`] provider, which every command (`prod`, `canary`, `demo`, `rollout`) drives through
//! [`Provider`], mostly by way of [`crate::provision`].

use std::time::Duration;

use super::digitalocean::{self, DigitalOcean};
use super::local::{self, Local};
use super::{Connection, Host, HostSpec, Provider, ProviderKind, WaitFor};
use crate::settings::{ConfigError, Global};
use crate::ui::Ui;

/// What the caller is about to do; creating hosts needs more prerequisites (DigitalOcean: the SSH key
/// pair it registers) than looking at or destroying them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// `up`: create or adopt hosts.
    Create,
    /// `list`, `down`, `logs`: only existing hosts.
    Inspect,
}

/// A provider of either kind, bound to one environment.
pub enum Opened {
    DigitalOcean(DigitalOcean),
    Local(Local),
}

/// Why a provider could not be opened or failed; each provider's own error, unchanged.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    DigitalOcean(#[from] digitalocean::Error),
    #[error(transparent)]
    Local(#[from] local::Error),
}

/// Opens the provider `kind` for `environment`: DigitalOcean with its settings resolved from `options`
/// (flags), the environment and pipeline.toml; the local sandbox from `[local]`. Checks the provider's
/// prerequisites and reports every missing one in one error.
pub fn open(
    kind: ProviderKind,
    global: &Global,
    options: &digitalocean::Options,
    environment: &str,
    purpose: Purpose,
    ui: &Ui,
) -> Result<Opened, Error> {
    Ok(match kind {
        ProviderKind::Digitalocean => {
            let settings = digitalocean::Settings::resolve(global, options)?;
            Opened::DigitalOcean(DigitalOcean::new(
                settings,
                environment,
                purpose == Purpose::Create,
                ui,
            )?)
        }
        ProviderKind::Local => Opened::Local(Local::new(global, environment)?),
    })
}

impl Provider for Opened {
    type Error = Error;

    fn kind(&self) -> ProviderKind {
        match self {
            Opened::DigitalOcean(p) => p.kind(),
            Opened::Local(p) => p.kind(),
        }
    }

    fn connection(&self) -> Connection {
        match self {
            Opened::DigitalOcean(p) => p.connection(),
            Opened::Local(p) => p.connection(),
        }
    }

    async fn up(&mut self, specs: &[HostSpec], ui: &Ui) -> Result<Vec<Host>, Error> {
        Ok(match self {
            Opened::DigitalOcean(p) => p.up(specs, ui).await?,
            Opened::Local(p) => p.up(specs, ui).await?,
        })
    }

    async fn list(&self) -> Result<Vec<Host>, Error> {
        Ok(match self {
            Opened::DigitalOcean(p) => p.list().await?,
            Opened::Local(p) => p.list().await?,
        })
    }

    async fn wait_ready(
        &self,
        names: &[String],
        wait: WaitFor,
        timeout: Duration,
        ui: &Ui,
    ) -> Result<Vec<Host>, Error> {
        Ok(match self {
            Opened::DigitalOcean(p) => p.wait_ready(names, wait, timeout, ui).await?,
            Opened::Local(p) => p.wait_ready(names, wait, timeout, ui).await?,
        })
    }

    async fn unrequested(&self, specs: &[HostSpec]) -> Result<Vec<String>, Error> {
        Ok(match self {
            Opened::DigitalOcean(p) => p.unrequested(specs).await?,
            Opened::Local(p) => p.unrequested(specs).await?,
        })
    }

    async fn remove(&mut self, names: &[String], ui: &Ui) -> Result<Vec<String>, Error> {
        Ok(match self {
            Opened::DigitalOcean(p) => p.remove(names, ui).await?,
            Opened::Local(p) => p.remove(names, ui).await?,
        })
    }

    async fn down(&mut self, ui: &Ui) -> Result<Vec<String>, Error> {
        Ok(match self {
            Opened::DigitalOcean(p) => p.down(ui).await?,
            Opened::Local(p) => p.down(ui).await?,
        })
    }
}
