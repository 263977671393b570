//! The bundled example apps, embedded in the binary so `pipeline demo` (and anyone without GitHub) runs from
//! any directory: the preview service (`examples/preview-service`), made into a git repository with branches
//! `master`, `broken`, `slow`, `hang` and `cpu` by its own `make-repo.sh`; and the iTrust and checkbox.io stand-ins
//! (`examples/itrust-standin`, built into a WAR by its `build.sh`; `examples/checkbox-standin`, committed
//! into a git repository).

use std::path::{Path, PathBuf};

use include_dir::{include_dir, Dir};

use crate::process::{Cmd, ProcessError};

static PREVIEW: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/examples/preview-service");
static ITRUST: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/examples/itrust-standin");
static CHECKBOX: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/examples/checkbox-standin");

/// The survey the canary posts to `/preview` by default, in checkbox.io's format: `{"markdown": …}` whose
/// text starts with a JSON5 header (`{NumberQuestions:true}`) and a line of dashes, then the questions
/// (about 1.3 KB, like the original service's `test/resources/survey.json`).
pub const SURVEY_JSON: &str = include_str!("../../examples/preview-service/survey.json");

/// Branches [`make_repo`] creates.
pub const BRANCHES: [&str; 5] = ["master", "broken", "slow", "hang", "cpu"];

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

/// Writes the embedded directory `dir` to `dest` (replacing what was there).
fn write_embedded(dir: &Dir<'_>, dest: &Path) -> Result<(), ExampleError> {
    let write_err = |path: &Path| {
        let path = path.to_owned();
        move |source| ExampleError::Write { path, source }
    };
    if dest.exists() {
        std::fs::remove_dir_all(dest).map_err(write_err(dest))?;
    }
    let mut files = Vec::new();
    crate::templates::collect_files(dir, &mut files);
    for file in files {
        let path = dest.join(file.path());
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(write_err(parent))?;
        }
        std::fs::write(&path, file.contents()).map_err(write_err(&path))?;
    }
    Ok(())
}

/// Creates (or re-creates) the preview service's repository at `dest` and returns its path.
/// The commits are reproducible: the same binary always makes the same commit ids.
pub fn make_repo(dest: &Path) -> Result<PathBuf, ExampleError> {
    let scratch = tempfile::tempdir().map_err(|source| ExampleError::Write {
        path: std::env::temp_dir(),
        source,
    })?;
    write_embedded(&PREVIEW, scratch.path())?;
    if dest.exists() {
        std::fs::remove_dir_all(dest).map_err(|source| ExampleError::Write {
            path: dest.to_owned(),
            source,
        })?;
    }
    Cmd::new("build the example repository", "bash")
        .arg(scratch.path().join("make-repo.sh"))
        .arg(dest)
        .install_hint("; install git and bash")
        .run()?;
    Ok(dest.to_owned())
}

/// Builds the iTrust stand-in WAR in `work` (sources in `work/itrust-standin`) and returns its path.
pub fn itrust_war(work: &Path) -> Result<PathBuf, ExampleError> {
    let src = work.join("itrust-standin");
    write_embedded(&ITRUST, &src)?;
    let war = work.join("iTrust2.war");
    Cmd::new("build the iTrust stand-in WAR", "bash")
        .arg(src.join("build.sh"))
        .arg(&war)
        .install_hint("; install bash")
        .run()?;
    Ok(war)
}

/// Commits the checkbox.io stand-in into a git repository at `work/checkbox-standin` and returns its path.
pub fn checkbox_repo(work: &Path) -> Result<PathBuf, ExampleError> {
    let repo = work.join("checkbox-standin");
    write_embedded(&CHECKBOX, &repo)?;
    let git = |args: &[&str]| {
        Cmd::new("commit the checkbox.io stand-in", "git")
            .arg("-C")
            .arg(&repo)
            .args([
                "-c",
                "user.name=pipeline example",
                "-c",
                "user.email=example@pipeline.invalid",
            ])
            .args(["-c", "commit.gpgsign=false"])
            .args(args)
            .install_hint("; install it with: apt-get install git")
            .run()
    };
    git(&["init", "-q", "-b", "master"])?;
    git(&["add", "-A"])?;
    git(&["commit", "-q", "-m", "checkbox.io stand-in"])?;
    Ok(repo)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_repository_has_its_branches_and_broken_renders_the_whole_body() {
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
            vec!["broken", "cpu", "hang", "master", "slow"]
        );
        assert!(git(&["show", "master:index.js"]).contains("render(req.body.markdown)"));
        assert!(git(&["show", "broken:index.js"]).contains("render(req.body)"));
        assert!(git(&["show", "slow:index.js"]).contains("setTimeout"));
        assert!(git(&["show", "hang:index.js"]).contains("app.post('/preview', () => {});"));
        // cpu burns CPU before answering and answers exactly as master does.
        let cpu = git(&["show", "cpu:index.js"]);
        assert!(cpu.contains("burnCpu(BURN_CPU_MS);"), "{cpu}");
        assert!(cpu.contains("res.json({ preview: render(req.body.markdown) });"));
        let changed = git(&["diff", "--numstat", "master", "cpu"]);
        assert!(
            changed.starts_with("19\t0\tindex.js"),
            "cpu only adds lines: {changed}"
        );
        // Re-creating gives the same commits.
        let first = git(&["rev-parse", "broken"]);
        make_repo(&repo).unwrap();
        assert_eq!(git(&["rev-parse", "broken"]), first);
    }

    #[test]
    fn checkbox_stand_in_becomes_a_committed_repository() {
        let dir = tempfile::tempdir().unwrap();
        let repo = checkbox_repo(dir.path()).unwrap();
        let files = Cmd::new("list", "git")
            .arg("-C")
            .arg(&repo)
            .args(["ls-files"])
            .run()
            .unwrap()
            .stdout;
        assert!(files.contains("server-side/site/server.js"), "{files}");
        // Twice in a row works (the old checkout is replaced).
        checkbox_repo(dir.path()).unwrap();
    }

    #[test]
    fn survey_payload_is_a_checkbox_survey_with_its_json5_header_of_about_1_3_kb() {
        let v: serde_json::Value = serde_json::from_str(SURVEY_JSON).unwrap();
        let md = v["markdown"].as_str().unwrap();
        let mut lines = md.lines();
        assert_eq!(lines.next(), Some(""));
        assert_eq!(lines.next(), Some("{NumberQuestions:true}"));
        assert!(lines.next().unwrap().starts_with("---"));
        assert!(md.contains("\n### "), "questions are level-3 headings");
        assert!((1000..2000).contains(&SURVEY_JSON.len()));
    }
}
