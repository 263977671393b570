//! The code a canary deploys: the repository is cloned on the machine running `pipeline` (a URL or a local
//! path), and each branch's tree is exported as a `.tar.gz` that Ansible ships to its host, so the hosts
//! need neither git nor repository credentials.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::process::{Cmd, ProcessError};

/// The repository `pipeline canary` deploys when `--repo` is not given.
pub const DEFAULT_REPO: &str = "https://github.com/chrisparnin/checkbox.io-micro-preview.git";

/// In [`DEFAULT_REPO`], `master` was rewritten in 2022 without `POST /preview`; its last revision that
/// still serves it (2020-04-10) is what `master` means there.
pub const DEFAULT_REPO_MASTER_PIN: &str = "ec9b647";

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot fetch the repository {repo}: {source}\n(hosts need no access to it, but this machine does; pass --repo with a reachable URL or a local path)")]
    Fetch {
        repo: String,
        source: Box<ProcessError>,
    },
    #[error("the repository {repo} has no branch or revision `{rev}` (branches: {branches})")]
    UnknownRevision {
        repo: String,
        rev: String,
        branches: String,
    },
    #[error("cannot remove the previous clone {path}: {source}")]
    Workdir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot export `{rev}` from {repo}: {source}")]
    Export {
        repo: String,
        rev: String,
        source: Box<ProcessError>,
    },
}

/// What `rev` means in `repo`: the pinned revision for `master` of the default repository, else `rev` itself.
pub fn resolve_revision(repo: &str, rev: &str) -> String {
    if repo == DEFAULT_REPO && rev == "master" {
        DEFAULT_REPO_MASTER_PIN.to_string()
    } else {
        rev.to_string()
    }
}

/// A branch exported for shipping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Export {
    /// What the user asked for (`master`, `broken`, a commit).
    pub branch: String,
    /// The revision it was resolved to (see [`resolve_revision`]).
    pub revision: String,
    pub commit: String,
    /// The tree id: the release name on the host (two branches with the same tree share it).
    pub tree: String,
    /// The `.tar.gz` of the tree, on this machine.
    pub archive: PathBuf,
}

/// A local clone of the repository, made fresh for one run.
pub struct RepoClone {
    repo: String,
    clone: PathBuf,
}

impl RepoClone {
    /// Clones `repo` (URL or path) as a bare mirror into `workdir/repo.git`, replacing an older one there.
    pub fn fetch(repo: &str, workdir: &Path) -> Result<RepoClone, SourceError> {
        let clone = workdir.join("repo.git");
        if clone.exists() {
            std::fs::remove_dir_all(&clone).map_err(|source| SourceError::Workdir {
                path: clone.clone(),
                source,
            })?;
        }
        Cmd::new(format!("clone {repo}"), "git")
            .args(["clone", "--quiet", "--mirror", repo])
            .arg(&clone)
            .env("GIT_TERMINAL_PROMPT", "0")
            .install_hint("; install it with: apt-get install git")
            .run()
            .map_err(|source| SourceError::Fetch {
                repo: repo.to_string(),
                source: Box::new(source),
            })?;
        Ok(RepoClone {
            repo: repo.to_string(),
            clone,
        })
    }

    fn git(&self, action: String) -> Cmd {
        Cmd::new(action, "git").arg("-C").arg(&self.clone)
    }

    /// The commit and tree ids `rev` names, or an error listing the branches there are.
    fn resolve(&self, rev: &str) -> Result<(String, String), SourceError> {
        let parse = |suffix: &str| {
            self.git(format!("resolve {rev} in {}", self.repo))
                .args(["rev-parse", "--verify", "--quiet"])
                .arg(format!("{rev}^{{{suffix}}}"))
                .run()
                .ok()
                .map(|o| o.stdout.trim().to_string())
        };
        match (parse("commit"), parse("tree")) {
            (Some(commit), Some(tree)) => Ok((commit, tree)),
            _ => Err(SourceError::UnknownRevision {
                repo: self.repo.clone(),
                rev: rev.to_string(),
                branches: self.branches().join(", "),
            }),
        }
    }

