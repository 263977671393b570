//! The local provider's error: what is missing on the machine, a bad `[local]` setting, a subnet that
//! collides or is full, a host that will not start or become ready, and the underlying I/O, process and
//! state errors.

use std::path::PathBuf;

use super::state::StateError;
use crate::process::ProcessError;
use crate::settings::ConfigError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the local sandbox provider cannot run on this machine; missing: {}", .0.join("; "))]
    Prerequisites(Vec<String>),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("invalid [local] setting in pipeline.toml: {0}")]
    Setting(String),
    #[error("{0}")]
    InvalidName(String),
    #[error("sandbox subnet {subnet} overlaps the machine's route to {route}{dev}; set a free private range with `subnet = \"…\"` in the [local] section of pipeline.toml")]
    SubnetCollision {
        subnet: String,
        route: String,
        dev: String,
    },
    #[error("sandbox subnet {subnet} has no free address left for host {host}; use a larger `subnet` in the [local] section")]
    SubnetFull { subnet: String, host: String },
    #[error("failed to {what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("environment {environment} has no host {host} (hosts: {known}); create it with `pipeline prod up --provider local`")]
    UnknownHost {
        environment: String,
        host: String,
        known: String,
    },
    #[error("SSH key {path}: {message}")]
    Key { path: PathBuf, message: String },
    #[error("the container of host {host} exited right after it started; its console log {log} ends with:\n{tail}")]
    Exited {
        host: String,
        log: PathBuf,
        tail: String,
    },
    #[error("hosts not ready after {secs} s:\n{details}")]
    NotReady { secs: u64, details: String },
    #[error("{0}")]
    Unexpected(String),
}

impl Error {
    pub(super) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            what: what.into(),
            source,
        }
    }
}
