//! `pipeline roles export DIR`: writes the built-in Ansible roles and entry playbooks (`DIR/playbooks/`)
//! out for editing; point `--roles DIR` (or `roles_dir` in pipeline.toml) at the copy to deploy with it.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::settings::Global;
use crate::Outcome;

#[derive(Debug, Args)]
pub struct RolesArgs {
    #[command(subcommand)]
    pub command: RolesCommand,
}

#[derive(Debug, Subcommand)]
pub enum RolesCommand {
    /// Write the built-in roles into DIR (one subdirectory per role) and the entry playbooks into
    /// DIR/playbooks/, byte for byte.
    Export {
        /// Where to write them (created if missing).
        dir: PathBuf,
        /// Overwrite files that already exist in DIR.
        #[arg(long)]
        force: bool,
    },
    /// List the built-in roles.
    List,
}

// Async like every command's `run`, so `dispatch` treats them alike.
#[allow(clippy::unused_async)]
pub async fn run(args: RolesArgs, global: &Global) -> anyhow::Result<Outcome> {
    match args.command {
        RolesCommand::Export { dir, force } => {
            let written = crate::ansible::roles::export_for_editing(&dir, force)
                .with_context(|| format!("failed to export the roles to {}", dir.display()))?;
            global.ui.info(format!(
                "Wrote {} files of {} roles and the entry playbooks ({}/{}) to {}; deploy with them using `pipeline deploy APP --roles {}` or `roles_dir = \"{}\"` in pipeline.toml",
                written.len(),
                crate::ansible::roles::names().len(),
                dir.display(),
                crate::ansible::playbooks::SUBDIR,
                dir.display(),
                dir.display(),
                dir.display()
            ));
        }
        RolesCommand::List => {
            for name in crate::ansible::roles::names() {
                println!("{name}");
            }
        }
    }
    Ok(Outcome::Success)
}
