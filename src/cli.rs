//! The command line (clap derive). Each subcommand's arguments live in its command module; this file only
//! lists the commands and the options every command shares. `///` comments here are the `--help` text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::commands;

/// Provision hosts, deploy iTrust and checkbox.io with Ansible, monitor them, and judge canary releases with statistics.
#[derive(Debug, Parser)]
#[command(
    name = "pipeline",
    version,
    about,
    propagate_version = true,
    max_term_width = 110
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command accepts.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Config file (default: ./pipeline.toml when it exists).
    #[arg(long, global = true, env = "PIPELINE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Directory for state, generated secrets and known_hosts (default: .pipeline).
    #[arg(long, global = true, env = "PIPELINE_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// No progress output (errors and results are still printed); for CI.
    #[arg(long, global = true)]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Provision, inspect or destroy the production hosts (itrust, checkbox, monitor).
    Prod(commands::prod::ProdArgs),
    /// Deploy an app (iTrust or checkbox.io) to the hosts of an inventory with Ansible.
    Deploy(commands::deploy::DeployArgs),
    /// Work with the built-in Ansible roles (export them for editing).
    Roles(commands::roles::RolesArgs),
    /// Set up Prometheus, node_exporter and the live dashboard on the monitor host.
    MonitorSetup(commands::monitor::MonitorArgs),
    /// Generate HTTP load against a URL and summarize latency, throughput and errors.
    Load(commands::load::LoadArgs),
    /// Judge recorded baseline and canary samples offline and write a report.
    Analyze(commands::analyze::AnalyzeArgs),
    /// Run a canary: baseline and canary branches side by side behind a split proxy, load, judge, report.
    Canary(commands::canary::CanaryArgs),
    /// Progressive delivery to production: a canary host takes a growing share of the app's requests at
    /// the front door, judged at every step on real traffic, then promoted or rolled back on its own.
    Rollout(commands::rollout::RolloutArgs),
    /// Run the whole job on the local sandbox: hosts, both apps, and a canary of the bundled example.
    Demo(commands::demo::DemoArgs),
}
