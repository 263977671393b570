//! The bundled preview service (`examples/preview-service`, embedded in the binary): materialized as a git
//! repository with branches `master`, `broken` and `slow` by the example's own `make-repo.sh`, so `pipeline
//! demo` (and anyone without GitHub) can run a canary from any directory.

use std::path::{Path, PathBuf};

use include_dir::{include_dir, Dir};

use crate::process::{Cmd, ProcessError};

static EXAMPLE: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/examples/preview-service");

/// The survey document the canary posts to `/preview` by default (`{"markdown": …}`, about 1.3 KB).
pub const SURVEY_JSON: &str = include_str!("../../examples/preview-service/survey.json");

/// Branches [`make_repo`] creates.
pub const BRANCHES: [&str; 3] = ["master", "broken", "slow"];

#[derive(Debug, thiserror::Error)]
pub enum ExampleError {
    #[error("cannot write the bundled example to {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Script(#[from] ProcessError),
}

/// Creates (or re-creates) the example repository at `dest` and returns its path.
/// The commits are reproducible: the same binary always makes the same commit ids.
pub fn make_repo(dest: &Path) -> Result<PathBuf, ExampleError> {
    let write_err = |path: &Path| {
        let path = path.to_owned();
        move |source| ExampleError::Write { path, source }
    };
    let scratch = tempfile::tempdir().map_err(write_err(Path::new("a temporary directory")))?;
    let mut files = Vec::new();
    crate::templates::collect_files(&EXAMPLE, &mut files);
    for file in files {
        let path = scratch.path().join(file.path());
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(write_err(parent))?;
        }
        std::fs::write(&path, file.contents()).map_err(write_err(&path))?;
    }
    if dest.exists() {
        std::fs::remove_dir_all(dest).map_err(write_err(dest))?;
    }
    Cmd::new("build the example repository", "bash")
        .arg(scratch.path().join("make-repo.sh"))
        .arg(dest)
        .install_hint("; install git and bash")
        .run()?;
    Ok(dest.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_repository_has_the_three_branches_and_broken_renders_the_whole_body() {
        let dir = tempfile::tempdir().unwrap();
        let repo = make_repo(&dir.path().join("preview")).unwrap();
        let git = |args: &[&str]| {
            Cmd::new("inspect the example", "git")
                .arg("-C")
                .arg(&repo)
                .args(args)
                .run()
                .unwrap()
                .stdout
        };
        let branches = git(&["for-each-ref", "--format=%(refname:short)", "refs/heads"]);
        assert_eq!(
            branches.lines().collect::<Vec<_>>(),
            vec!["broken", "master", "slow"]
        );
        assert!(git(&["show", "master:index.js"]).contains("render(req.body.markdown)"));
        assert!(git(&["show", "broken:index.js"]).contains("render(req.body)"));
        assert!(git(&["show", "slow:index.js"]).contains("setTimeout"));
        // Re-creating gives the same commits.
        let first = git(&["rev-parse", "broken"]);
        make_repo(&repo).unwrap();
        assert_eq!(git(&["rev-parse", "broken"]), first);
    }

    #[test]
    fn survey_payload_is_a_markdown_document_of_about_1_3_kb() {
        let v: serde_json::Value = serde_json::from_str(SURVEY_JSON).unwrap();
        let md = v["markdown"].as_str().unwrap();
        assert!(md.starts_with("# "));
        assert!((1000..2000).contains(&SURVEY_JSON.len()));
    }
}
