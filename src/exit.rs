//! Exit codes, shared by every command: 0 success/PASS, 1 runtime error, 2 usage error,
//! 3 MARGINAL, 4 FAIL, 5 INCONCLUSIVE.

use std::process::ExitCode;

/// How a command that did not error ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything asked for was done (and for a canary: the verdict is PASS).
    Success,
    /// Canary verdict MARGINAL.
    Marginal,
    /// Canary verdict FAIL, or a deploy in which a host failed or was unreachable.
    Fail,
    /// Canary verdict INCONCLUSIVE: too little data to judge.
    Inconclusive,
}

impl Outcome {
    pub fn code(self) -> u8 {
        match self {
            Outcome::Success => 0,
            Outcome::Marginal => 3,
            Outcome::Fail => 4,
            Outcome::Inconclusive => 5,
        }
    }

    pub fn exit_code(self) -> ExitCode {
        ExitCode::from(self.code())
    }
}

/// Marks an error as the user's mistake (bad flag value, bad config): exit code 2 instead of 1.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Exit code for an error: 2 when it is a usage or configuration mistake, 1 otherwise.
pub fn error_code(err: &anyhow::Error) -> ExitCode {
    if err.chain().any(|e| e.is::<UsageError>())
        || err.chain().any(|e| e.is::<crate::settings::ConfigError>())
        || err.chain().any(|e| {
            e.downcast_ref::<crate::ansible::AnsibleError>()
                .is_some_and(|a| a.is_usage())
        })
    {
        ExitCode::from(2)
    } else {
        ExitCode::from(1)
    }
}
