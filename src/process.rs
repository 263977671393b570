//! The one wrapper through which `pipeline` runs child processes (ansible-playbook, ip, nft, systemd-nspawn,
//! git, ssh-keygen, …). Every run is named by its intent, stderr is captured, and an error tells apart
//! "could not start", "exited with status N" and "killed by a signal", quoting the end of stderr.
//!
//! Environment values are never shown in errors or in [`Cmd::display`]: secrets travel through the
//! environment or files, never through argv.
//!
//! Every child runs in a process group of its own, registered with [`crate::signals`] while it runs, so
//! SIGINT/SIGTERM to `pipeline` stop it (and everything it forked) before `pipeline` cleans up.
//!
//! Built on `std::process`, not `duct` (which the design card names), for three reasons found by reading
//! duct's API against what this module must do: (1) duct kills only the immediate child (its
//! `ReaderHandle` kills the child on drop, and the maintainer declined process groups in
//! oconnor663/duct.rs#41), while `pipeline` must stop the child's whole group (ansible-playbook forks ssh,
//! systemd-nspawn forks the container), so the group setup and the kill stay ours either way (through
//! `before_spawn`); (2) duct reports a non-zero exit as an `io::Error` with a text message, so every run
//! would go through `unchecked()` and this module would still build [`ProcessError`]'s kinds and stderr
//! tails itself; (3) what is left (a line-by-line stdout reader next to a stderr collector and a stdin
//! writer) is ~50 lines here and would add duct, shared_child and os_pipe to the build. No pipelines or
//! redirections, duct's strength, are needed.

use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

/// How many trailing bytes of stderr an error quotes.
const STDERR_TAIL: usize = 4000;

/// Every environment variable `pipeline` reads a secret from: the DigitalOcean token (all the names it is
/// looked up under), the checkbox.io mail settings (the password, and the user and SMTP URL, which can
/// carry credentials too) and the Prometheus credentials of `analyze --prometheus` and `canary`. No child
/// process needs them (the mail settings reach Ansible through the 0600 vars.json), so none inherits them:
/// ansible-playbook, ssh-keygen or git cannot leak what they never saw.
/// Any new secret read from the environment belongs here.
pub const SECRET_ENV: &[&str] = &[
    "NCSU_DOTOKEN",
    "DIGITALOCEAN_TOKEN",
    "DIGITALOCEAN_ACCESS_TOKEN",
    "PIPELINE_MAIL_USER",
    "PIPELINE_MAIL_PASSWORD",
    "PIPELINE_MAIL_SMTP",
    "PIPELINE_PROMETHEUS_USER",
    "PIPELINE_PROMETHEUS_PASSWORD",
    "PIPELINE_PROMETHEUS_TOKEN",
    "PIPELINE_ALERT_SMTP_PASSWORD",
    "PIPELINE_ALERT_SMTP_USERNAME",
];

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("failed to {action}: `{program}` is not installed or not on PATH{hint}")]
    NotFound {
        action: String,
        program: String,
        hint: String,
    },
    #[error("failed to {action}: could not start `{program}`: {source}")]
    Spawn {
        action: String,
        program: String,
        source: std::io::Error,
    },
    #[error("failed to {action}: `{command}` exited with status {status}{}", tail(.stderr))]
    Failed {
        action: String,
        command: String,
        status: i32,
        stderr: String,
        stdout: String,
    },
    #[error("failed to {action}: `{command}` was killed by signal {signal}{}", tail(.stderr))]
    Signal {
        action: String,
        command: String,
        signal: i32,
        stderr: String,
    },
}

fn tail(stderr: &str) -> String {
    let s = stderr.trim();
    if s.is_empty() {
        return String::new();
    }
    let start = s.len().saturating_sub(STDERR_TAIL);
    let start = (start..s.len())
        .find(|i| s.is_char_boundary(*i))
        .unwrap_or(0);
    format!("\n--- stderr ---\n{}", &s[start..])
}

/// What a finished process produced.
#[derive(Debug, Clone)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn success(&self) -> bool {
        self.status.success()
    }
}

/// A command to run, built as data so it can be printed (in errors and the signal report) and compared (tests).
#[derive(Debug, Clone)]
pub struct Cmd {
    action: String,
    program: OsString,
    args: Vec<OsString>,
    envs: Vec<(OsString, OsString)>,
    cwd: Option<PathBuf>,
    stdin: Option<Vec<u8>>,
    hint: String,
}

