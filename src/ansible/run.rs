//! [`PlaybookRun`]: writes one run (static entry playbook, vars file with every string marked unsafe,
//! ansible.cfg, roles, callback plugin) into a fresh private directory, runs `ansible-playbook` on it through [`crate::process::Cmd`], shows live per-task
//! progress and folds the callback's events into a [`DeployReport`].

use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use indicatif::ProgressBar;

use super::events::{parse_line, Event, Line, Status};
use super::report::{fmt_secs, rc_meaning, DeployReport, ReportBuilder, RunFacts};
use super::{playbooks, roles, unsafe_vars, AnsibleError};
use crate::fsutil;
use crate::process::Cmd;
use crate::ui::Ui;

/// The callback plugin `pipeline` ships; written into every run directory.
const CALLBACK_PLUGIN: &str = include_str!("pipeline_events.py");
const CALLBACK_NAME: &str = "pipeline_events";
/// How to get ansible-playbook when it is missing.
pub const INSTALL_HINT: &str = "; install it with `sudo ./scripts/setup.sh` (Ansible 12.3.0 from PyPI in /opt/pipeline/venv) or `python3 -m pip install ansible==12.3.0`";
/// How many lines of stderr/other output an error quotes.
const TAIL_LINES: usize = 25;

/// Where the roles come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RolesSource {
    /// The roles built into the binary, copied into the run directory.
    Embedded,
    /// An operator's directory of roles (`--roles DIR`, `roles_dir` in pipeline.toml), used in place.
    Dir(PathBuf),
}

/// One `ansible-playbook` run. Fill the fields (or use [`PlaybookRun::new`] and adjust), then call
/// [`PlaybookRun::run`] (or [`PlaybookRun::syntax_check`]).
#[derive(Debug, Clone)]
pub struct PlaybookRun {
    /// Names the run in progress, messages and the report, and the playbook file (`<name>.yml`).
    pub name: String,
    /// The entry playbook, a file name of `playbooks/` (e.g. `deploy-itrust.yml`), copied verbatim:
    /// every value it uses comes from `extra_vars`. With [`RolesSource::Dir`], `DIR/playbooks/<playbook>`
    /// is used when it exists (see [`playbooks::resolve`]).
    pub playbook: String,
    /// The INI inventory (`pipeline prod up` writes one).
    pub inventory: PathBuf,
    /// Further inventory sources, after `inventory` (`-i` each, in order). Ansible merges them into one
    /// inventory: a host of one source can be a member of another's group, and the `group_vars/` and
    /// `host_vars/` next to every source apply to every host of the merged inventory.
    pub more_inventories: Vec<PathBuf>,
    /// Variables for the playbook and the roles, written to a 0600 `vars.json` and passed as
    /// `-e @vars.json` (never on argv). Every string is marked unsafe there, so Ansible takes it as text,
    /// never as a template; a key holding a template marker is refused.
    pub extra_vars: serde_json::Map<String, serde_json::Value>,
    pub roles: RolesSource,
    /// Ansible check mode (`--check --diff`): report what would change, change nothing.
    pub check: bool,
    /// Keep the rendered run in this directory (created fresh, 0700; an existing one is refused) instead of
    /// a temporary one.
    pub emit_dir: Option<PathBuf>,
    /// The deployment's state directory: holds the per-deployment `known_hosts` and temporary run directories.
    pub state_dir: PathBuf,
    /// Ansible `--limit` pattern.
    pub limit: Option<String>,
    /// Hosts Ansible works on in parallel.
    pub forks: u32,
    /// SSH connection timeout in seconds.
    pub ssh_timeout_secs: u32,
}

/// A rendered run directory, ready for `ansible-playbook`.
#[derive(Debug)]
pub struct PreparedRun {
    dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
    /// Named in the report of a run a signal stops; dropped after `_temp` has removed the directory.
    _leftover: Option<crate::signals::LeftoverGuard>,
    pub playbook: PathBuf,
    pub vars_file: PathBuf,
    pub config: PathBuf,
    pub roles_path: PathBuf,
    pub callback_dir: PathBuf,
    pub inventory: PathBuf,
    more_inventories: Vec<PathBuf>,
    check: bool,
    limit: Option<String>,
}

