//! `pipeline deploy iTrust|checkbox.io`: resolves the app, its source and its secrets into role variables,
//! runs the app's entry playbook through [`crate::ansible::PlaybookRun`] and prints (and optionally writes)
//! the deploy report.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use serde_json::{Map, Value};

use crate::ansible::PlaybookRun;
use crate::commands::playbook::{execute, load_inventory, RunOptions};
use crate::exit::UsageError;
use crate::fsutil;

use crate::process::Cmd;
use crate::settings::Global;
use crate::Outcome;

#[derive(Debug, Args)]
pub struct DeployArgs {
    /// The app to deploy: iTrust or checkbox.io (case-insensitive; `itrust` and `checkbox` work too).
    #[arg(value_parser = App::parse)]
    pub app: App,
    /// Inventory with an [itrust] or [checkbox] group (written by `pipeline prod up`).
    #[arg(short, long, value_name = "FILE", default_value = "inventory.ini")]
    pub inventory: PathBuf,
    /// Where the app comes from: a git URL the host clones, or a local git checkout, shipped from this
    /// machine as a git bundle (default: the app's upstream repository).
    #[arg(long, value_name = "GIT_URL_OR_PATH")]
    pub source: Option<String>,
    /// Branch, tag or commit of --source to deploy (default: the remote's default branch, or HEAD of a
    /// local checkout).
    #[arg(long = "ref", value_name = "BRANCH_OR_COMMIT")]
    pub git_ref: Option<String>,
    /// iTrust only: deploy this WAR instead of building from source with Maven.
    #[arg(long, value_name = "WAR")]
    pub artifact: Option<PathBuf>,
    #[command(flatten)]
    pub run: RunOptions,
    /// Only render the run and have ansible-playbook parse it (`--syntax-check`); no host is contacted.
    #[arg(long)]
    pub syntax_check: bool,
}

/// `[deploy]` in pipeline.toml.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DeploySection {
    /// Hosts Ansible configures in parallel (default 10).
    forks: Option<u32>,
    /// SSH connection timeout in seconds (default 30).
    ssh_timeout: Option<u32>,
    /// Role variables for every deploy; -e overrides them.
    vars: Option<toml::Table>,
    /// Rolling-deploy batches: a host count, `"30%"`, or a list as Ansible's `serial` (default 1).
    serial: Option<crate::fleet::Serial>,
    /// Share of a batch's hosts that may fail before the deploy stops (default 0: any failure stops it).
    max_fail_percentage: Option<u32>,
}

/// The apps `pipeline deploy` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum App {
    Itrust,
    Checkbox,
}

impl App {
    pub fn parse(s: &str) -> Result<App, String> {
        match s.to_ascii_lowercase().as_str() {
            "itrust" | "itrust2" => Ok(App::Itrust),
            "checkbox.io" | "checkbox" => Ok(App::Checkbox),
            _ => Err(format!("unknown app `{s}`; choose iTrust or checkbox.io")),
        }
    }

    pub fn display(self) -> &'static str {
        match self {
            App::Itrust => "iTrust",
            App::Checkbox => "checkbox.io",
        }
    }

    /// The inventory group and the role-variable prefix.
    pub fn key(self) -> &'static str {
        match self {
            App::Itrust => "itrust",
            App::Checkbox => "checkbox",
        }
    }

    fn url(self, address: &str) -> String {
        match self {
            App::Itrust => format!("http://{address}:8080/iTrust2"),
            App::Checkbox => format!("http://{address}/"),
        }
    }
}

/// Where the app's code comes from, as the user gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The role's default repository.
    Default,
    /// A git URL the host clones itself.
    Url(String),
    /// A git checkout on this machine, shipped to the host as a bundle.
    Local(PathBuf),
}

impl Source {
    /// Classifies `--source`: an existing directory is local, anything URL-shaped is a URL.
    pub fn classify(
        source: Option<&str>,
        is_dir: impl Fn(&Path) -> bool,
    ) -> Result<Source, String> {
        let Some(s) = source else {
            return Ok(Source::Default);
        };
        if is_dir(Path::new(s)) {
            return Ok(Source::Local(PathBuf::from(s)));
        }
        let url_like = s.contains("://") || (s.contains('@') && s.contains(':'));
        if url_like {
            Ok(Source::Url(s.to_string()))
        } else {
            Err(format!(
                "--source {s}: no such directory, and not a git URL (https://…, ssh://…, git@host:path)"
            ))
        }
    }
}

