//! `pipeline`: provision hosts, deploy iTrust and checkbox.io with Ansible, set up monitoring, and judge canaries.
//!
//! Layering: `cli` (clap types) → `settings` (resolved once: flag > env > config file > default) → `commands`
//! (one module per subcommand, `anyhow` with context) → domain modules (`providers`, `inventory`, `ansible`,
//! `canary`), which own their `thiserror` enums and keep pure logic apart from I/O.

pub mod ansible;
pub mod canary;
pub mod cli;
pub mod commands;
pub mod exit;
pub mod fleet;
pub mod fsutil;
pub mod inventory;
pub mod process;
pub mod providers;
pub mod provision;
pub mod rolling;
pub mod settings;
pub mod templates;
pub mod ui;

use std::process::ExitCode;

pub use exit::Outcome;

/// Runs a parsed command line and turns its outcome into the process exit code.
///
/// Errors are printed once, here, with their whole context chain.
pub fn run(cli: cli::Cli) -> ExitCode {
    match commands::dispatch(cli) {
        Ok(outcome) => outcome.exit_code(),
        Err(err) => {
            eprintln!("error: {}", exit::error_message(&err));
            exit::error_code(&err)
        }
    }
}