impl PlaybookRun {
    /// A run of `playbook` against `inventory` with the embedded roles and default settings.
    pub fn new(
        name: impl Into<String>,
        playbook: impl Into<String>,
        inventory: impl Into<PathBuf>,
        state_dir: impl Into<PathBuf>,
    ) -> Self {
        PlaybookRun {
            name: name.into(),
            playbook: playbook.into(),
            inventory: inventory.into(),
            more_inventories: Vec::new(),
            extra_vars: serde_json::Map::new(),
            roles: RolesSource::Embedded,
            check: false,
            emit_dir: None,
            state_dir: state_dir.into(),
            limit: None,
            forks: 10,
            ssh_timeout_secs: 30,
        }
    }

    /// The per-deployment known_hosts file every run of this state directory shares.
    pub fn known_hosts(state_dir: &Path) -> PathBuf {
        state_dir.join("known_hosts")
    }

    /// Writes the run directory: `<name>.yml`, `vars.json` (0600), `ansible.cfg`, `callback_plugins/`,
    /// `roles/` (embedded roles only) and `command.sh` (how to re-run it by hand).
    pub fn prepare(&self) -> Result<PreparedRun, AnsibleError> {
        let inventory =
            absolute_existing(&self.inventory).ok_or_else(|| AnsibleError::InventoryMissing {
                path: self.inventory.clone(),
            })?;
        let more_inventories = self
            .more_inventories
            .iter()
            .map(|p| {
                absolute_existing(p)
                    .ok_or_else(|| AnsibleError::InventoryMissing { path: p.clone() })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let write_err = |path: &Path| {
            let path = path.to_owned();
            move |source| AnsibleError::Write { path, source }
        };
        unsafe_vars::check_keys(&self.extra_vars)
            .map_err(|detail| AnsibleError::UnsafeVariable { detail })?;
        let (playbook_text, _) = playbooks::resolve(&self.roles, &self.playbook)?;
        fsutil::ensure_trusted_dir(&self.state_dir, "state directory")?;
        let state_dir = absolute_existing(&self.state_dir).expect("state dir was just created");
        let known_hosts = Self::known_hosts(&state_dir);
        if known_hosts.to_string_lossy().contains(char::is_whitespace) {
            return Err(AnsibleError::PathWithSpace { path: known_hosts });
        }
        if known_hosts.exists() {
            fsutil::check_trusted_file(&known_hosts, "known_hosts file")?;
        }
        let (dir, temp) = match &self.emit_dir {
            Some(d) => {
                fsutil::create_fresh_dir(d, "emit directory")?;
                (
                    absolute_existing(d).expect("emit dir was just created"),
                    None,
                )
            }
            None => {
                use std::os::unix::fs::PermissionsExt;
                let t = tempfile::Builder::new()
                    .prefix(&format!("run-{}-", self.name))
                    .permissions(std::fs::Permissions::from_mode(0o700))
                    .tempdir_in(&state_dir)
                    .map_err(write_err(&state_dir))?;
                (t.path().to_owned(), Some(t))
            }
        };
        let roles_path = match &self.roles {
            RolesSource::Embedded => {
                let d = dir.join("roles");
                roles::export(&d, true)?;
                d
            }
            RolesSource::Dir(d) => {
                let d = absolute_existing(d)
                    .ok_or_else(|| AnsibleError::RolesDirMissing { path: d.clone() })?;
                fsutil::check_trusted_dir(&d, "roles directory")?;
                d
            }
        };
        for path in [&inventory, &state_dir, &dir, &roles_path]
            .into_iter()
            .chain(&more_inventories)
        {
            if unsafe_vars::has_template_marker(&path.to_string_lossy()) {
                return Err(AnsibleError::TemplateMarkerInPath { path: path.clone() });
            }
        }
        let callback_dir = dir.join("callback_plugins");
        fsutil::create_fresh_dir(&callback_dir, "callback plugin directory")?;
        let plugin = callback_dir.join(format!("{CALLBACK_NAME}.py"));
        fsutil::write_atomic(&plugin, CALLBACK_PLUGIN.as_bytes(), 0o644)
            .map_err(write_err(&plugin))?;

        let playbook = dir.join(format!("{}.yml", self.name));
        fsutil::write_atomic(&playbook, playbook_text.as_bytes(), 0o644)
            .map_err(write_err(&playbook))?;

        let vars_file = dir.join("vars.json");
        let vars = serde_json::to_vec_pretty(&unsafe_vars::mark_all_unsafe(&self.extra_vars))
            .expect("JSON values serialize");
        fsutil::write_atomic(&vars_file, &vars, 0o600).map_err(write_err(&vars_file))?;

        let config = dir.join("ansible.cfg");
        let mut cfg = tera::Context::new();
        cfg.insert("name", &self.name);
        cfg.insert("roles_path", &roles_path.display().to_string());
        cfg.insert("callback_dir", &callback_dir.display().to_string());
        cfg.insert("known_hosts", &known_hosts.display().to_string());
        cfg.insert("forks", &self.forks);
        cfg.insert("timeout", &self.ssh_timeout_secs);
        let text = crate::templates::render("ansible.cfg.tera", &cfg)?;
        fsutil::write_atomic(&config, text.as_bytes(), 0o644).map_err(write_err(&config))?;

        let leftover = temp.as_ref().map(|t| {
            crate::signals::leftover(
                format!("run directory {} (holds vars.json)", t.path().display()),
                format!("removed run directory {} (vars.json)", t.path().display()),
                Some(t.path().to_owned()),
            )
        });
        let prepared = PreparedRun {
            dir,
            _temp: temp,
            _leftover: leftover,
            playbook,
            vars_file,
            config,
            roles_path,
            callback_dir,
            inventory,
            more_inventories,
            check: self.check,
            limit: self.limit.clone(),
        };
        let script = prepared.dir.join("command.sh");
        let cmd = prepared.command(Path::new("ansible-playbook"), false);
        let text = format!(
            "#!/bin/sh\n# Re-runs this rendered run by hand (written by `pipeline`).\ncd \"$(dirname \"$0\")\"\n{}\n{}\n",
            prepared
                .env()
                .iter()
                .map(|(k, v)| format!("export {k}='{v}'"))
                .collect::<Vec<_>>()
                .join("\n"),
            cmd.display()
        );
        fsutil::write_atomic(&script, text.as_bytes(), 0o700).map_err(write_err(&script))?;
        Ok(prepared)
    }

    /// Renders the run and asks `ansible-playbook --syntax-check` to parse it (no host is contacted).
    pub fn syntax_check(&self) -> Result<PreparedRun, AnsibleError> {
        let program = find_ansible_playbook()?;
        let prepared = self.prepare()?;
        prepared
            .command(&program, true)
            .run()
            .map_err(|e| match e {
                crate::process::ProcessError::Failed { stderr, stdout, .. } => {
                    AnsibleError::SyntaxCheck {
                        playbook: prepared.playbook.clone(),
                        detail: tail_lines(&format!("{stdout}\n{stderr}"), TAIL_LINES),
                    }
                }
                other => AnsibleError::Process(other),
            })?;
        Ok(prepared)
    }

    /// Renders and runs the playbook with live progress on `ui`, and returns the report. An `Err` means
    /// Ansible could not run or stopped before its end-of-run stats (bad playbook, missing role, …);
    /// failed or unreachable hosts are reported in an `Ok` report with `success == false`.
    ///
    /// Blocks until ansible-playbook exits: from async code call it in `tokio::task::spawn_blocking`.
    pub fn run(&self, ui: &Ui) -> Result<DeployReport, AnsibleError> {
        let program = find_ansible_playbook()?;
        let prepared = self.prepare()?;
        if self.emit_dir.is_some() {
            ui.info(format!(
                "{}: rendered run kept in {}",
                self.name,
                prepared.dir.display()
            ));
        }
        let started_at = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
        let clock = Instant::now();
        let mut builder = ReportBuilder::new();
        let mut progress = Progress::new(ui, &self.name);
        let mut raw_events = String::new();
        let mut other = Vec::new();
        let out =
            prepared
                .command(&program, false)
                .stream_unchecked(|line| match parse_line(line) {
                    Line::Event(e) => {
                        raw_events.push_str(line);
                        raw_events.push('\n');
                        progress.on_event(&e);
                        builder.apply(&e);
                    }
                    Line::Other(o) => {
                        if !o.trim().is_empty() {
                            other.push(o);
                        }
                    }
                })?;
        progress.finish();
        let events_file = prepared.dir.join("events.jsonl");
        fsutil::write_atomic(&events_file, raw_events.as_bytes(), 0o600).map_err(|source| {
            AnsibleError::Write {
                path: events_file.clone(),
                source,
            }
        })?;
        let rc = out.status.code().unwrap_or(-1);
        let detail = tail_lines(&format!("{}\n{}", other.join("\n"), out.stderr), TAIL_LINES);
        if let Some(signal) = crate::signals::received() {
            return Err(AnsibleError::Stopped {
                name: self.name.clone(),
                inventory: prepared.inventory.clone(),
                signal,
            });
        }
        if !builder.has_stats() {
            return Err(AnsibleError::Aborted {
                name: self.name.clone(),
                inventory: prepared.inventory.clone(),
                rc,
                meaning: rc_meaning(rc),
                detail,
            });
        }
        Ok(builder.finish(
            RunFacts {
                name: self.name.clone(),
                inventory: prepared.inventory.display().to_string(),
                check_mode: self.check,
                started_at,
                duration_secs: clock.elapsed().as_secs_f64(),
            },
            rc,
            &detail,
        ))
    }
}

impl PreparedRun {
    /// The directory holding the rendered run.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Environment for ansible-playbook. The callback settings are repeated from ansible.cfg because an
    /// `ANSIBLE_*` variable in the caller's environment would otherwise override the file.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("ANSIBLE_CONFIG", self.config.display().to_string()),
            ("ANSIBLE_STDOUT_CALLBACK", CALLBACK_NAME.to_string()),
            (
                "ANSIBLE_CALLBACK_PLUGINS",
                self.callback_dir.display().to_string(),
            ),
            ("ANSIBLE_ROLES_PATH", self.roles_path.display().to_string()),
            ("ANSIBLE_NOCOLOR", "1".to_string()),
            ("ANSIBLE_RETRY_FILES_ENABLED", "0".to_string()),
            ("PYTHONUNBUFFERED", "1".to_string()),
        ]
    }