    fn branches(&self) -> Vec<String> {
        self.git(format!("list the branches of {}", self.repo))
            .args(["for-each-ref", "--format=%(refname:short)", "refs/heads"])
            .run()
            .map(|o| o.stdout.lines().map(str::to_string).collect())
            .unwrap_or_default()
    }

    /// Exports `branch` (resolved with [`resolve_revision`]) as `out_dir/<tree>.tar.gz`.
    pub fn export(&self, branch: &str, out_dir: &Path) -> Result<Export, SourceError> {
        let revision = resolve_revision(&self.repo, branch);
        let (commit, tree) = self.resolve(&revision)?;
        let archive = out_dir.join(format!("{tree}.tar.gz"));
        self.git(format!("export {branch} ({commit}) from {}", self.repo))
            .args(["archive", "--format=tar.gz", "-o"])
            .arg(&archive)
            .arg(&commit)
            .run()
            .map_err(|source| SourceError::Export {
                repo: self.repo.clone(),
                rev: branch.to_string(),
                source: Box::new(source),
            })?;
        Ok(Export {
            branch: branch.to_string(),
            revision,
            commit,
            tree,
            archive,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A repository with `master` and `broken`, built with plain git.
    fn repo(dir: &Path) -> PathBuf {
        let path = dir.join("origin");
        std::fs::create_dir_all(&path).unwrap();
        let git = |args: &[&str]| {
            Cmd::new("set up a test repository", "git")
                .arg("-C")
                .arg(&path)
                .args([
                    "-c",
                    "user.name=t",
                    "-c",
                    "user.email=t@t",
                    "-c",
                    "commit.gpgsign=false",
                ])
                .args(args)
                .run()
                .unwrap()
        };
        git(&["init", "-q", "-b", "master"]);
        std::fs::write(path.join("index.js"), "ok\n").unwrap();
        git(&["add", "."]);
        git(&["commit", "-q", "-m", "first"]);
        git(&["checkout", "-q", "-b", "broken"]);
        std::fs::write(path.join("index.js"), "broken\n").unwrap();
        git(&["commit", "-q", "-am", "bad commit"]);
        git(&["checkout", "-q", "master"]);
        path
    }

    #[test]
    fn master_of_the_default_repository_means_the_pinned_revision() {
        assert_eq!(
            resolve_revision(DEFAULT_REPO, "master"),
            DEFAULT_REPO_MASTER_PIN
        );
        assert_eq!(resolve_revision(DEFAULT_REPO, "broken"), "broken");
        assert_eq!(resolve_revision("/tmp/mine", "master"), "master");
    }

    #[test]
    fn branches_export_as_archives_of_their_own_trees() {
        let dir = tempfile::tempdir().unwrap();
        let origin = repo(dir.path());
        let source = RepoClone::fetch(origin.to_str().unwrap(), dir.path()).unwrap();
        let master = source.export("master", dir.path()).unwrap();
        let broken = source.export("broken", dir.path()).unwrap();
        assert_ne!(master.tree, broken.tree);
        assert_eq!(
            master.archive,
            dir.path().join(format!("{}.tar.gz", master.tree))
        );
        let listing = Cmd::new("list", "tar")
            .args(["-xzOf"])
            .arg(&broken.archive)
            .arg("index.js")
            .run()
            .unwrap();
        assert_eq!(listing.stdout, "broken\n");
        // The same branch twice is the same release.
        assert_eq!(
            source.export("master", dir.path()).unwrap().tree,
            master.tree
        );
    }

    #[test]
    fn unknown_branch_error_lists_the_branches_there_are() {
        let dir = tempfile::tempdir().unwrap();
        let origin = repo(dir.path());
        let source = RepoClone::fetch(origin.to_str().unwrap(), dir.path()).unwrap();
        let err = source.export("nope", dir.path()).unwrap_err().to_string();
        assert!(err.contains("no branch or revision `nope`"), "{err}");
        assert!(err.contains("broken, master"), "{err}");
    }

    #[test]
    fn unreachable_repository_says_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let err = RepoClone::fetch("/nonexistent/repo", dir.path())
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("cannot fetch the repository /nonexistent/repo"),
            "{err}"
        );
        assert!(err.contains("--repo"), "{err}");
    }
}
