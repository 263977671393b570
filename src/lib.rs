//! `pipeline`: provision hosts, deploy iTrust and checkbox.io with Ansible, set up monitoring, and judge canaries.
//!
//! Layering: `cli` (clap types) → `settings` (resolved once: flag > env > config file > default) → `commands`
//! (one module per subcommand, `anyhow` with context) → domain modules (`apps`, `deploy`, `monitoring`,
//! `providers`, `inventory`, `ansible`, `canary`), which own their `thiserror` enums and keep pure logic
//! apart from I/O.

// No write to the terminal may panic: a closed stdout or stderr (`pipeline prod up 2>&1 | head -1`) must
// not abort a run half-way. These shadow std's printing macros in the whole crate and drop write errors.
macro_rules! println {
    () => {{ let _ = ::std::io::Write::write_all(&mut ::std::io::stdout(), b"\n"); }};
    ($($t:tt)*) => {{
        let _ = ::std::io::Write::write_fmt(&mut ::std::io::stdout(), format_args!("{}\n", format_args!($($t)*)));
    }};
}
macro_rules! print {
    ($($t:tt)*) => {{ let _ = ::std::io::Write::write_fmt(&mut ::std::io::stdout(), format_args!($($t)*)); }};
}
macro_rules! eprintln {
    () => {{ let _ = ::std::io::Write::write_all(&mut ::std::io::stderr(), b"\n"); }};
    ($($t:tt)*) => {{
        let _ = ::std::io::Write::write_fmt(&mut ::std::io::stderr(), format_args!("{}\n", format_args!($($t)*)));
    }};
}

pub mod ansible;
pub mod apps;
pub mod canary;
pub mod cli;
pub mod commands;
pub mod demo;
pub mod deploy;
pub mod exit;
pub mod fleet;
pub mod fsutil;
pub mod inventory;
pub mod lock;
pub mod monitoring;
pub mod process;
pub mod providers;
pub mod provision;
pub mod rollout;
pub mod settings;
pub mod signals;
pub mod templates;
pub mod ui;

use std::process::ExitCode;

pub use exit::Outcome;

/// Runs a parsed command line and turns its outcome into the process exit code.
///
/// Errors are printed once, here, with their whole context chain.
pub fn run(cli: cli::Cli) -> ExitCode {
    let code = match commands::dispatch(cli) {
        Ok(outcome) => outcome.exit_code(),
        Err(err) => {
            eprintln!("error: {}", exit::error_message(&err));
            exit::error_code(&err)
        }
    };
    // A run a signal stopped says what it stopped and left, and exits 128+N (130 SIGINT, 143 SIGTERM).
    match signals::received() {
        Some(sig) => {
            for line in signals::report() {
                eprintln!("{line}");
            }
            ExitCode::from(sig.exit_code())
        }
        None => code,
    }
}