    /// The ansible-playbook command line, as data.
    pub fn command(&self, program: &Path, syntax_check: bool) -> Cmd {
        let action = if syntax_check {
            format!("check the syntax of {}", self.playbook.display())
        } else {
            format!("run {}", self.playbook.display())
        };
        let mut cmd = Cmd::new(action, program)
            .install_hint(INSTALL_HINT)
            .dir(&self.dir)
            .arg("-i")
            .arg(&self.inventory);
        for more in &self.more_inventories {
            cmd = cmd.arg("-i").arg(more);
        }
        cmd = cmd
            .arg(&self.playbook)
            .arg("-e")
            .arg(format!("@{}", self.vars_file.display()));
        if syntax_check {
            cmd = cmd.arg("--syntax-check");
        } else if self.check {
            cmd = cmd.args(["--check", "--diff"]);
        }
        if let Some(limit) = &self.limit {
            cmd = cmd.args(["--limit", limit]);
        }
        for (k, v) in self.env() {
            cmd = cmd.env(k, v);
        }
        cmd
    }
}

/// Looks up `ansible-playbook` on PATH.
pub fn find_ansible_playbook() -> Result<PathBuf, AnsibleError> {
    which::which("ansible-playbook").map_err(|_| AnsibleError::NotInstalled { hint: INSTALL_HINT })
}

