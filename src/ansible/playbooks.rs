//! The entry playbooks: static YAML files of `playbooks/`, embedded in the binary and copied verbatim into
//! every run (no value of a run is ever written into them; everything comes from `vars.json`). Operators
//! can edit them: `pipeline roles export DIR` writes them to `DIR/playbooks/` next to the roles, and a run
//! with `--roles DIR` (or `roles_dir`) uses `DIR/playbooks/<name>` when that file exists, the built-in one
//! otherwise.

use std::path::{Path, PathBuf};

use include_dir::{include_dir, Dir};

use super::{AnsibleError, RolesSource};
use crate::fsutil;

static PLAYBOOKS: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/playbooks");

/// Where an exported roles directory keeps its entry playbooks.
pub const SUBDIR: &str = "playbooks";

/// Names of the built-in entry playbooks (`deploy-itrust.yml`, …).
pub fn names() -> Vec<String> {
    PLAYBOOKS
        .files()
        .map(|f| f.path().to_string_lossy().into_owned())
        .collect()
}

/// The text of built-in entry playbook `name`.
pub fn builtin(name: &str) -> Option<&'static str> {
    PLAYBOOKS.get_file(name).and_then(|f| f.contents_utf8())
}

/// Where playbook `name` comes from for a run with `roles`, and its text: the operator's
/// `DIR/playbooks/<name>` when it exists, the built-in one otherwise.
pub fn resolve(roles: &RolesSource, name: &str) -> Result<(String, Option<PathBuf>), AnsibleError> {
    if let RolesSource::Dir(dir) = roles {
        let path = dir.join(SUBDIR).join(name);
        if path.is_file() {
            fsutil::check_trusted_file(&path, "entry playbook")?;
            let text = std::fs::read_to_string(&path).map_err(|source| AnsibleError::Read {
                path: path.clone(),
                source,
            })?;
            return Ok((text, Some(path)));
        }
    }
    builtin(name)
        .map(|t| (t.to_string(), None))
        .ok_or_else(|| AnsibleError::UnknownPlaybook {
            name: name.to_string(),
        })
}

/// The files [`export`] would write below `dest`.
pub fn export_paths(dest: &Path) -> Vec<PathBuf> {
    names().iter().map(|n| dest.join(SUBDIR).join(n)).collect()
}

/// Writes every built-in entry playbook to `dest/playbooks/` and returns the files written. Existing files
/// are overwritten only with `overwrite`.
pub fn export(dest: &Path, overwrite: bool) -> Result<Vec<PathBuf>, AnsibleError> {
    if !overwrite {
        if let Some(existing) = export_paths(dest).into_iter().find(|p| p.exists()) {
            return Err(AnsibleError::ExportExists { path: existing });
        }
    }
    let dir = dest.join(SUBDIR);
    std::fs::create_dir_all(&dir).map_err(|source| AnsibleError::Write {
        path: dir.clone(),
        source,
    })?;
    let mut written = Vec::new();
    for f in PLAYBOOKS.files() {
        let path = dir.join(f.path());
        fsutil::write_atomic(&path, f.contents(), 0o644).map_err(|source| AnsibleError::Write {
            path: path.clone(),
            source,
        })?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_writes_every_playbook_byte_for_byte_and_a_run_with_the_dir_reads_the_edited_one() {
        let dir = tempfile::tempdir().unwrap();
        let written = export(dir.path(), false).unwrap();
        assert_eq!(written.len(), names().len());
        for name in names() {
            let text = std::fs::read_to_string(dir.path().join(SUBDIR).join(&name)).unwrap();
            assert_eq!(text, builtin(&name).unwrap(), "{name}");
        }
        assert!(matches!(
            export(dir.path(), false),
            Err(AnsibleError::ExportExists { .. })
        ));
        let edited = dir.path().join(SUBDIR).join("deploy-itrust.yml");
        std::fs::write(&edited, "# edited\n").unwrap();
        let roles = RolesSource::Dir(dir.path().to_owned());
        let (text, from) = resolve(&roles, "deploy-itrust.yml").unwrap();
        assert_eq!((text.as_str(), from), ("# edited\n", Some(edited)));
        std::fs::remove_file(dir.path().join(SUBDIR).join("monitor.yml")).unwrap();
        let (text, from) = resolve(&roles, "monitor.yml").unwrap();
        assert_eq!(
            (text.as_str(), from),
            (builtin("monitor.yml").unwrap(), None)
        );
        assert!(resolve(&RolesSource::Embedded, "nope.yml").is_err());
    }

    /// What `ansible-lint` (its syntax-check) and an operator running an exported playbook by hand do:
    /// no vars.json. Every entry playbook parses, and its plays, whose hosts the tool names, match none.
    #[test]
    fn every_entry_playbook_parses_without_vars_json_and_then_runs_on_no_host() {
        let dir = tempfile::tempdir().unwrap();
        let inventory = dir.path().join("inventory.ini");
        // Every group the tool's patterns name, on this machine: a default that matched one would run here.
        std::fs::write(
            &inventory,
            "[checkbox]\nlocal-a ansible_connection=local\n[itrust]\nlocal-b ansible_connection=local\n\
             [lb]\nlocal-c ansible_connection=local\n[monitor]\nlocal-d ansible_connection=local\n",
        )
        .unwrap();
        let state = dir.path().join("state");
        for name in names().into_iter().filter(|n| {
            std::path::Path::new(n)
                .extension()
                .is_some_and(|e| e == "yml")
        }) {
            let run = crate::ansible::PlaybookRun::new("lint", name.as_str(), &inventory, &state);
            if let Err(e) = run.syntax_check() {
                panic!("{name} does not parse without vars.json: {e}");
            }
            let report = run.run(&crate::ui::Ui::new(true)).unwrap();
            assert!(report.hosts.is_empty(), "{name}: {:?}", report.hosts);
            assert!(!report.success, "{name}: a run on no host is not a success");
        }
    }
}
