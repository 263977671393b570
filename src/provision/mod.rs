//! Bringing an environment's hosts up or down through a [`Provider`](crate::providers::Provider), shared by `prod`, `canary` and `demo`:
//! resolve the provider, create or adopt the hosts, wait until they are usable, write the inventory
//! atomically. Also builds host specs from defaults, pipeline.toml and flags.
//!
//! # Using it from another command
//! ```no_run
//! # async fn demo(global: &pipeline::settings::Global) -> anyhow::Result<()> {
//! use std::collections::BTreeMap;
//! use pipeline::provision::{self, HostDefault, HostOverride, UpRequest};
//!
//! const HOSTS: [HostDefault; 2] = [
//!     HostDefault { name: "blue", size: "s-1vcpu-1gb" },
//!     HostDefault { name: "green", size: "s-1vcpu-1gb" },
//! ];
//! let kind = provision::resolve_provider_kind(None, &global.config)?;
//! let none = HostOverride::default();
//! let specs = provision::build_specs("canary", &HOSTS, &none, &BTreeMap::new(), &none)?;
//! let req = UpRequest::new(kind, "canary", specs, "canary.ini", "canary"); // the directory must exist
//! let done = provision::up(global, &req).await?; // hosts ready, inventory written
//! println!("{} hosts in {}", done.hosts.len(), done.inventory.display());
//! provision::down(global, kind, "canary").await?;
//! # Ok(()) }
//! ```
//!
//! Layout: `specs.rs` builds host specs (defaults, pipeline.toml, flags, fleets), `up.rs` brings them up
//! and writes the inventory (with `--prune` and `only_these`), `down.rs` destroys or lists an environment,
//! [`prod`] is the `prod` command's request and reports; this file resolves and opens the provider and
//! checks environment names.

mod down;
pub mod options;
pub mod prod;
mod specs;
mod up;

pub use down::{down, down_with_options, list, remove};
pub use prod::ProdUpFlags;
pub use specs::{build_specs, prod_host_specs, HostDefault, HostOverride, ProdSection, PROD_HOSTS};
pub use up::{check_writable, up, Provisioned, UpRequest};

use std::time::Duration;

use crate::providers::{self, digitalocean, Opened, ProviderKind, Purpose};
use crate::settings::{Config, ConfigError, Global};

/// Environment variable naming the provider (below `--provider`, above `provider = …` in pipeline.toml).
pub const PROVIDER_VAR: &str = "PIPELINE_PROVIDER";
pub const DEFAULT_REGION: &str = "nyc1";
pub const DEFAULT_IMAGE: &str = "ubuntu-24-04-x64";
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// Environment names become tags, container and interface names: 1–20 lowercase letters, digits and `-`,
/// starting with a letter.
pub fn check_environment(name: &str) -> Result<(), ConfigError> {
    let ok = (1..=20).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(ConfigError::Invalid {
            what: "the environment name (--env / PIPELINE_ENV)".to_string(),
            message: format!(
                "`{name}` must be 1-20 lowercase letters, digits and `-`, starting with a letter (e.g. `prod`, `dev-alice`)"
            ),
        })
    }
}

/// The provider to use: `flag` (clap: `--provider`) > `PIPELINE_PROVIDER` > `provider` in pipeline.toml >
/// DigitalOcean.
pub fn resolve_provider_kind(
    flag: Option<ProviderKind>,
    config: &Config,
) -> Result<ProviderKind, ConfigError> {
    if let Some(kind) = flag {
        return Ok(kind);
    }
    let parse = |what: &str, value: String| {
        ProviderKind::parse(&value).ok_or_else(|| ConfigError::Invalid {
            what: what.to_string(),
            message: format!("`{value}` is not a provider (use `digitalocean` or `local`)"),
        })
    };
    if let Some(v) = std::env::var(PROVIDER_VAR)
        .ok()
        .filter(|v| !v.trim().is_empty())
    {
        return parse(PROVIDER_VAR, v);
    }
    match config.string("provider")? {
        Some(v) => parse("`provider` in pipeline.toml", v),
        None => Ok(ProviderKind::Digitalocean),
    }
}

/// The name a provider kind has on the command line and in files.
pub fn kind_name(kind: ProviderKind) -> &'static str {
    match kind {
        ProviderKind::Digitalocean => "digitalocean",
        ProviderKind::Local => "local",
    }
}

/// [`providers::open`] for a command: a settings error is reported as it is (it names the setting), a
/// provider's refusal (missing token, key or tool) under `context`.
pub fn open(
    kind: ProviderKind,
    global: &Global,
    options: &digitalocean::Options,
    environment: &str,
    purpose: Purpose,
    context: impl FnOnce() -> String,
) -> anyhow::Result<Opened> {
    match providers::open(kind, global, options, environment, purpose, &global.ui) {
        Ok(p) => Ok(p),
        Err(providers::OpenError::Config(e)) => Err(e.into()),
        Err(e) => Err(anyhow::Error::new(e).context(context())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_names_are_tag_and_interface_safe() {
        for ok in ["prod", "canary", "dev-alice", "e2"] {
            check_environment(ok).unwrap();
        }
        for bad in [
            "",
            "Prod",
            "dev_alice",
            "-x",
            "x-",
            "9lives",
            "a-very-long-environment-name",
        ] {
            assert!(check_environment(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn provider_comes_from_flag_then_config_then_default() {
        let cfg = Config::parse("provider = \"local\"\n", "p.toml".into()).unwrap();
        assert_eq!(
            resolve_provider_kind(Some(ProviderKind::Digitalocean), &cfg).unwrap(),
            ProviderKind::Digitalocean
        );
        // The environment variable is exercised by the CLI tests (it is process-wide).
        if std::env::var_os(PROVIDER_VAR).is_none() {
            assert_eq!(
                resolve_provider_kind(None, &cfg).unwrap(),
                ProviderKind::Local
            );
            assert_eq!(
                resolve_provider_kind(None, &Config::default()).unwrap(),
                ProviderKind::Digitalocean
            );
            let bad = Config::parse("provider = \"aws\"\n", "p.toml".into()).unwrap();
            assert!(resolve_provider_kind(None, &bad)
                .unwrap_err()
                .to_string()
                .contains("`aws` is not a provider"));
        }
    }
}
