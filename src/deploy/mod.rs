//! Deploying an app: [`DeploySettings`] (what the user asked for, resolved by the command layer) become one
//! [`PlaybookRun`] of the app's entry playbook, with the variables the tool computes ([`tool_vars`]: the
//! source, the artifact, generated secrets, mail settings from the environment) below `[deploy.vars]`,
//! below `-e`. [`Targets::of`] picks the hosts and the front door from the inventory; [`Deployment::urls`]
//! says where the app answers, from the run's final variables.
//!
//! - [`rolling`]: batches, the front door's drain/undrain and the direct health check of a rolling
//!   deploy, and what a stopped one says.
//! - [`source`]: where the code comes from, and local checkouts shipped as git bundles.
//! - [`secrets`]: passwords generated once into `<state_dir>/secrets/`.
//! - [`vars`]: `-e` parsing and `[deploy.vars]` TOML → JSON.

pub mod rolling;
pub mod secrets;
pub mod source;
pub mod vars;

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::ansible::PlaybookRun;
use crate::apps::{App, AppError};
use crate::fleet::Serial;
use crate::inventory::{Inventory, InventoryError, InventoryHost};
use crate::monitoring::events::Event;
pub use rolling::Rollout;
pub use secrets::{secret, SecretError};
pub use source::{BundleError, Source};
pub use vars::parse_extra_var;

/// `[deploy]` in pipeline.toml.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploySection {
    /// Hosts Ansible configures in parallel (default 10).
    pub forks: Option<u32>,
    /// SSH connection timeout in seconds (default 30).
    pub ssh_timeout: Option<u32>,
    /// Role variables for every deploy; -e overrides them.
    pub vars: Option<toml::Table>,
    /// Rolling-deploy batches: a host count, `"30%"`, or a list as Ansible's `serial` (default 1).
    pub serial: Option<Serial>,
    /// Share of a batch's hosts that may fail before the deploy stops (default 0: any failure stops it).
    pub max_fail_percentage: Option<u32>,
}

impl DeploySection {
    /// `[deploy.vars]` as JSON (empty when absent).
    pub fn vars_json(&self) -> Map<String, Value> {
        self.vars
            .clone()
            .map(vars::table_to_json)
            .unwrap_or_default()
    }
}

/// One deploy, as the user asked for it.
#[derive(Debug, Clone)]
pub struct DeploySettings {
    pub app: App,
    pub inventory: PathBuf,
    /// `--source` as given (classified by [`Source::classify`]).
    pub source: Option<String>,
    pub git_ref: Option<String>,
    pub artifact: Option<PathBuf>,
    pub forks: Option<u32>,
    pub ssh_timeout: Option<u32>,
    /// `[deploy.vars]`.
    pub config_vars: Map<String, Value>,
    /// `[deploy] serial` (default: one host at a time).
    pub serial: Serial,
    /// `[deploy] max_fail_percentage` (0 to 100; default 0).
    pub max_fail_percentage: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error("{0}")]
    BadSource(String),
    #[error("--artifact is for iTrust only (checkbox.io is deployed from --source)")]
    ArtifactNotItrust,
    #[error("--artifact {0}: no such file")]
    NoArtifact(PathBuf),
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(transparent)]
    App(#[from] AppError),
    /// The inventory has no host for the app.
    #[error(transparent)]
    NoHosts(InventoryError),
}

impl DeployError {
    /// Whether the user fixes it by changing what they passed (exit 2).
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            DeployError::BadSource(_)
                | DeployError::ArtifactNotItrust
                | DeployError::NoArtifact(_)
                | DeployError::App(_)
                | DeployError::NoHosts(_)
        )
    }
}

/// The variables the tool computes for the app (sources, artifact, generated secrets, mail settings).
pub fn tool_vars(s: &DeploySettings, state_dir: &Path) -> Result<Map<String, Value>, DeployError> {
    let app = s.app;
    let key = app.key();
    let mut vars = Map::new();
    let version_var = format!("{key}_source_version");
    match Source::classify(s.source.as_deref(), Path::is_dir).map_err(DeployError::BadSource)? {
        Source::Default => {}
        Source::Url(url) => {
            vars.insert(format!("{key}_source_repo"), url.into());
        }
        Source::Local(path) => {
            let (bundle, commit) =
                source::bundle_local_source(&path, s.git_ref.as_deref(), app, state_dir)?;
            vars.insert(
                format!("{key}_source_bundle"),
                bundle.display().to_string().into(),
            );
            vars.insert(version_var.clone(), commit.into());
        }
    }
    if let Some(r) = &s.git_ref {
        vars.entry(version_var).or_insert_with(|| r.clone().into());
    }
    if let Some(war) = &s.artifact {
        if app != App::Itrust {
            return Err(DeployError::ArtifactNotItrust);
        }
        let abs = std::fs::canonicalize(war)
            .ok()
            .filter(|p| p.is_file())
            .ok_or_else(|| DeployError::NoArtifact(war.clone()))?;
        vars.insert("itrust_artifact".into(), abs.display().to_string().into());
    }
    for (var, name) in app.secrets() {
        vars.insert((*var).into(), secret(state_dir, name)?.into());
    }
    for (var, env) in app.env_vars() {
        if let Ok(v) = std::env::var(env) {
            vars.insert((*var).into(), v.into());
        }
    }
    Ok(vars)
}

