//! The one harness for starting the real `pipeline` binary ([`pipeline`]: a clean environment, its own HOME
//! and state directory), plus a scratch working directory with an SSH key for the `prod` tests ([`Work`]).

pub mod daemons;
pub mod fake_do;
pub mod rollout;

use std::path::{Path, PathBuf};
use std::process::Command;

/// The token the tests' fake DigitalOcean accepts; a distinctive string so leaks are easy to find.
pub const TOKEN: &str =
    "dop_v1_SENTINEL_0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a0f9e";
/// The test key's public half and its MD5 fingerprint (`ssh-keygen -l -E md5`).
pub const PUBLIC_KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICvSvZAgQLq0X/lahbxG6A5GHHNfGK8n+Zn8vzMc4alP test@pipeline";
pub const FINGERPRINT: &str = "d3:2c:91:84:35:47:53:dc:07:5e:bd:af:07:3b:9c:8e";

/// Poll and retry fast: the fake counts listings, not seconds, so nothing depends on timing.
pub const FAST_CONFIG: &str =
    "[digitalocean]\npoll_interval = \"10ms\"\nretry_base_delay = \"10ms\"\n";

/// Environment variables passed through to the binary: the search path and the locale (Ansible refuses to
/// run without a UTF-8 one). Everything else — PIPELINE_*, DIGITALOCEAN_*, ANSIBLE_*, HOME — is dropped.
const KEPT_ENV: &[&str] = &["PATH", "LANG", "LC_ALL"];

/// The `pipeline` binary ready to run in `dir` with a clean environment: only [`KEPT_ENV`] is inherited,
/// HOME is `dir/home` (created when missing), and no PIPELINE_STATE_DIR/PIPELINE_CONFIG is set, so the
/// state directory is the default `dir/.pipeline` and the config is `dir/pipeline.toml` if the test wrote
/// one. Add arguments, variables (`.env(..)` overrides the kept ones, e.g. a PATH with stubs first) and
/// stdio with the usual [`Command`] methods.
pub fn pipeline(dir: &Path) -> Command {
    let home = dir.join("home");
    std::fs::create_dir_all(&home).expect("create the test's HOME");
    let mut command = Command::new(env!("CARGO_BIN_EXE_pipeline"));
    command.current_dir(dir).env_clear().env("HOME", home);
    for name in KEPT_ENV {
        if let Some(value) = std::env::var_os(name) {
            command.env(name, value);
        }
    }
    command
}

/// [`pipeline`] with `--quiet`: only the report and errors, no live progress.
pub fn quiet_pipeline(dir: &Path) -> Command {
    let mut c = pipeline(dir);
    c.arg("--quiet");
    c
}

/// A finished run's exit code, stdout and stderr, for assertion messages.
pub fn output_text(out: &std::process::Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

pub struct Work {
    pub dir: tempfile::TempDir,
    pub home: PathBuf,
    pub key: PathBuf,
}

/// What one run of the binary did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn assert_ok(&self) -> &Self {
        assert_eq!(
            self.code, 0,
            "stdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

impl Work {
    /// A working directory holding `pipeline.toml` ([`FAST_CONFIG`]) and a HOME with `~/.ssh/id_ed25519`.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        let ssh = home.join(".ssh");
        std::fs::create_dir_all(&ssh).unwrap();
        let key = ssh.join("id_ed25519");
        std::fs::write(&key, "not a real private key; the tests never log in\n").unwrap();
        std::fs::write(ssh.join("id_ed25519.pub"), format!("{PUBLIC_KEY}\n")).unwrap();
        let work = Work { dir, home, key };
        work.write_config("");
        work
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Rewrites pipeline.toml as `extra` followed by [`FAST_CONFIG`] (so `extra` may hold top-level keys).
    pub fn write_config(&self, extra: &str) {
        std::fs::write(
            self.path().join("pipeline.toml"),
            format!("{extra}\n{FAST_CONFIG}"),
        )
        .unwrap();
    }

    pub fn inventory(&self) -> Option<String> {
        std::fs::read_to_string(self.path().join("inventory.ini")).ok()
    }

    /// Runs `pipeline ARGS` here against `api_url`, with the token set and nothing else inherited.
    pub fn run(&self, api_url: &str, args: &[&str]) -> Run {
        self.run_with(
            args,
            &[
                ("DIGITALOCEAN_API_URL", api_url),
                ("DIGITALOCEAN_TOKEN", TOKEN),
            ],
        )
    }

    /// Runs `pipeline ARGS` with exactly `envs` (plus what [`pipeline`] keeps).
    pub fn run_with(&self, args: &[&str], envs: &[(&str, &str)]) -> Run {
        let out = self
            .command()
            .args(args)
            .envs(envs.iter().copied())
            .output()
            .unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// [`pipeline`] in this working directory (its HOME is [`Work::home`], with the SSH key).
    pub fn command(&self) -> Command {
        pipeline(self.path())
    }

    /// Every file below the working directory, with its contents (lossy UTF-8).
    pub fn files(&self) -> Vec<(PathBuf, String)> {
        fn walk(dir: &Path, out: &mut Vec<(PathBuf, String)>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, out);
                } else {
                    let bytes = std::fs::read(&path).unwrap();
                    out.push((path, String::from_utf8_lossy(&bytes).into_owned()));
                }
            }
        }
        let mut out = Vec::new();
        walk(self.path(), &mut out);
        out
    }
}

/// Snapshot settings for what people read (insta): temporary paths, loopback ports, durations, rates,
/// timestamps and the crate version are replaced by placeholders so only wording and layout are pinned.
pub fn snapshot_settings(temp: &Path) -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(false);
    settings.set_snapshot_path("snapshots");
    let temp = temp.display().to_string();
    settings.add_filter(&regex_escape(&temp), "[TMP]");
    settings.add_filter(r"/tmp/\.tmp[A-Za-z0-9]+", "[TMP]");
    settings.add_filter(&regex_escape(env!("CARGO_PKG_VERSION")), "[VERSION]");
    settings.add_filter(r"\b(127\.0\.0\.1|localhost):\d+", "$1:[PORT]");
    settings.add_filter(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z?", "[TIMESTAMP]");
    settings
}

fn regex_escape(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let special = "\\.+*?()|[]{}^$#&-~".contains(c);
            special.then_some('\\').into_iter().chain([c])
        })
        .collect()
}
