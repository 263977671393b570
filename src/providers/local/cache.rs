//! The apt package cache shared between hosts and runs, by hard links: a new host's overlay starts with
//! links to every cached `.deb` (so apt finds them and does not download), and packages a host
//! downloaded are linked back into the shared directory. Each host keeps its own apt lock, so hosts
//! running apt at the same time never wait on each other (a bind-mounted shared archive directory would
//! make them fight over one lock).

use std::fs;
use std::io::ErrorKind;
use std::path::Path;

use super::Error;

/// Links (or, across file systems, copies) every `.deb` of `from` that `to` lacks into `to`;
/// with `remove_source`, deletes the originals afterwards. Returns how many files were added.
pub fn harvest(from: &Path, to: &Path, remove_source: bool) -> Result<usize, Error> {
    let mut added = 0;
    for (name, src) in debs(from)? {
        let dst = to.join(&name);
        if !dst.exists() {
            link_or_copy(&src, &dst)?;
            added += 1;
        }
        if remove_source {
            fs::remove_file(&src).map_err(|e| Error::io(format!("remove {}", src.display()), e))?;
        }
    }
    Ok(added)
}

/// Links every cached `.deb` into `archives` (the apt cache directory inside a new host's overlay
/// upper layer, created here). Returns how many were linked; 0 when the cache is on another file system.
pub fn seed(cache: &Path, archives: &Path) -> Result<usize, Error> {
    let files = debs(cache)?;
    if files.is_empty() {
        return Ok(0);
    }
    super::system::create_dir(archives)?;
    let mut linked = 0;
    for (name, src) in files {
        match fs::hard_link(&src, archives.join(&name)) {
            Ok(()) => linked += 1,
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            // Another file system: seeding would mean copying gigabytes; apt downloads instead.
            Err(e) if e.raw_os_error() == Some(libc::EXDEV) => return Ok(0),
            Err(e) => {
                return Err(Error::io(
                    format!("link {} into {}", src.display(), archives.display()),
                    e,
                ))
            }
        }
    }
    Ok(linked)
}

/// Complete `.deb` files (regular files, not overlay whiteouts) directly in `dir`.
fn debs(dir: &Path) -> Result<Vec<(String, std::path::PathBuf)>, Error> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(format!("list {}", dir.display()), e)),
    };
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| Error::io(format!("list {}", dir.display()), e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_file = entry.file_type().is_ok_and(|t| t.is_file());
        if is_file && Path::new(&name).extension().is_some_and(|x| x == "deb") {
            out.push((name, entry.path()));
        }
    }
    Ok(out)
}

fn link_or_copy(src: &Path, dst: &Path) -> Result<(), Error> {
    match fs::hard_link(src, dst) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
            // Copy under a temporary name, then rename: a reader never sees half a package.
            let tmp = dst.with_extension("deb.partial");
            fs::copy(src, &tmp)
                .and_then(|_| fs::rename(&tmp, dst))
                .map_err(|e| Error::io(format!("copy {} to {}", src.display(), dst.display()), e))
        }
        Err(e) => Err(Error::io(
            format!("link {} to {}", src.display(), dst.display()),
            e,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn harvest_adds_only_missing_debs_and_seed_links_them_into_a_new_host() {
        let tmp = tempfile::tempdir().unwrap();
        let host = tmp.path().join("host");
        let shared = tmp.path().join("shared");
        fs::create_dir_all(host.join("partial")).unwrap();
        fs::create_dir_all(&shared).unwrap();
        fs::write(host.join("a_1_all.deb"), "a").unwrap();
        fs::write(host.join("lock"), "").unwrap();
        fs::write(host.join("partial/b_1_all.deb"), "half").unwrap();
        fs::write(shared.join("c_1_all.deb"), "c").unwrap();

        assert_eq!(harvest(&host, &shared, false).unwrap(), 1);
        assert_eq!(harvest(&host, &shared, false).unwrap(), 0);
        let mut names: Vec<_> = fs::read_dir(&shared)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["a_1_all.deb", "c_1_all.deb"]);
        assert!(host.join("a_1_all.deb").exists());

        let new_host = tmp.path().join("new/var/cache/apt/archives");
        assert_eq!(seed(&shared, &new_host).unwrap(), 2);
        assert_eq!(
            fs::read_to_string(new_host.join("c_1_all.deb")).unwrap(),
            "c"
        );
    }

    #[test]
    fn harvest_with_remove_source_moves_the_files() {
        let tmp = tempfile::tempdir().unwrap();
        let (from, to) = (tmp.path().join("from"), tmp.path().join("to"));
        fs::create_dir_all(&from).unwrap();
        fs::create_dir_all(&to).unwrap();
        fs::write(from.join("x.deb"), "x").unwrap();
        assert_eq!(harvest(&from, &to, true).unwrap(), 1);
        assert!(!from.join("x.deb").exists() && to.join("x.deb").exists());
    }

    #[test]
    fn missing_directories_are_empty_caches() {
        let tmp = tempfile::tempdir().unwrap();
        let nowhere = tmp.path().join("nowhere");
        assert_eq!(harvest(&nowhere, tmp.path(), false).unwrap(), 0);
        assert_eq!(seed(&nowhere, &tmp.path().join("x")).unwrap(), 0);
        assert!(!tmp.path().join("x").exists());
    }
}
