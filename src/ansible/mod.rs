//! Runs Ansible for `pipeline`: renders a run, drives `ansible-playbook`, collects its events and
//! produces one [`DeployReport`]. Every command that configures hosts (deploy, monitor-setup, canary)
//! goes through [`PlaybookRun`].
//!
//! # How a run works
//! 1. [`PlaybookRun::prepare`] writes a fresh private (0700) run directory (a temporary one under the
//!    state directory, or `--emit DIR`, which must not exist yet and is kept):
//!    - `<name>.yml`: the entry playbook, a static file of `playbooks/` ([`playbooks`]) copied verbatim,
//!      or the operator's edited copy in `DIR/playbooks/` when the roles come from `--roles DIR`. No value
//!      of the run is ever written into it: names and host patterns are `{{ pipeline_… }}` variables. Only
//!      `ansible.cfg` goes through Tera; roles and their `.j2` templates are copied byte for byte.
//!    - `vars.json` (0600): every variable the playbook and the roles get, passed as `-e @vars.json`, so
//!      secrets never appear on a command line. Every string in it is marked unsafe
//!      (`{"__ansible_unsafe": …}`, [`unsafe_vars`]): a branch name or `-e` value holding `{{ }}` is text
//!      on the host, never a template run on the controller.
//!    - `ansible.cfg` (from `templates/ansible.cfg.tera`, pinned with `ANSIBLE_CONFIG`): pipelining, forks,
//!      SSH timeouts, `roles_path`, and a per-deployment `known_hosts` in the state directory with
//!      `StrictHostKeyChecking=accept-new`.
//!    - `callback_plugins/pipeline_events.py`: the stdout callback shipped with the tool. It prints one
//!      JSON object per event (task start, per-host result with duration and failure message, retry,
//!      stats); [`events`] parses them. Nothing human-readable is ever scraped.
//!    - `roles/`: the roles embedded in the binary ([`roles`]), unless [`RolesSource::Dir`] points at an
//!      operator's copy (`--roles DIR`, `roles_dir` in pipeline.toml, `pipeline roles export DIR`).
//!    - `command.sh`: the exact environment and command line, to re-run it by hand.
//! 2. [`PlaybookRun::run`] finds `ansible-playbook` on PATH (a clear install hint if missing), runs it
//!    through [`crate::process::Cmd::stream_unchecked`], shows per-task progress, and writes the raw
//!    events to `events.jsonl` in the run directory.
//! 3. The verdict comes from Ansible's end-of-run stats, not the exit status alone (2 and 4 are
//!    overloaded): a host failed if it has failures, unreachable if it has unreachable results. A
//!    non-zero exit without stats (syntax error, missing role, bad callback) is [`AnsibleError::Aborted`].
//!
//! # Using it from another command
//! ```no_run
//! # fn demo(ui: &pipeline::ui::Ui) -> Result<(), pipeline::ansible::AnsibleError> {
//! use pipeline::ansible::PlaybookRun;
//! let mut run = PlaybookRun::new(
//!     "monitor-setup",                      // names the run, its playbook file and the report
//!     "monitor.yml",                        // a static entry playbook of playbooks/
//!     "inventory.ini",
//!     ".pipeline",                          // state dir: known_hosts, temporary run dirs
//! );
//! run.extra_vars.insert("pipeline_monitor_hosts".into(), "monitor".into()); // what the playbook reads
//! run.extra_vars.insert("prometheus_port".into(), 9090.into()); // typed role variables
//! let report = run.run(ui)?;                // blocking: use spawn_blocking from async code
//! if !report.success {
//!     eprintln!("{}", report.render_text());
//! }
//! # Ok(()) }
//! ```

pub mod events;
pub mod playbooks;
pub mod report;
pub mod roles;
mod run;
pub mod summary;
pub mod unsafe_vars;

use std::path::PathBuf;

pub use events::{HostStats, Status};
pub use playbooks::builtin as builtin_playbook;
pub use report::{DeployReport, Failure, HostReport, HostVerdict, TaskReport};
pub use run::{find_ansible_playbook, PlaybookRun, PreparedRun, RolesSource, INSTALL_HINT};
pub use summary::DeploySummary;

#[derive(Debug, thiserror::Error)]
pub enum AnsibleError {
    #[error("ansible-playbook is not installed or not on PATH{hint}")]
    NotInstalled { hint: &'static str },
    #[error(
        "inventory {path} does not exist; create it with `pipeline prod up` (or pass -i PATH)"
    )]
    InventoryMissing { path: PathBuf },
    #[error("roles directory {path} does not exist; write one with `pipeline roles export {path}` or drop --roles/roles_dir to use the built-in roles")]
    RolesDirMissing { path: PathBuf },
    #[error("{path} already exists; pass --force to overwrite the exported roles, or choose another directory")]
    ExportExists { path: PathBuf },
    #[error("cannot use {path}: ssh cannot take a known_hosts path with whitespace; use a --state-dir without spaces")]
    PathWithSpace { path: PathBuf },
    #[error("{detail}; variables reach Ansible only as data, so this cannot be passed safely")]
    UnsafeVariable { detail: String },
    #[error("cannot use {path}: it holds a template marker ({{{{, {{% or {{#) that Ansible could evaluate; use a path without them")]
    TemplateMarkerInPath { path: PathBuf },
    #[error("no built-in entry playbook {name}")]
    UnknownPlaybook { name: String },
    #[error(transparent)]
    Untrusted(#[from] crate::fsutil::TrustError),
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Template(#[from] crate::templates::TemplateError),
    #[error(transparent)]
    Process(#[from] crate::process::ProcessError),
    #[error("playbook {playbook} does not pass `ansible-playbook --syntax-check`:\n{detail}")]
    SyntaxCheck { playbook: PathBuf, detail: String },
    #[error("{name}: ansible-playbook stopped before finishing (exit status {rc}: {meaning}) with inventory {inventory}; no host report was produced. Ansible said:\n{detail}")]
    Aborted {
        name: String,
        inventory: PathBuf,
        rc: i32,
        meaning: &'static str,
        detail: String,
    },
    #[error("{name}: ansible-playbook was stopped by {signal} part-way; the hosts in {inventory} may be half-configured: run the same command again to finish (the roles are idempotent)")]
    Stopped {
        name: String,
        inventory: PathBuf,
        signal: crate::signals::Signal,
    },
}

impl AnsibleError {
    /// Whether the error is the user's to fix by changing what they passed (exit 2).
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            AnsibleError::UnsafeVariable { .. } | AnsibleError::TemplateMarkerInPath { .. }
        )
    }
}
