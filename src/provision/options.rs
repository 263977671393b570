//! `prod`'s flags (clap) and what they resolve to: which hosts (provider, environment, the DigitalOcean
//! API), and `prod up`'s request against `[prod]` in pipeline.toml ([`super::prod::ProdUpFlags`]). The
//! command layer (`commands/prod.rs`) takes these, makes one domain call and prints.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::prod::ProdUpFlags;
use super::{resolve_provider_kind, HostOverride, UpRequest};
use crate::providers::{digitalocean, ProviderKind, WaitFor};
use crate::settings::{Config, ConfigError};

/// Which hosts: provider and environment.
#[derive(Debug, Clone, Args)]
pub struct TargetArgs {
    /// Where the hosts live [env: PIPELINE_PROVIDER; config: provider; default: digitalocean].
    #[arg(long, value_enum)]
    pub provider: Option<ProviderKind>,
    /// Environment: the hosts' tag on DigitalOcean (`pipeline-<env>`), their names in the sandbox.
    #[arg(
        long = "env",
        env = "PIPELINE_ENV",
        default_value = "prod",
        value_name = "NAME"
    )]
    pub environment: String,
    /// DigitalOcean API base URL [env: DIGITALOCEAN_API_URL; config: [digitalocean] api_url;
    /// default: https://api.digitalocean.com].
    #[arg(long, value_name = "URL")]
    pub api_url: Option<String>,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Inventory file to write [config: [prod] inventory; default: inventory.ini].
    #[arg(short, long, value_name = "PATH")]
    pub inventory: Option<PathBuf>,
    /// Wait until the hosts are `active`, or until SSH answers too [config: [prod] wait; default: ssh].
    #[arg(long, value_enum)]
    pub wait: Option<WaitFor>,
    /// Longest wait for the hosts, e.g. `15m` [config: [prod] timeout; default: 10m].
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub timeout: Option<Duration>,
    /// Private SSH key; its `.pub` is registered on DigitalOcean [config: [digitalocean] ssh_key;
    /// default: ~/.ssh/id_ed25519, then ~/.ssh/id_rsa].
    #[arg(long, value_name = "PATH")]
    pub ssh_key: Option<PathBuf>,
    /// Region slug for every host (overrides pipeline.toml) [default: nyc1].
    #[arg(long, value_name = "SLUG")]
    pub region: Option<String>,
    /// Image slug for every host (overrides pipeline.toml) [default: ubuntu-24-04-x64].
    #[arg(long, value_name = "SLUG")]
    pub image: Option<String>,
    /// Size slug for every host (overrides pipeline.toml) [default: s-1vcpu-2gb for itrust,
    /// s-1vcpu-1gb for the others].
    #[arg(long, value_name = "SLUG")]
    pub size: Option<String>,
    /// Destroy this environment's hosts beyond the configuration (after lowering a `count` or turning
    /// the front door off); without it they are listed and left running.
    #[arg(long)]
    pub prune: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Print JSON (`{provider, environment, hosts: [{name, id, status, ip, size, region}]}`) on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// The host (itrust, checkbox, monitor).
    pub host: String,
}

impl TargetArgs {
    /// The provider (flag > `PIPELINE_PROVIDER` > `provider` > default) and the DigitalOcean options
    /// (`ssh_key` only matters to `up`).
    pub fn resolve(
        &self,
        config: &Config,
        ssh_key: Option<PathBuf>,
    ) -> Result<(ProviderKind, digitalocean::Options), ConfigError> {
        let kind = resolve_provider_kind(self.provider, config)?;
        let options = digitalocean::Options {
            api_url: self.api_url.clone(),
            ssh_key,
        };
        Ok((kind, options))
    }
}

impl UpArgs {
    /// The request `prod up` brings up, the flags resolved against `[prod]` (see [`ProdUpFlags`]).
    pub fn request(self, config: &Config) -> Result<UpRequest, ConfigError> {
        let (kind, options) = self.target.resolve(config, self.ssh_key)?;
        let flags = ProdUpFlags {
            inventory: self.inventory,
            wait: self.wait,
            timeout: self.timeout,
            hosts: HostOverride {
                region: self.region,
                image: self.image,
                size: self.size,
                memory_limit: None,
                count: None,
            },
            prune: self.prune,
        };
        flags.request(config, kind, &self.target.environment, options)
    }
}
