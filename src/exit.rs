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
    if err
        .chain()
        .any(<dyn std::error::Error + 'static>::is::<UsageError>)
        || err
            .chain()
            .any(<dyn std::error::Error + 'static>::is::<crate::settings::ConfigError>)
        || err.chain().any(|e| {
            e.downcast_ref::<crate::ansible::AnsibleError>()
                .is_some_and(super::ansible::AnsibleError::is_usage)
        })
        || err.chain().any(|e| {
            e.downcast_ref::<crate::rollout::RolloutError>()
                .is_some_and(crate::rollout::RolloutError::is_usage)
        })
    {
        ExitCode::from(2)
    } else {
        ExitCode::from(1)
    }
}

/// The error and its causes on one line, `outer: cause: root`, each cause said once: a cause whose text
/// the message already holds (an error that embeds its `source` in its own text) is not repeated.
pub fn error_message(err: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if text.is_empty() || out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot resolve `h`: {source} (check the host)")]
    struct Embeds {
        source: std::io::Error,
    }

    #[test]
    fn a_cause_embedded_in_its_error_is_printed_once() {
        let io = std::io::Error::other("Name or service not known");
        let err = anyhow::Error::from(Embeds { source: io }).context("load failed");
        assert_eq!(
            error_message(&err),
            "load failed: cannot resolve `h`: Name or service not known (check the host)"
        );
        let plain = anyhow::Error::from(std::io::Error::other("denied")).context("cannot read x");
        assert_eq!(error_message(&plain), "cannot read x: denied");
    }
}