fn absolute_existing(path: &Path) -> Option<PathBuf> {
    std::fs::canonicalize(path).ok()
}

/// The last `n` non-empty lines of `text`.
fn tail_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Live progress: a spinner with the current task on a terminal, plus one line per changed, failed or
/// unreachable result; without a terminal, one line per task instead of the spinner.
struct Progress<'a> {
    ui: &'a Ui,
    bar: ProgressBar,
    task: String,
}

impl<'a> Progress<'a> {
    fn new(ui: &'a Ui, name: &str) -> Self {
        let multi = ui.multi();
        let bar = ui.spinner(&multi, name.to_string());
        bar.set_message("starting ansible-playbook");
        Progress {
            ui,
            bar,
            task: String::new(),
        }
    }

    fn line(&self, text: String) {
        if self.bar.is_hidden() {
            self.ui.info(text);
        } else {
            self.bar.println(text);
        }
    }

    fn on_event(&mut self, event: &Event) {
        match event {
            Event::TaskStart { task, handler, .. } => {
                self.task = match &task.role {
                    Some(r) => format!("{r} : {}", task.task),
                    None => task.task.clone(),
                };
                if *handler {
                    self.task.push_str(" (handler)");
                }
                self.bar.set_message(self.task.clone());
                if self.bar.is_hidden() {
                    self.ui.info(format!("  task  {}", self.task));
                }
            }
            Event::Result(r) => {
                let label = match r.status {
                    Status::Changed => "changed",
                    Status::Failed => "FAILED",
                    Status::Unreachable => "UNREACHABLE",
                    Status::Ignored => "ignored",
                    Status::Ok | Status::Skipped => return,
                };
                let took = r.duration.map(|d| format!(" ({})", fmt_secs(d)));
                let mut text = format!(
                    "  {label:<11} {:<10} {}{}",
                    r.host,
                    self.task,
                    took.unwrap_or_default()
                );
                if matches!(
                    r.status,
                    Status::Failed | Status::Unreachable | Status::Ignored
                ) {
                    text.push_str(&format!("\n              {}", r.message()));
                }
                self.line(text);
            }
            Event::Retry {
                host,
                attempt,
                retries,
                ..
            } => {
                let msg = format!(
                    "{} (waiting on {host}: attempt {}/{})",
                    self.task,
                    attempt.unwrap_or(0),
                    retries.unwrap_or(0)
                );
                self.bar.set_message(msg.clone());
                if self.bar.is_hidden() {
                    self.ui.info(format!("  retry {msg}"));
                }
            }
            Event::PlayStart { play } => self.line(format!("play  {play}")),
            Event::NoHostsMatched => self.line("  no host matched the play".to_string()),
            Event::PlaybookStart { .. } | Event::Stats { .. } => {}
        }
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(dir: &Path) -> PlaybookRun {
        let inv = dir.join("inventory.ini");
        std::fs::write(&inv, "[itrust]\nitrust ansible_host=10.0.0.1\n").unwrap();
        let mut run = PlaybookRun::new(
            "deploy-itrust",
            "deploy-itrust.yml",
            &inv,
            dir.join("state"),
        );
        run.extra_vars
            .insert("pipeline_hosts".into(), "itrust".into());
        run.extra_vars
            .insert("pipeline_app".into(), "iTrust".into());
        run.extra_vars
            .insert("itrust_db_password".into(), "s3cret".into());
        run.emit_dir = Some(dir.join("emit"));
        run
    }

    #[test]
    fn prepared_run_passes_vars_by_file_and_pins_config_and_callback() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let prepared = sample(dir.path()).prepare().unwrap();
        let cmd = prepared.command(Path::new("ansible-playbook"), false);
        let line = cmd.display();
        assert!(!line.contains("s3cret"), "{line}");
        assert!(
            line.contains(&format!("-e @{}", prepared.vars_file.display())),
            "{line}"
        );
        let mode = std::fs::metadata(&prepared.vars_file)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let env = prepared.env();
        assert!(env.contains(&("ANSIBLE_STDOUT_CALLBACK", "pipeline_events".into())));
        assert!(prepared.callback_dir.join("pipeline_events.py").exists());
        let cfg = std::fs::read_to_string(&prepared.config).unwrap();
        assert!(cfg.contains("pipelining = True"), "{cfg}");
        assert!(cfg.contains("StrictHostKeyChecking=accept-new"), "{cfg}");
        assert!(cfg.contains("state/known_hosts"), "{cfg}");
        assert!(prepared.roles_path.join("common/tasks/main.yml").exists());
    }

    #[test]
    fn check_mode_adds_check_and_diff_but_syntax_check_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let mut run = sample(dir.path());
        run.check = true;
        let prepared = run.prepare().unwrap();
        let normal = prepared
            .command(Path::new("ansible-playbook"), false)
            .display();
        assert!(normal.ends_with("--check --diff"), "{normal}");
        let syntax = prepared
            .command(Path::new("ansible-playbook"), true)
            .display();
        assert!(syntax.ends_with("--syntax-check"), "{syntax}");
    }

    #[test]
    fn missing_inventory_and_roles_dir_are_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut run = sample(dir.path());
        run.inventory = dir.path().join("nope.ini");
        let err = run.prepare().unwrap_err().to_string();
        assert!(err.contains("nope.ini"), "{err}");
        let mut run = sample(dir.path());
        run.roles = RolesSource::Dir(dir.path().join("my-roles"));
        let err = run.prepare().unwrap_err().to_string();
        assert!(err.contains("my-roles"), "{err}");
    }

    #[test]
    fn tail_keeps_the_last_non_empty_lines() {
        assert_eq!(tail_lines("a\n\nb\nc\n", 2), "b\nc");
    }
}
