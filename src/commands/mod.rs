//! The command layer: one module per subcommand. Each turns its clap arguments plus [`Global`] settings
//! into domain calls, adds `anyhow` context, and returns an [`Outcome`] for the exit code.

pub mod analyze;
pub mod canary;
pub mod demo;
pub mod deploy;
pub mod load;
pub mod monitor;
pub mod playbook;
pub mod prod;
pub mod roles;
pub mod rollout;

use anyhow::Context;

use crate::cli::{Cli, Command};
use crate::settings::Global;
use crate::Outcome;

/// Resolves the shared settings once, then runs the chosen command on a tokio runtime.
pub fn dispatch(cli: Cli) -> anyhow::Result<Outcome> {
    let global = Global::resolve(&cli.global)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    let mode = match cli.command {
        Command::Deploy(_)
        | Command::MonitorSetup(_)
        | Command::Canary(_)
        | Command::Demo(_)
        | Command::Rollout(_) => crate::signals::Mode::Graceful,
        _ => crate::signals::Mode::Immediate,
    };
    runtime.block_on(async move {
        crate::signals::install(mode)
            .context("failed to install the SIGINT and SIGTERM handlers")?;
        match cli.command {
            Command::Prod(args) => prod::run(args, &global).await,
            Command::Deploy(args) => deploy::run(args, &global).await,
            Command::Roles(args) => roles::run(args, &global).await,
            Command::MonitorSetup(args) => monitor::run(args, &global).await,
            Command::Load(args) => load::run(args, &global).await,
            Command::Analyze(args) => analyze::run(args, &global).await,
            Command::Canary(args) => canary::run(args, &global).await,
            Command::Demo(args) => demo::run(args, &global).await,
            Command::Rollout(args) => rollout::run(args, &global).await,
        }
    })
}
