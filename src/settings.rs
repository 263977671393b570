//! Settings resolved once, before any work: flag > environment > config file (`pipeline.toml`) > default.
//!
//! clap already merges flags with their environment variables; this module adds the config file. The file is a
//! TOML table of sections (`[prod]`, `[digitalocean]`, `[local]`, `[deploy]`, `[canary]`, `[judge]`, …); each
//! command deserializes only its own section into a struct with `deny_unknown_fields`, so a typo is an error
//! that names the file and the key, never a silently ignored setting.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use crate::cli::GlobalArgs;
use crate::ui::Ui;

/// Top-level keys and sections `pipeline.toml` may hold; anything else is reported as unknown.
pub const KNOWN_KEYS: &[&str] = &[
    "provider",
    "state_dir",
    "roles_dir",
    "prod",
    "digitalocean",
    "local",
    "deploy",
    "canary",
    "judge",
    "load",
    "monitor",
    "rollout",
];

/// The config file's default name, looked up in the current directory.
pub const DEFAULT_CONFIG: &str = "pipeline.toml";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config file {path}: unknown key `{key}` (known keys: {known})")]
    UnknownKey {
        path: PathBuf,
        key: String,
        known: String,
    },
    #[error("config file {path}: invalid [{section}] section: {message}")]
    Section {
        path: PathBuf,
        section: String,
        message: String,
    },
    #[error("invalid value for {what}: {message}")]
    Invalid { what: String, message: String },
}

/// The parsed config file (empty when there is none).
#[derive(Debug, Clone, Default)]
pub struct Config {
    path: Option<PathBuf>,
    table: toml::Table,
}

impl Config {
    /// Loads `explicit` (from `--config` / `PIPELINE_CONFIG`, which must exist) or else `./pipeline.toml` if present.
    pub fn load(explicit: Option<&Path>) -> Result<Self, ConfigError> {
        let path = match explicit {
            Some(p) => p.to_owned(),
            None => {
                let p = PathBuf::from(DEFAULT_CONFIG);
                if !p.exists() {
                    return Ok(Config::default());
                }
                p
            }
        };
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses config text; `path` is only used in messages.
    pub fn parse(text: &str, path: PathBuf) -> Result<Self, ConfigError> {
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| ConfigError::Parse {
                path: path.clone(),
                message: e.message().to_string(),
            })?;
        if let Some(key) = table.keys().find(|k| !KNOWN_KEYS.contains(&k.as_str())) {
            return Err(ConfigError::UnknownKey {
                path,
                key: key.clone(),
                known: KNOWN_KEYS.join(", "),
            });
        }
        Ok(Config {
            path: Some(path),
            table,
        })
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// A top-level string value such as `provider = "local"`.
    pub fn string(&self, key: &str) -> Result<Option<String>, ConfigError> {
        match self.table.get(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(ConfigError::Section {
                path: self.path.clone().unwrap_or_default(),
                section: key.to_string(),
                message: format!("expected a string, found {}", other.type_str()),
            }),
        }
    }

    /// Deserializes section `key` (its `Default` when absent). Use `#[serde(deny_unknown_fields)]` on `T`.
    pub fn section<T: DeserializeOwned + Default>(&self, key: &str) -> Result<T, ConfigError> {
        match self.table.get(key) {
            None => Ok(T::default()),
            Some(value) => {
                value
                    .clone()
                    .try_into()
                    .map_err(|e: toml::de::Error| ConfigError::Section {
                        path: self.path.clone().unwrap_or_default(),
                        section: key.to_string(),
                        message: e.message().to_string(),
                    })
            }
        }
    }
}

/// Settings every command shares.
#[derive(Debug, Clone)]
pub struct Global {
    pub config: Config,
    /// Where state files, generated secrets and per-deployment known_hosts live (default `.pipeline`).
    pub state_dir: PathBuf,
    pub ui: Ui,
}

impl Global {
    pub fn resolve(args: &GlobalArgs) -> Result<Self, ConfigError> {
        let config = Config::load(args.config.as_deref())?;
        let state_dir = match &args.state_dir {
            Some(p) => p.clone(),
            None => config
                .string("state_dir")?
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(".pipeline")),
        };
        // Absolute, so that child processes running in another directory (`git -C …`, ansible-playbook in
        // its run directory) resolve it the same way.
        let state_dir = std::path::absolute(&state_dir).map_err(|e| ConfigError::Invalid {
            what: "--state-dir".into(),
            message: format!("cannot resolve {}: {e}", state_dir.display()),
        })?;
        Ok(Global {
            config,
            state_dir,
            ui: Ui::new(args.quiet),
        })
    }
}

/// Picks the first value present: flag-or-env (already merged by clap), then config, then default.
pub fn pick<T>(flag_or_env: Option<T>, config: Option<T>, default: impl FnOnce() -> T) -> T {
    flag_or_env.or(config).unwrap_or_else(default)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, serde::Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Demo {
        region: Option<String>,
    }

    #[test]
    fn unknown_top_level_key_is_an_error_naming_it() {
        let err = Config::parse("provder = \"local\"\n", "pipeline.toml".into()).unwrap_err();
        assert!(err.to_string().contains("unknown key `provder`"), "{err}");
    }

    #[test]
    fn section_typo_is_an_error_naming_section_and_key() {
        let cfg = Config::parse("[prod]\nregon = \"nyc3\"\n", "pipeline.toml".into()).unwrap();
        let err = cfg.section::<Demo>("prod").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("[prod]") && msg.contains("regon"), "{msg}");
    }

    #[test]
    fn missing_section_gives_default_and_present_one_parses() {
        let cfg = Config::parse("[prod]\nregion = \"nyc3\"\n", "p.toml".into()).unwrap();
        assert_eq!(
            cfg.section::<Demo>("prod").unwrap().region.as_deref(),
            Some("nyc3")
        );
        assert_eq!(cfg.section::<Demo>("canary").unwrap(), Demo::default());
    }

    #[test]
    fn flag_beats_config_beats_default() {
        assert_eq!(pick(Some(1), Some(2), || 3), 1);
        assert_eq!(pick(None, Some(2), || 3), 2);
        assert_eq!(pick(None::<i32>, None, || 3), 3);
    }
}
