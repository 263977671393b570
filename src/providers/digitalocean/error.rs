//! The DigitalOcean provider's error: missing prerequisites, API failures, droplets that were not
//! created or did not become ready in time, and a `down` that did not finish.

use std::path::PathBuf;
use std::time::Duration;

use super::client::ApiError;
use crate::settings::ConfigError;

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
