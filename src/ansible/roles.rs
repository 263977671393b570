//! The built-in Ansible roles (`roles/` of the source tree), embedded in the binary so `pipeline` runs from
//! any directory. They are copied out byte for byte, never rendered: their `{{ }}` belong to Ansible.
//! [`export_for_editing`] writes them with the entry playbooks for `pipeline roles export`.

use std::path::{Path, PathBuf};

use include_dir::{include_dir, Dir};

use super::AnsibleError;
use crate::fsutil;

static ROLES: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/roles");

/// Names of the built-in roles.
pub fn names() -> Vec<String> {
    ROLES
        .dirs()
        .map(|d| d.path().to_string_lossy().into_owned())
        .collect()
}

/// The embedded bytes of `path` relative to `roles/` (e.g. `itrust/defaults/main.yml`).
pub fn file(path: &str) -> Option<&'static [u8]> {
    ROLES.get_file(path).map(include_dir::File::contents)
}

/// Writes every built-in role below `dest` (created if missing) and returns the files written.
/// Existing files are overwritten only with `overwrite`; otherwise the first existing file is an error.
pub fn export(dest: &Path, overwrite: bool) -> Result<Vec<PathBuf>, AnsibleError> {
    let mut files = Vec::new();
    crate::templates::collect_files(&ROLES, &mut files);
    if !overwrite {
        if let Some(existing) = files
            .iter()
            .map(|f| dest.join(f.path()))
            .find(|p| p.exists())
        {
            return Err(AnsibleError::ExportExists { path: existing });
        }
    }
    let mut written = Vec::with_capacity(files.len());
    for f in files {
        let path = dest.join(f.path());
        let parent = path.parent().expect("role files live in a directory");
        std::fs::create_dir_all(parent).map_err(|source| AnsibleError::Write {
            path: parent.to_owned(),
            source,
        })?;
        fsutil::write_atomic(&path, f.contents(), 0o644).map_err(|source| AnsibleError::Write {
            path: path.clone(),
            source,
        })?;
        written.push(path);
    }
    Ok(written)
}

/// What `pipeline roles export DIR` writes: every built-in role below `dest` and the entry playbooks in
/// `dest/playbooks/` ([`super::playbooks`]), so `--roles DIR` runs the operator's edited copies of both.
/// Nothing is written when a file exists and `overwrite` is false.
pub fn export_for_editing(dest: &Path, overwrite: bool) -> Result<Vec<PathBuf>, AnsibleError> {
    if !overwrite {
        if let Some(existing) = super::playbooks::export_paths(dest)
            .into_iter()
            .find(|p| p.exists())
        {
            return Err(AnsibleError::ExportExists { path: existing });
        }
    }
    let mut written = export(dest, overwrite)?;
    written.extend(super::playbooks::export(dest, overwrite)?);
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_copies_roles_byte_for_byte_and_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let written = export(dir.path(), false).unwrap();
        assert!(!written.is_empty());
        for path in &written {
            let rel = path.strip_prefix(dir.path()).unwrap().to_string_lossy();
            assert_eq!(std::fs::read(path).unwrap(), file(&rel).unwrap(), "{rel}");
        }
        let err = export(dir.path(), false).unwrap_err();
        assert!(err.to_string().contains("already exists"), "{err}");
        export(dir.path(), true).unwrap();
    }

    #[test]
    fn every_role_has_a_tasks_entry_point() {
        for role in names() {
            assert!(
                file(&format!("{role}/tasks/main.yml")).is_some(),
                "role {role} has no tasks/main.yml"
            );
        }
    }
}