impl Cmd {
    /// `action` completes the sentence "failed to …", e.g. `"create network namespace pl-itrust"`.
    pub fn new(action: impl Into<String>, program: impl AsRef<OsStr>) -> Self {
        Cmd {
            action: action.into(),
            program: program.as_ref().to_owned(),
            args: Vec::new(),
            envs: Vec::new(),
            cwd: None,
            stdin: None,
            hint: String::new(),
        }
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.envs
            .push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    pub fn dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.cwd = Some(dir.as_ref().to_owned());
        self
    }

    pub fn stdin_bytes(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(bytes.into());
        self
    }

    /// Text appended to the "not installed" error, e.g. `"; install it with: apt-get install debootstrap"`.
    pub fn install_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = hint.into();
        self
    }

    pub fn program(&self) -> &OsStr {
        &self.program
    }

    pub fn arg_list(&self) -> &[OsString] {
        &self.args
    }

    /// The argv as one shell-like line (environment not included).
    pub fn display(&self) -> String {
        std::iter::once(&self.program)
            .chain(self.args.iter())
            .map(|a| {
                let s = a.to_string_lossy();
                if s.is_empty() || s.contains(|c: char| c.is_whitespace() || c == '\'' || c == '"')
                {
                    format!("'{}'", s.replace('\'', r"'\''"))
                } else {
                    s.into_owned()
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn command(&self) -> Command {
        let mut c = Command::new(&self.program);
        c.args(&self.args);
        // A process group of its own: a Ctrl-C on the terminal reaches only `pipeline`, which stops the
        // child's whole group itself (see `crate::signals`) and then cleans up.
        c.process_group(0);
        for key in SECRET_ENV {
            c.env_remove(key);
        }
        for (k, v) in &self.envs {
            c.env(k, v);
        }
        if let Some(d) = &self.cwd {
            c.current_dir(d);
        }
        c.stdin(if self.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        c.stdout(Stdio::piped());
        c.stderr(Stdio::piped());
        c
    }

    fn spawn_error(&self, e: std::io::Error) -> ProcessError {
        if e.kind() == std::io::ErrorKind::NotFound {
            ProcessError::NotFound {
                action: self.action.clone(),
                program: self.program.to_string_lossy().into_owned(),
                hint: self.hint.clone(),
            }
        } else {
            ProcessError::Spawn {
                action: self.action.clone(),
                program: self.program.to_string_lossy().into_owned(),
                source: e,
            }
        }
    }

    /// Runs to completion and fails unless the exit status is 0.
    pub fn run(&self) -> Result<Output, ProcessError> {
        let out = self.run_unchecked()?;
        self.check(out)
    }

    /// Runs to completion; fails only if the process could not be started.
    pub fn run_unchecked(&self) -> Result<Output, ProcessError> {
        self.stream_unchecked(|_| {})
    }

    /// Runs to completion, calling `on_line` for each line of stdout as it arrives (stdout is also
    /// collected in the result); fails unless the exit status is 0.
    pub fn stream(&self, on_line: impl FnMut(&str)) -> Result<Output, ProcessError> {
        let out = self.stream_unchecked(on_line)?;
        self.check(out)
    }

    /// Like [`Cmd::stream`], but a non-zero exit is returned, not an error.
    pub fn stream_unchecked(&self, mut on_line: impl FnMut(&str)) -> Result<Output, ProcessError> {
        let mut child = self.command().spawn().map_err(|e| self.spawn_error(e))?;
        // Dropped after the wait below: a signal meanwhile stops the child's group.
        let _tracked = crate::signals::track_child(child.id(), self.display());
        if let Some(bytes) = &self.stdin {
            let mut stdin = child.stdin.take().expect("stdin piped");
            let bytes = bytes.clone();
            std::thread::spawn(move || {
                let _ = stdin.write_all(&bytes);
            });
        }
        let mut stderr_pipe = child.stderr.take().expect("stderr piped");
        let stderr_thread = std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = stderr_pipe.read_to_end(&mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        });
        let mut stdout = String::new();
        let mut reader = BufReader::new(child.stdout.take().expect("stdout piped"));
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let text = String::from_utf8_lossy(&line);
                    on_line(text.trim_end_matches(['\n', '\r']));
                    stdout.push_str(&text);
                }
            }
        }
        let status = child.wait().map_err(|e| self.spawn_error(e))?;
        let stderr = stderr_thread.join().unwrap_or_default();
        Ok(Output {
            status,
            stdout,
            stderr,
        })
    }

    fn check(&self, out: Output) -> Result<Output, ProcessError> {
        if out.status.success() {
            return Ok(out);
        }
        if let Some(signal) = out.status.signal() {
            return Err(ProcessError::Signal {
                action: self.action.clone(),
                command: self.display(),
                signal,
                stderr: out.stderr,
            });
        }
        Err(ProcessError::Failed {
            action: self.action.clone(),
            command: self.display(),
            status: out.status.code().unwrap_or(-1),
            stderr: out.stderr,
            stdout: out.stdout,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_program_is_reported_as_not_installed_with_hint() {
        let err = Cmd::new("frobnicate the widget", "definitely-not-a-program-xyz")
            .install_hint("; install it with: apt-get install xyz")
            .run()
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("failed to frobnicate the widget"), "{msg}");
        assert!(msg.contains("not installed"), "{msg}");
        assert!(msg.contains("apt-get install xyz"), "{msg}");
    }

    #[test]
    fn non_zero_exit_quotes_stderr_and_status() {
        let err = Cmd::new("check things", "sh")
            .args(["-c", "echo out; echo 'the reason' >&2; exit 3"])
            .run()
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("exited with status 3"), "{msg}");
        assert!(msg.contains("the reason"), "{msg}");
    }

    #[test]
    fn signal_is_told_apart_from_exit() {
        let err = Cmd::new("wait", "sh")
            .args(["-c", "kill -9 $$"])
            .run()
            .unwrap_err();
        assert!(
            matches!(err, ProcessError::Signal { signal: 9, .. }),
            "{err}"
        );
    }

    #[test]
    fn stream_delivers_lines_in_order_and_env_and_stdin_reach_the_child() {
        let mut seen = Vec::new();
        let out = Cmd::new("echo", "sh")
            .args(["-c", "echo \"$GREETING\"; cat"])
            .env("GREETING", "hello")
            .stdin_bytes("from stdin\n")
            .stream(|l| seen.push(l.to_string()))
            .unwrap();
        assert_eq!(seen, vec!["hello", "from stdin"]);
        assert_eq!(out.stdout, "hello\nfrom stdin\n");
    }

    #[test]
    fn children_never_inherit_the_digitalocean_token() {
        std::env::set_var("DIGITALOCEAN_ACCESS_TOKEN", "dop_v1_secret");
        let out = Cmd::new("print the environment", "env").run().unwrap();
        std::env::remove_var("DIGITALOCEAN_ACCESS_TOKEN");
        assert!(!out.stdout.contains("dop_v1_secret"), "{}", out.stdout);
    }

    #[test]
    fn every_secret_the_tool_reads_from_the_environment_is_on_the_strip_list() {
        for var in crate::providers::digitalocean::TOKEN_VARS {
            assert!(SECRET_ENV.contains(&var), "{var}");
        }
        assert!(SECRET_ENV.contains(&"PIPELINE_MAIL_PASSWORD"));
    }

    #[test]
    fn children_never_inherit_the_prometheus_credentials() {
        std::env::set_var("PIPELINE_PROMETHEUS_PASSWORD", "prom_pw_secret");
        std::env::set_var("PIPELINE_PROMETHEUS_TOKEN", "prom_token_secret");
        let out = Cmd::new("print the environment", "env").run().unwrap();
        std::env::remove_var("PIPELINE_PROMETHEUS_PASSWORD");
        std::env::remove_var("PIPELINE_PROMETHEUS_TOKEN");
        assert!(!out.stdout.contains("prom_pw_secret"), "{}", out.stdout);
        assert!(!out.stdout.contains("prom_token_secret"), "{}", out.stdout);
    }

    #[test]
    fn display_quotes_arguments_with_spaces_and_hides_environment() {
        let cmd = Cmd::new("x", "ssh")
            .args(["-o", "A B"])
            .env("TOKEN", "s3cret");
        assert_eq!(cmd.display(), "ssh -o 'A B'");
    }
}
