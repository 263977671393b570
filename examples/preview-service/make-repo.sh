#!/usr/bin/env bash
# Turns this example into a git repository at DEST with five branches, for `pipeline canary` and its tests:
#   master  the service as it is in this directory;
#   broken  patches/broken.patch: renders req.body instead of req.body.markdown, so every preview is an
#           HTTP 500 with a tiny body (the same bug as checkbox.io-micro-preview's `broken` branch);
#   slow    patches/slow.patch: every preview waits 25 ms before answering;
#   hang    patches/hang.patch: a preview is never answered (the connection stays open);
#   cpu     patches/cpu.patch: every preview first burns 3 ms of CPU time in a busy loop, then answers
#           exactly as master does (only the service's CPU use differs).
# Commits carry fixed names and dates, so the same example always gives the same commit ids.
# Usage: make-repo.sh DEST   (DEST must not exist or be empty)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dest="${1:?usage: make-repo.sh DEST}"
if [ -e "$dest" ] && [ -n "$(ls -A "$dest")" ]; then
  echo "make-repo.sh: $dest already exists and is not empty; remove it or pick another directory" >&2
  exit 1
fi
mkdir -p "$dest"

export GIT_AUTHOR_NAME="pipeline example" GIT_AUTHOR_EMAIL="example@pipeline.invalid"
export GIT_COMMITTER_NAME="$GIT_AUTHOR_NAME" GIT_COMMITTER_EMAIL="$GIT_AUTHOR_EMAIL"
export GIT_AUTHOR_DATE="2021-03-04T12:00:00Z" GIT_COMMITTER_DATE="2021-03-04T12:00:00Z"
g() { git -C "$dest" -c init.defaultBranch=master -c commit.gpgsign=false "$@"; }

g init -q
cp "$here/index.js" "$here/package.json" "$here/package-lock.json" "$here/survey.json" "$here/.gitignore" "$dest/"
g add -A
g commit -q -m "Markdown preview service"
for branch in broken slow hang cpu; do
  g checkout -q -b "$branch" master
  g am -q --committer-date-is-author-date "$here/patches/$branch.patch"
done
g checkout -q master
echo "make-repo.sh: $dest has branches: $(g branch --format='%(refname:short)' | tr '\n' ' ')"
