//! Settings of the DigitalOcean provider, resolved once: flag (or calling command) > environment variable >
//! `[digitalocean]` in pipeline.toml > default. The API token comes only from the environment.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::client::{self, RetryPolicy, Token};
use crate::providers::keys;
use crate::settings::{ConfigError, Global};

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
const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(5);

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
        if let Err(e) = client::normalize_base(&api_url) {
            return Err(invalid(
                "the DigitalOcean API URL (--api-url, DIGITALOCEAN_API_URL or [digitalocean] api_url)",
                &api_url,
                e,
            ));
        }
        let ssh_key = options
            .ssh_key
            .clone()
            .or(section.ssh_key)
            .as_deref()
            .map(expand_home);
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

fn expand_home(p: &Path) -> PathBuf {
    keys::expand_home(p, keys::home().as_deref())
}

/// Reads the token from [`TOKEN_VARS`]; `None` when none is set.
pub(super) fn token_from_env() -> Option<Token> {
    TOKEN_VARS
        .iter()
        .find_map(|v| non_empty_env(v))
        .map(|t| Token::new(t.trim().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units_and_reject_zero_and_nonsense() {
        let d = Duration::from_secs(5);
        assert_eq!(duration("x", None, d).unwrap(), d);
        assert_eq!(
            duration("x", Some("250ms"), d).unwrap(),
            Duration::from_millis(250)
        );
        assert!(duration("x", Some("0s"), d)
            .unwrap_err()
            .to_string()
            .contains("longer than zero"));
        let err = duration("[digitalocean] poll_interval", Some("soon"), d).unwrap_err();
        assert!(
            err.to_string().contains("[digitalocean] poll_interval"),
            "{err}"
        );
    }

    #[test]
    fn section_rejects_unknown_keys() {
        let cfg = crate::settings::Config::parse(
            "[digitalocean]\ntoken = \"x\"\n",
            "pipeline.toml".into(),
        )
        .unwrap();
        let err = cfg.section::<Section>("digitalocean").unwrap_err();
        assert!(err.to_string().contains("token"), "{err}");
    }
}