/// Parses one `-e` argument into variables (pure apart from reading an `@FILE`).
pub fn parse_extra_var(arg: &str) -> Result<Map<String, Value>, String> {
    if let Some(file) = arg.strip_prefix('@') {
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("-e @{file}: cannot read it: {e}"))?;
        return match serde_json::from_str(&text) {
            Ok(Value::Object(map)) => Ok(map),
            _ => Err(format!("-e @{file}: expected a JSON object of variables")),
        };
    }
    let (key, value) = arg
        .split_once('=')
        .ok_or_else(|| format!("-e {arg}: expected KEY=VALUE"))?;
    let valid = key
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(format!(
            "-e {arg}: `{key}` is not a valid variable name (letters, digits, _)"
        ));
    }
    let typed =
        serde_json::from_str::<Value>(value).unwrap_or_else(|_| Value::String(value.into()));
    Ok(Map::from_iter([(key.to_string(), typed)]))
}

/// A password from 24 random bytes: letters and digits only, so it survives YAML, JSON, shells and URLs.
pub fn password_from(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

/// The secret `name` from `<state_dir>/secrets/` (0600), generated on first use and reused after. A
/// secrets directory or file someone else could have planted or read (another owner, group/other
/// permissions) is refused, never used.
fn secret(state_dir: &Path, name: &str) -> anyhow::Result<String> {
    let dir = state_dir.join("secrets");
    let path = dir.join(name);
    fsutil::ensure_trusted_dir(state_dir, "state directory")?;
    fsutil::ensure_trusted_dir(&dir, "secrets directory")?;
    if let Some(existing) = fsutil::read_secret(&path)? {
        let existing = existing.trim();
        if !existing.is_empty() {
            return Ok(existing.to_string());
        }
    }
    let mut bytes = [0u8; 24];
    use std::io::Read;
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("failed to read random bytes from /dev/urandom for a new password")?;
    let password = password_from(&bytes);
    fsutil::write_atomic(&path, format!("{password}\n").as_bytes(), 0o600).with_context(|| {
        format!(
            "failed to store the generated password in {}",
            path.display()
        )
    })?;
    Ok(password)
}

/// Turns a local git checkout into a bundle under `<state_dir>/sources/` (cached by commit) and returns the
/// bundle's path and the commit to deploy.
fn bundle_local_source(
    repo: &Path,
    git_ref: Option<&str>,
    app: App,
    state_dir: &Path,
) -> anyhow::Result<(PathBuf, String)> {
    let wanted = git_ref.unwrap_or("HEAD");
    let out = Cmd::new(
        format!("resolve `{wanted}` in the git checkout {}", repo.display()),
        "git",
    )
    .install_hint("; install it with: apt-get install git")
    .arg("-C")
    .arg(repo)
    .args(["rev-parse", "--verify", "--quiet"])
    .arg(format!("{wanted}^{{commit}}"))
    .run()
    .with_context(|| {
        format!(
            "--source {} must be a git checkout with a commit `{wanted}` (git init && git add -A && git commit)",
            repo.display()
        )
    })?;
    let commit = out.stdout.trim().to_string();
    let dir = state_dir.join("sources");
    fsutil::ensure_private_dir(&dir)
        .with_context(|| format!("failed to create {}", dir.display()))?;
    let bundle = std::fs::canonicalize(&dir)
        .with_context(|| format!("failed to resolve {}", dir.display()))?
        .join(format!("{}-{commit}.bundle", app.key()));
    if !bundle.exists() {
        let tmp = bundle.with_extension("bundle.tmp");
        Cmd::new(format!("bundle the git checkout {}", repo.display()), "git")
            .arg("-C")
            .arg(repo)
            .args(["bundle", "create"])
            .arg(&tmp)
            .args(["--all", "HEAD"])
            .run()?;
        std::fs::rename(&tmp, &bundle)
            .with_context(|| format!("failed to move the bundle to {}", bundle.display()))?;
    }
    Ok((bundle, commit))
}

/// The variables the tool computes for `app` (sources, artifact, generated secrets, mail settings).
fn tool_vars(args: &DeployArgs, app: App, global: &Global) -> anyhow::Result<Map<String, Value>> {
    let key = app.key();
    let mut vars = Map::new();
    let source = Source::classify(args.source.as_deref(), Path::is_dir).map_err(UsageError)?;
    match source {
        Source::Default => {
            if let Some(r) = &args.git_ref {
                vars.insert(format!("{key}_source_version"), r.clone().into());
            }
        }
        Source::Url(url) => {
            vars.insert(format!("{key}_source_repo"), url.into());
            if let Some(r) = &args.git_ref {
                vars.insert(format!("{key}_source_version"), r.clone().into());
            }
        }
        Source::Local(path) => {
            let (bundle, commit) =
                bundle_local_source(&path, args.git_ref.as_deref(), app, &global.state_dir)?;
            vars.insert(
                format!("{key}_source_bundle"),
                bundle.display().to_string().into(),
            );
            vars.insert(format!("{key}_source_version"), commit.into());
        }
    }
    if let Some(war) = &args.artifact {
        if app != App::Itrust {
            return Err(UsageError(
                "--artifact is for iTrust only (checkbox.io is deployed from --source)".into(),
            )
            .into());
        }
        let abs = std::fs::canonicalize(war)
            .ok()
            .filter(|p| p.is_file())
            .ok_or_else(|| UsageError(format!("--artifact {}: no such file", war.display())))?;
        vars.insert("itrust_artifact".into(), abs.display().to_string().into());
    }
    match app {
        App::Itrust => {
            vars.insert(
                "itrust_db_password".into(),
                secret(&global.state_dir, "itrust-db-password")?.into(),
            );
        }
        App::Checkbox => {
            vars.insert(
                "checkbox_mongo_password".into(),
                secret(&global.state_dir, "checkbox-mongo-password")?.into(),
            );
            vars.insert(
                "mongodb_admin_password".into(),
                secret(&global.state_dir, "mongodb-admin-password")?.into(),
            );
            for (var, env) in [
                ("checkbox_mail_user", "PIPELINE_MAIL_USER"),
                ("checkbox_mail_password", "PIPELINE_MAIL_PASSWORD"),
                ("checkbox_mail_smtp", "PIPELINE_MAIL_SMTP"),
            ] {
                if let Ok(v) = std::env::var(env) {
                    vars.insert(var.into(), v.into());
                }
            }
        }
    }
    Ok(vars)
}

fn toml_to_json(value: toml::Value) -> Value {
    match value {
        toml::Value::String(s) => Value::String(s),
        toml::Value::Integer(i) => Value::from(i),
        toml::Value::Float(f) => Value::from(f),
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(a) => Value::Array(a.into_iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => {
            Value::Object(t.into_iter().map(|(k, v)| (k, toml_to_json(v))).collect())
        }
    }
}

pub async fn run(args: DeployArgs, global: &Global) -> anyhow::Result<Outcome> {
    let app = args.app;
    let section: DeploySection = global.config.section("deploy")?;
    let inventory = load_inventory(&args.inventory)?;
    let hosts = inventory
        .group(app.key())
        .map_err(|e| UsageError(e.to_string()))?
        .to_vec();
    let lb = inventory
        .groups
        .get(crate::fleet::LB)
        .and_then(|g| g.first())
        .cloned();
    let max_fail_percentage = section.max_fail_percentage.unwrap_or(0);
    crate::fleet::check_max_fail(max_fail_percentage)?;

    // Precedence: tool-computed < [deploy.vars] in pipeline.toml < -e.
    let mut vars = tool_vars(&args, app, global)?;
    if let Some(table) = section.vars {
        vars.extend(table.into_iter().map(|(k, v)| (k, toml_to_json(v))));
    }

    let mut run = PlaybookRun::new(
        format!("deploy-{}", app.key()),
        format!("deploy-{}.yml", app.key()),
        &args.inventory,
        &global.state_dir,
    );
    run.extra_vars = vars;
    args.run.apply(&mut run, global)?;
    // What the static entry playbook reads (set after -e: the tool owns these).
    run.extra_vars
        .insert("pipeline_hosts".into(), app.key().into());
    run.extra_vars
        .insert("pipeline_app".into(), app.display().into());
    let backend_port = match app {
        App::Itrust => run.extra_vars.get("itrust_port"),
        App::Checkbox => run.extra_vars.get("checkbox_http_port"),
    }
    .and_then(Value::as_u64)
    .and_then(|p| u16::try_from(p).ok())
    .unwrap_or(match app {
        App::Itrust => 8080,
        App::Checkbox => 80,
    });
    let rollout = crate::rolling::Rollout {
        app: app.key(),
        hosts: &hosts,
        lb: lb.as_ref(),
        serial: section.serial.clone().unwrap_or_default(),
        max_fail_percentage,
        backend_port,
    };
    // `-e pipeline_health='{"port": 80, "path": "/api/status", "retries": 10}'` replaces the direct check.
    for (k, v) in rollout.vars() {
        if k != "pipeline_health" || !run.extra_vars.contains_key(&k) {
            run.extra_vars.insert(k, v);
        }
    }
    if let Some(f) = section.forks {
        run.forks = f;
    }
    if let Some(t) = section.ssh_timeout {
        run.ssh_timeout_secs = t;
    }

    if args.syntax_check {
        let prepared = tokio::task::spawn_blocking(move || run.syntax_check())
            .await
            .context("the syntax check panicked")??;
        let shown = if args.run.emit.is_some() {
            prepared.playbook.display().to_string()
        } else {
            format!("deploy-{}.yml", app.key())
        };
        global.ui.info(format!(
            "{}: the rendered playbook {shown} and its roles pass ansible-playbook --syntax-check",
            app.display()
        ));
        return Ok(Outcome::Success);
    }

    global.ui.info(format!(
        "Deploying {} to {} with Ansible{}",
        app.display(),
        hosts
            .iter()
            .map(|h| format!("{} ({})", h.name, h.address()))
            .collect::<Vec<_>>()
            .join(", "),
        if args.run.check { " (check mode)" } else { "" }
    ));
    let report = execute(
        run,
        &global.ui,
        format!("failed to deploy {}", app.display()),
    )
    .await?;
    if !args
        .run
        .finish(&report, &format!("deploying {}", app.display()))?
    {
        if let Some(summary) = rollout.stopped_summary(&report.failures) {
            eprintln!("{summary}");
        }
        return Ok(Outcome::Fail);
    }
    if !args.run.check {
        for h in &hosts {
            println!("{} on {}: {}", app.display(), h.name, app.url(h.address()));
        }
        if let Some(url) = rollout.front_door_url() {
            println!("{} through the front door: {url}", app.display());
        }
    }
    Ok(Outcome::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_names_are_case_insensitive_and_unknown_ones_are_rejected() {
        assert_eq!(App::parse("iTrust"), Ok(App::Itrust));
        assert_eq!(App::parse("ITRUST"), Ok(App::Itrust));
        assert_eq!(App::parse("checkbox.io"), Ok(App::Checkbox));
        assert_eq!(App::parse("Checkbox"), Ok(App::Checkbox));
        let err = App::parse("wordpress").unwrap_err();
        assert!(err.contains("iTrust or checkbox.io"), "{err}");
    }

    #[test]
    fn extra_vars_are_typed_as_json_when_they_parse() {
        let v = |s: &str| parse_extra_var(s).unwrap().into_iter().next().unwrap();
        assert_eq!(v("checkbox_mongodb_install=false").1, Value::Bool(false));
        assert_eq!(v("nodejs_version=20").1, Value::from(20));
        assert_eq!(v("itrust_runtime=tomcat").1, Value::from("tomcat"));
        assert_eq!(v("x=a=b").1, Value::from("a=b"));
        assert_eq!(v("list=[1,2]").1, serde_json::json!([1, 2]));
        assert!(parse_extra_var("novalue").is_err());
        assert!(parse_extra_var("1bad=x").is_err());
        assert!(parse_extra_var("bad-name=x").is_err());
    }

    #[test]
    fn extra_vars_file_must_hold_a_json_object() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("v.json");
        std::fs::write(&good, r#"{"a": 1, "b": "x"}"#).unwrap();
        let map = parse_extra_var(&format!("@{}", good.display())).unwrap();
        assert_eq!(map["a"], Value::from(1));
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, "[1]").unwrap();
        assert!(parse_extra_var(&format!("@{}", bad.display())).is_err());
    }

    #[test]
    fn source_is_local_when_a_directory_exists_and_a_url_when_url_shaped() {
        let yes = |_: &Path| true;
        let no = |_: &Path| false;
        assert_eq!(Source::classify(None, no), Ok(Source::Default));
        assert_eq!(
            Source::classify(Some("examples/app"), yes),
            Ok(Source::Local("examples/app".into()))
        );
        assert_eq!(
            Source::classify(Some("https://github.com/x/y.git"), no),
            Ok(Source::Url("https://github.com/x/y.git".into()))
        );
        assert_eq!(
            Source::classify(Some("git@github.com:x/y.git"), no),
            Ok(Source::Url("git@github.com:x/y.git".into()))
        );
        assert!(Source::classify(Some("no/such/dir"), no).is_err());
    }

    #[test]
    fn generated_passwords_use_only_letters_and_digits() {
        let p = password_from(&[0, 1, 2, 255, 128, 77]);
        assert_eq!(p.len(), 6);
        assert!(p.chars().all(|c| c.is_ascii_alphanumeric()), "{p}");
    }

    #[test]
    fn secret_is_generated_once_with_mode_0600_and_reused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let a = secret(dir.path(), "db").unwrap();
        let b = secret(dir.path(), "db").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), 24);
        let mode = std::fs::metadata(dir.path().join("secrets/db"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