/// Where a deploy goes: the hosts of the app's group and the front door in front of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Targets {
    pub hosts: Vec<InventoryHost>,
    /// The first host of the `[lb]` group, if the inventory has one.
    pub lb: Option<InventoryHost>,
}

impl Targets {
    /// The targets of `app` in `inventory`; no host in the app's group is a usage error naming the groups
    /// that are there.
    pub fn of(inventory: &Inventory, app: App) -> Result<Targets, DeployError> {
        let hosts = inventory
            .group(app.key())
            .map_err(DeployError::NoHosts)?
            .to_vec();
        let lb = inventory
            .groups
            .get(crate::fleet::LB)
            .and_then(|g| g.first())
            .cloned();
        Ok(Targets { hosts, lb })
    }
}

/// The dashboard's event for a deploy of `version` of `app` that just ended, `success` or `failed`.
pub fn event(app: App, version: &str, succeeded: bool) -> Event {
    let verdict = if succeeded { "success" } else { "failed" };
    Event::new("deploy", app.display(), version, verdict)
}

/// A deploy ready to run: the playbook run (apply `-e`, check mode and roles to it, then call
/// [`Deployment::finalize`]) and what the report and the dashboard event say about it.
#[derive(Debug)]
pub struct Deployment {
    pub app: App,
    pub run: PlaybookRun,
    /// What is deployed: the WAR's file name, the commit or ref, or `default`.
    pub version: String,
    serial: Serial,
    max_fail_percentage: u32,
    /// The batches and the front door, once finalized.
    pub rollout: Option<Rollout>,
}

/// Builds the run for `s`: tool-computed variables < `[deploy.vars]`; forks and SSH timeout.
pub fn prepare(s: &DeploySettings, state_dir: &Path) -> Result<Deployment, DeployError> {
    let app = s.app;
    let mut vars = tool_vars(s, state_dir)?;
    vars.extend(s.config_vars.clone());
    let version = match (
        &s.artifact,
        vars.get(&format!("{}_source_version", app.key())),
    ) {
        (Some(war), _) => war
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        (None, Some(Value::String(v))) => v.clone(),
        _ => "default".to_string(),
    };
    let mut run = PlaybookRun::new(app.run_name(), app.playbook(), &s.inventory, state_dir);
    run.extra_vars = vars;
    if let Some(f) = s.forks {
        run.forks = f;
    }
    if let Some(t) = s.ssh_timeout {
        run.ssh_timeout_secs = t;
    }
    Ok(Deployment {
        app,
        run,
        version,
        serial: s.serial.clone(),
        max_fail_percentage: s.max_fail_percentage,
        rollout: None,
    })
}

impl Deployment {
    /// Sets what the static entry playbook reads, after `-e` (the tool owns these): the hosts, the
    /// batches and the front door ([`Rollout::vars`]) of the rolling deploy over `hosts` behind `lb` (the
    /// inventory's `[lb]` host, if any); checks the variables the printed URLs come from.
    /// `-e pipeline_health='{"port": 80, "path": "/api/status", "retries": 10}'` replaces the direct
    /// health check.
    pub fn finalize(
        &mut self,
        hosts: &[InventoryHost],
        lb: Option<&InventoryHost>,
    ) -> Result<(), DeployError> {
        let vars = &mut self.run.extra_vars;
        vars.insert("pipeline_hosts".into(), self.app.key().into());
        vars.insert("pipeline_app".into(), self.app.display().into());
        let endpoint = self.app.endpoint(vars)?;
        let rollout = Rollout {
            app: self.app,
            hosts: hosts.to_vec(),
            lb: lb.cloned(),
            serial: self.serial.clone(),
            max_fail_percentage: self.max_fail_percentage,
            endpoint,
        };
        for (k, v) in rollout.vars() {
            if k != "pipeline_health" || !vars.contains_key(&k) {
                vars.insert(k, v);
            }
        }
        self.rollout = Some(rollout);
        Ok(())
    }

