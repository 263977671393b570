//! Where an app's code comes from ([`Source`]: the role's default repository, a git URL the host clones,
//! or a local checkout) and shipping a local checkout as a git bundle cached by commit in
//! `<state_dir>/sources/`.

use std::path::{Path, PathBuf};

use crate::apps::App;
use crate::fsutil;
use crate::process::{Cmd, ProcessError};

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

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("--source {repo} must be a git checkout with a commit `{wanted}` (git init && git add -A && git commit): {source}")]
    NoCommit {
        repo: PathBuf,
        wanted: String,
        source: Box<ProcessError>,
    },
    #[error(transparent)]
    Git(Box<ProcessError>),
    #[error("failed to prepare {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
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

/// Turns a local git checkout into a bundle under `<state_dir>/sources/` (cached by commit) and returns the
/// bundle's path and the commit to deploy.
pub fn bundle_local_source(
    repo: &Path,
    git_ref: Option<&str>,
    app: App,
    state_dir: &Path,
) -> Result<(PathBuf, String), BundleError> {
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
    .map_err(|source| BundleError::NoCommit {
        repo: repo.to_owned(),
        wanted: wanted.to_string(),
        source: Box::new(source),
    })?;
    let commit = out.stdout.trim().to_string();
    let dir = state_dir.join("sources");
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| BundleError::Io { path, source }
    };
    fsutil::ensure_private_dir(&dir).map_err(io(&dir))?;
    let bundle = std::fs::canonicalize(&dir)
        .map_err(io(&dir))?
        .join(format!("{}-{commit}.bundle", app.key()));
    if !bundle.exists() {
        let tmp = bundle.with_extension("bundle.tmp");
        Cmd::new(format!("bundle the git checkout {}", repo.display()), "git")
            .arg("-C")
            .arg(repo)
            .args(["bundle", "create"])
            .arg(&tmp)
            .args(["--all", "HEAD"])
            .run()
            .map_err(|e| BundleError::Git(Box::new(e)))?;
        std::fs::rename(&tmp, &bundle).map_err(io(&bundle))?;
    }
    Ok((bundle, commit))
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
