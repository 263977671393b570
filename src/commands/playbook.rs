//! What `deploy` and `monitor-setup` share around one Ansible run: the common flags (`-e`, `--report`,
//! `--emit`, `--check`, `--roles`), loading the inventory (a missing or malformed one is a usage error),
//! running the playbook off the async runtime, and printing and writing the report.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;

use crate::ansible::{DeployReport, PlaybookRun, RolesSource};
use crate::deploy::parse_extra_var;
use crate::exit::UsageError;
use crate::fsutil;
use crate::inventory::{Inventory, InventoryError};
use crate::settings::Global;
use crate::ui::Ui;

/// Flags of every command that runs a playbook.
#[derive(Debug, Clone, Default, Args)]
pub struct RunOptions {
    /// A role variable, KEY=VALUE (repeatable). VALUE is typed as JSON when it parses (true, 3, "x",
    /// [1,2]) and is a string otherwise; @FILE reads a JSON object of variables.
    #[arg(short = 'e', long = "extra-var", value_name = "KEY=VALUE")]
    pub extra_vars: Vec<String>,
    /// Also write the run report (per host, role and task) as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Write the rendered run (playbook, vars.json, ansible.cfg, roles, command.sh, events.jsonl) into DIR
    /// and keep it.
    #[arg(long, value_name = "DIR")]
    pub emit: Option<PathBuf>,
    /// Ansible check mode: report what would change without changing anything.
    #[arg(long)]
    pub check: bool,
    /// Use the roles in DIR (e.g. an edited `pipeline roles export DIR`) instead of the built-in ones
    /// [config: roles_dir].
    #[arg(long, value_name = "DIR")]
    pub roles: Option<PathBuf>,
}

impl RunOptions {
    /// Applies the flags to `run`: `-e` variables last (they win over what the command computed), check
    /// mode, the emit directory and the roles (flag > `roles_dir` in pipeline.toml > built-in).
    pub fn apply(&self, run: &mut PlaybookRun, global: &Global) -> anyhow::Result<()> {
        for arg in &self.extra_vars {
            run.extra_vars
                .extend(parse_extra_var(arg).map_err(UsageError)?);
        }
        run.check = self.check;
        run.emit_dir.clone_from(&self.emit);
        let roles_dir = match &self.roles {
            Some(d) => Some(d.clone()),
            None => global.config.string("roles_dir")?.map(PathBuf::from),
        };
        if let Some(dir) = roles_dir {
            // The user's directory: a missing one is theirs to fix (exit 2), found before any run starts.
            if !dir.is_dir() {
                return Err(UsageError(
                    crate::ansible::AnsibleError::RolesDirMissing { path: dir }.to_string(),
                )
                .into());
            }
            run.roles = RolesSource::Dir(dir);
        }
        Ok(())
    }

    /// Writes the report as JSON if `--report` asked for it, then prints it. When a host failed, also
    /// says on stderr which hosts and where the details are. Returns whether every host succeeded.
    pub fn finish(&self, report: &DeployReport, what: &str) -> anyhow::Result<bool> {
        if let Some(path) = &self.report {
            let json = serde_json::to_vec_pretty(report).expect("the report serializes");
            fsutil::write_atomic(path, &json, 0o644).with_context(|| {
                format!("failed to write the {what} report to {}", path.display())
            })?;
        }
        print!("{}", report.render_text());
        if !report.success {
            let bad: Vec<String> = report
                .bad_hosts()
                .iter()
                .map(|h| format!("{} ({})", h.name, h.verdict.as_str()))
                .collect();
            eprintln!(
                "error: {what} failed{}; see the failures above{}",
                if bad.is_empty() {
                    String::new()
                } else {
                    format!(" on {}", bad.join(", "))
                },
                self.report
                    .as_ref()
                    .map(|p| format!(" and the report in {}", p.display()))
                    .unwrap_or_default()
            );
        }
        Ok(report.success)
    }
}

/// Loads the inventory; a missing or malformed file is the user's to fix (exit 2).
pub fn load_inventory(path: &Path) -> anyhow::Result<Inventory> {
    Inventory::load(path).map_err(|e| match e {
        InventoryError::Missing { .. } | InventoryError::Invalid { .. } => {
            anyhow::Error::from(UsageError(e.to_string()))
        }
        other => anyhow::Error::from(other),
    })
}

/// Runs the playbook on a blocking thread (ansible-playbook is a child process streamed line by line).
/// `context` completes the error when Ansible could not run at all, e.g. "failed to deploy iTrust".
pub async fn execute(run: PlaybookRun, ui: &Ui, context: String) -> anyhow::Result<DeployReport> {
    let ui = ui.clone();
    tokio::task::spawn_blocking(move || run.run(&ui))
        .await
        .context("the Ansible run panicked")?
        .context(context)
}
