//! Local sandbox hosts: systemd-nspawn containers on this machine (not built yet: see the
//! "local sandbox provider" issue). The constructor and trait impl below are the contract `prod` codes against.

use std::time::Duration;

use crate::providers::{Connection, Host, HostSpec, Provider, ProviderKind, WaitFor};
use crate::settings::Global;
use crate::ui::Ui;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the local sandbox provider is not built yet")]
    NotBuilt,
}

/// One environment's sandbox hosts.
pub struct Local {
    _environment: String,
}

impl Local {
    /// Reads the `[local]` section of pipeline.toml and checks prerequisites (Linux, root, tools).
    pub fn new(_global: &Global, environment: &str) -> Result<Self, Error> {
        let _ = environment;
        Err(Error::NotBuilt)
    }

    /// Where a host's console log / journal can be read, for `pipeline prod logs HOST`.
    pub fn logs(&self, _host: &str) -> Result<String, Error> {
        Err(Error::NotBuilt)
    }
}

impl Provider for Local {
    type Error = Error;

    fn kind(&self) -> ProviderKind {
        ProviderKind::Local
    }

    fn connection(&self) -> Connection {
        unreachable!("Local::new never succeeds before the provider is built")
    }

    async fn up(&mut self, _specs: &[HostSpec], _ui: &Ui) -> Result<Vec<Host>, Error> {
        Err(Error::NotBuilt)
    }

    async fn list(&self) -> Result<Vec<Host>, Error> {
        Err(Error::NotBuilt)
    }

    async fn wait_ready(
        &self,
        _names: &[String],
        _wait: WaitFor,
        _timeout: Duration,
        _ui: &Ui,
    ) -> Result<Vec<Host>, Error> {
        Err(Error::NotBuilt)
    }

    async fn down(&mut self, _ui: &Ui) -> Result<Vec<String>, Error> {
        Err(Error::NotBuilt)
    }
}