    /// Where the app answers on each host: the host's inventory variables (host, group and `group_vars/`
    /// values, as Ansible resolves them) overridden by the run's variables, as in Ansible's precedence.
    pub fn urls(&self, hosts: &[InventoryHost]) -> Result<Vec<(String, String)>, AppError> {
        hosts
            .iter()
            .map(|h| {
                let mut vars: Map<String, Value> = h
                    .vars
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect();
                vars.extend(self.run.extra_vars.clone());
                let endpoint = self.app.endpoint(&vars)?;
                Ok((h.name.clone(), endpoint.url(h.address(), false)))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(dir: &Path, app: App) -> DeploySettings {
        DeploySettings {
            app,
            inventory: dir.join("inventory.ini"),
            source: None,
            git_ref: Some("v2".into()),
            artifact: None,
            forks: Some(3),
            ssh_timeout: None,
            config_vars: Map::from_iter([("itrust_port".to_string(), Value::from(9000))]),
            serial: Serial::default(),
            max_fail_percentage: 0,
        }
    }

    #[test]
    fn config_vars_win_over_tool_vars_and_urls_follow_them() {
        let dir = tempfile::tempdir().unwrap();
        let mut d = prepare(&settings(dir.path(), App::Itrust), dir.path()).unwrap();
        assert_eq!(d.version, "v2");
        assert_eq!(d.run.forks, 3);
        assert_eq!(d.run.playbook, "deploy-itrust.yml");
        assert_eq!(
            d.run.extra_vars["itrust_db_password"]
                .as_str()
                .unwrap()
                .len(),
            24
        );
        let host = InventoryHost {
            name: "web".into(),
            vars: [("ansible_host".to_string(), "10.0.0.1".to_string())].into(),
        };
        d.finalize(std::slice::from_ref(&host), None).unwrap();
        assert_eq!(d.run.extra_vars["pipeline_hosts"], "itrust");
        assert_eq!(d.run.extra_vars["pipeline_health"]["port"], 9000);
        assert_eq!(
            d.urls(std::slice::from_ref(&host)).unwrap(),
            vec![(
                "web".to_string(),
                "http://10.0.0.1:9000/iTrust2".to_string()
            )]
        );
        d.run.extra_vars.insert("itrust_port".into(), "x".into());
        assert!(d.finalize(&[host], None).unwrap_err().is_usage());
    }

    fn inventory(listing: &serde_json::Value) -> Inventory {
        Inventory::from_listing(&listing.to_string(), Path::new("inventory.ini")).unwrap()
    }

    #[test]
    fn the_targets_are_the_apps_group_and_the_first_lb_host() {
        let inv = inventory(&serde_json::json!({
            "itrust": {"hosts": ["itrust-1", "itrust-2"]},
            "lb": {"hosts": ["lb"]},
            "_meta": {"hostvars": {"lb": {"ansible_host": "10.0.0.9"}}}
        }));
        let t = Targets::of(&inv, App::Itrust).unwrap();
        let names: Vec<&str> = t.hosts.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["itrust-1", "itrust-2"]);
        assert_eq!(t.lb.unwrap().address(), "10.0.0.9");
        let t = Targets::of(
            &inventory(&serde_json::json!({"itrust": {"hosts": ["w"]}})),
            App::Itrust,
        )
        .unwrap();
        assert_eq!(t.lb, None);
    }

    #[test]
    fn an_inventory_without_the_apps_group_is_a_usage_error_naming_the_groups() {
        let inv = inventory(&serde_json::json!({"itrust": {"hosts": ["w"]}}));
        let e = Targets::of(&inv, App::Checkbox).unwrap_err();
        assert!(e.is_usage());
        assert!(e.to_string().contains("no host in group [checkbox]"), "{e}");
        assert!(e.to_string().contains("groups present: itrust"), "{e}");
    }

    #[test]
    fn the_event_names_the_app_the_version_and_the_verdict() {
        let dir = tempfile::tempdir().unwrap();
        let d = prepare(&settings(dir.path(), App::Itrust), dir.path()).unwrap();
        let e = event(d.app, &d.version, false);
        assert_eq!((e.kind.as_str(), e.app.as_str()), ("deploy", "iTrust"));
        assert_eq!((e.version.as_str(), e.verdict.as_str()), ("v2", "failed"));
        assert_eq!(event(d.app, &d.version, true).verdict, "success");
    }

    #[test]
    fn artifact_is_for_itrust_only() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = settings(dir.path(), App::Checkbox);
        s.artifact = Some(dir.path().join("x.war"));
        assert!(matches!(
            prepare(&s, dir.path()),
            Err(DeployError::ArtifactNotItrust)
        ));
    }
}
