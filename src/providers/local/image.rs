//! The cached base root filesystem every host's overlay sits on: built once with debootstrap under
//! `<cache_dir>/base-<suite>-<hash>/rootfs`, named by the hash of its [`Recipe`] so a changed recipe builds
//! a new one, shared by all environments and kept across runs; images no environment uses are removed.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use super::plan::Recipe;
use super::system::{self, Lock};
use super::Error;
use crate::process::Cmd;
use crate::ui::Ui;

/// Where a built image's root filesystem is.
pub fn rootfs(cache_dir: &Path, id: &str) -> PathBuf {
    cache_dir.join(id).join("rootfs")
}

/// The shared apt package cache (`*.deb`) seeded into new hosts and filled from them.
pub fn package_cache(cache_dir: &Path) -> PathBuf {
    cache_dir.join("apt-archives")
}

/// Returns the id of the image for `recipe`, building it first if it is not cached. Holds
/// `<cache_dir>/base.lock` while checking and building, so concurrent `up`s build it once.
pub fn ensure(cache_dir: &Path, recipe: &Recipe, ui: &Ui) -> Result<String, Error> {
    let id = recipe.id();
    system::create_dir(cache_dir)?;
    let _lock = Lock::acquire(&cache_dir.join("base.lock"))?;
    let dir = cache_dir.join(&id);
    if dir.join("recipe.txt").exists() && rootfs(cache_dir, &id).is_dir() {
        mark_used(&dir)?;
        return Ok(id);
    }
    ui.info(format!(
        "local: building base image {id} with debootstrap ({} from {}, about a minute; cached in {} afterwards)",
        recipe.suite,
        recipe.mirror,
        dir.display()
    ));
    let tmp = cache_dir.join(format!("{id}.tmp"));
    system::remove_dir_all(&tmp)?;
    system::create_dir(&tmp)?;
    let root = tmp.join("rootfs");
    let packages = package_cache(cache_dir);
    system::create_dir(&packages)?;
    let log_hint = format!("log: {}/debootstrap/debootstrap.log", root.display());
    // Two stages, so dpkg runs with force-unsafe-io (no fsync per file): a quarter faster here, and
    // package installs on the hosts later too. A sandbox host lost in a machine crash is rebuilt anyway.
    Cmd::new(
        format!("download and unpack the base image with debootstrap ({log_hint})"),
        "debootstrap",
    )
    .install_hint("; install it with: apt-get install debootstrap")
    .args([
        "--foreign",
        "--variant=minbase",
        &format!("--include={}", recipe.include_list()),
        // Packages already in the shared cache are not downloaded again.
        &format!("--cache-dir={}", packages.display()),
        &recipe.suite,
    ])
    .arg(&root)
    .arg(&recipe.mirror)
    .run()?;
    system::write_file(
        &root.join("etc/dpkg/dpkg.cfg.d/pipeline-unsafe-io"),
        b"# Written by pipeline's local provider: sandbox hosts are disposable, skip fsync.\nforce-unsafe-io\n",
        0o644,
    )?;
    Cmd::new(
        format!("install the base image's packages (debootstrap --second-stage; {log_hint})"),
        "chroot",
    )
    .arg(&root)
    .args(["/debootstrap/debootstrap", "--second-stage"])
    .run()?;
    install_extra_packages(&root, &recipe.extra, &packages)?;
    customize(&root, &packages)?;
    system::write_file(&tmp.join("recipe.txt"), recipe.describe().as_bytes(), 0o644)?;
    fs::rename(&tmp, &dir)
        .map_err(|e| Error::io(format!("rename {} to {}", tmp.display(), dir.display()), e))?;
    Ok(id)
}

/// Installs `extra` (the `extra_packages` setting) into the image with apt-get in a chroot: apt resolves
/// their dependencies, virtual packages included, which debootstrap's `--include` does not (`npm`'s
/// dependencies provide each other, and debootstrap leaves them unconfigured). Without recommends, as
/// apt on a minimal server would; packages already in the shared cache are not downloaded again (they are
/// linked into the image's apt cache first and moved back by [`customize`]).
fn install_extra_packages(
    root: &Path,
    extra: &[String],
    package_cache: &Path,
) -> Result<(), Error> {
    if extra.is_empty() {
        return Ok(());
    }
    super::cache::seed(package_cache, &root.join("var/cache/apt/archives"))?;
    let resolv = root.join("etc/resolv.conf");
    if !resolv.exists() {
        system::write_file(&resolv, super::hostfs::resolv_conf()?.as_bytes(), 0o644)?;
    }
    let list = extra.join(" ");
    // A package's maintainer scripts would start its service (mariadb-server, nginx) in the chroot, that
    // is on this machine's own network, or fail trying; the hosts start their services when they boot.
    let _denied = ServiceStartsDenied::install(root)?;
    // Maintainer scripts that run a program needing /proc (openjdk's `java` in its postinst) fail without it.
    let _proc = ProcMounted::mount(root)?;
    Cmd::new(
        "update the base image's apt package lists (apt-get update in a chroot)",
        "chroot",
    )
    .arg(root)
    .args(["apt-get", "-q", "update"])
    .run()?;
    Cmd::new(
        format!("install the base image's extra packages {list} (apt-get install in a chroot; set extra_packages in [local] of pipeline.toml)"),
        "chroot",
    )
    .arg(root)
    .args([
        "apt-get",
        "-q",
        "-y",
        "--no-install-recommends",
        "-o",
        "APT::Keep-Downloaded-Packages=true",
        "install",
    ])
    .args(extra)
    .env("DEBIAN_FRONTEND", "noninteractive")
    .run()?;
    Ok(())
}

/// `usr/sbin/policy-rc.d` answering 101 ("action forbidden") in an image while packages are installed into it
/// in a chroot: Debian's `invoke-rc.d` and `deb-systemd-invoke` then start no service there (Debian's own
/// mechanism for chroots and image builds). Removed again when dropped, also when the install failed, so
/// the hosts booted from the image start their services as usual. A policy the image already had is kept.
struct ServiceStartsDenied {
    path: Option<PathBuf>,
}

impl ServiceStartsDenied {
    const POLICY: &'static [u8] =
        b"#!/bin/sh\n# Written by pipeline's local provider while it installs packages into the base image.\nexit 101\n";

    fn install(root: &Path) -> Result<Self, Error> {
        let path = root.join("usr/sbin/policy-rc.d");
        if path.exists() {
            return Ok(ServiceStartsDenied { path: None });
        }
        system::create_dir(&root.join("usr/sbin"))?;
        system::write_file(&path, Self::POLICY, 0o755)?;
        Ok(ServiceStartsDenied { path: Some(path) })
    }
}

impl Drop for ServiceStartsDenied {
    fn drop(&mut self) {
        if let Some(path) = &self.path {
            let _ = fs::remove_file(path);
        }
    }
}

/// `proc` mounted at the image's `/proc` while packages are installed into it in a chroot; unmounted when
/// dropped, also when the install failed, so the image (moved into place afterwards) holds no mount.
struct ProcMounted {
    path: PathBuf,
}

impl ProcMounted {
    fn mount(root: &Path) -> Result<Self, Error> {
        let path = root.join("proc");
        system::create_dir(&path)?;
        Cmd::new(
            format!("mount proc at {} for the package install", path.display()),
            "mount",
        )
        .args(["-t", "proc", "proc"])
        .arg(&path)
        .run()?;
        Ok(ProcMounted { path })
    }
}

impl Drop for ProcMounted {
    fn drop(&mut self) {
        let _ = Cmd::new(format!("unmount {}", self.path.display()), "umount")
            .arg(&self.path)
            .run();
    }
}

/// Turns a debootstrap tree into a server image for Ansible: no shared SSH host keys or machine id
/// (each host gets its own), root login by key only, a persistent journal, no apt timers racing Ansible
/// for the dpkg lock, downloaded packages kept (they feed the shared cache), and TLS settings that make
/// Node and pip use the system CA bundle (which `up` extends with the machine's own extra CAs).
fn customize(root: &Path, package_cache: &Path) -> Result<(), Error> {
    for entry in read_dir(&root.join("etc/ssh"))? {
        if entry.file_name().to_string_lossy().starts_with("ssh_host_") {
            system::remove_file(&entry.path())?;
        }
    }
    system::remove_file(&root.join("etc/hostname"))?;
    system::write_file(&root.join("etc/machine-id"), b"", 0o444)?;
    let files: &[(&str, &str)] = &[
        (
            "etc/ssh/sshd_config.d/pipeline.conf",
            "# Written by pipeline's local provider: key-only root login for Ansible.\n\
             PermitRootLogin prohibit-password\nPasswordAuthentication no\nUseDNS no\n",
        ),
        (
            "etc/apt/apt.conf.d/10pipeline-keep-debs",
            "// Keep downloaded packages: pipeline moves them to the shared cache on `down`.\n\
             APT::Keep-Downloaded-Packages \"true\";\nBinary::apt::APT::Keep-Downloaded-Packages \"true\";\n",
        ),
        (
            "etc/systemd/system.conf.d/pipeline-ca.conf",
            "[Manager]\nDefaultEnvironment=NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt\n",
        ),
        (
            "etc/pip.conf",
            "[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n",
        ),
        (
            "etc/npmrc",
            "cafile=/etc/ssl/certs/ca-certificates.crt\n",
        ),
        (
            "usr/etc/npmrc",
            "cafile=/etc/ssl/certs/ca-certificates.crt\n",
        ),
    ];
    for (path, text) in files {
        let p = root.join(path);
        if let Some(parent) = p.parent() {
            system::create_dir(parent)?;
        }
        system::write_file(&p, text.as_bytes(), 0o644)?;
    }
    let env_file = root.join("etc/environment");
    let mut env = fs::read_to_string(&env_file).unwrap_or_default();
    env.push_str("NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt\n");
    system::write_file(&env_file, env.as_bytes(), 0o644)?;
    system::create_dir(&root.join("var/log/journal"))?;
    let units = root.join("etc/systemd/system");
    for timer in ["apt-daily.timer", "apt-daily-upgrade.timer"] {
        let link = units.join(timer);
        system::remove_file(&link)?;
        symlink("/dev/null", &link)
            .map_err(|e| Error::io(format!("mask {timer} in the base image"), e))?;
    }
    // debootstrap leaves the packages it installed in the image's apt cache: move them to the shared one.
    super::cache::harvest(&root.join("var/cache/apt/archives"), package_cache, true)?;
    Ok(())
}

/// Images used (built, or found by an `up`) more recently than this are never collected: another `up`
/// may have just built one and not yet recorded a host on it, and a machine that alternates between
/// configurations (a test suite whose hosts bake extra packages into their image, and the default
/// image for the rest) would otherwise rebuild each image every time the other one was up alone.
const GC_MIN_AGE: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Records that the image in `dir` was just used: its directory's modification time is the last use.
fn mark_used(dir: &Path) -> Result<(), Error> {
    fs::File::open(dir)
        .and_then(|d| d.set_modified(std::time::SystemTime::now()))
        .map_err(|e| Error::io(format!("mark {} as used", dir.display()), e))
}

/// Removes cached images (and interrupted builds) that are not in `keep` (the images some environment
/// uses) and were last used (built or found by an `up`) more than a day ago.
pub fn collect_garbage(cache_dir: &Path, keep: &[String], ui: &Ui) -> Result<(), Error> {
    let _lock = Lock::acquire(&cache_dir.join("base.lock"))?;
    for entry in read_dir(cache_dir)? {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with("base-") || !entry.path().is_dir() {
            continue;
        }
        let age = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .unwrap_or_default();
        if keep.contains(&name) || age < GC_MIN_AGE {
            continue;
        }
        ui.info(format!("local: removing unused base image {name}"));
        system::remove_dir_all(&entry.path())?;
    }
    Ok(())
}

fn read_dir(dir: &Path) -> Result<Vec<fs::DirEntry>, Error> {
    match fs::read_dir(dir) {
        Ok(rd) => rd
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Error::io(format!("list {}", dir.display()), e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(Error::io(format!("list {}", dir.display()), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    fn recipe() -> Recipe {
        Recipe {
            suite: "bookworm".into(),
            mirror: "http://deb.debian.org/debian".into(),
            packages: vec!["python3".into()],
            extra: Vec::new(),
        }
    }

    /// A built image `id` in `cache` last used `ago` ago.
    fn image(cache: &Path, id: &str, ago: Duration) -> PathBuf {
        let dir = cache.join(id);
        fs::create_dir_all(dir.join("rootfs")).unwrap();
        fs::write(dir.join("recipe.txt"), "recipe").unwrap();
        fs::File::open(&dir)
            .unwrap()
            .set_modified(SystemTime::now() - ago)
            .unwrap();
        dir
    }

    fn age(dir: &Path) -> Duration {
        fs::metadata(dir)
            .unwrap()
            .modified()
            .unwrap()
            .elapsed()
            .unwrap()
    }

    #[test]
    fn while_extra_packages_are_installed_the_image_forbids_service_starts_and_afterwards_it_does_not(
    ) {
        let root = tempfile::tempdir().unwrap();
        let policy = root.path().join("usr/sbin/policy-rc.d");
        {
            let _denied = ServiceStartsDenied::install(root.path()).unwrap();
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                fs::metadata(&policy).unwrap().permissions().mode() & 0o777,
                0o755
            );
            // What invoke-rc.d runs (`policy-rc.d <service> <action>`): 101, action forbidden.
            let status = std::process::Command::new(&policy)
                .args(["mariadb", "start"])
                .status()
                .unwrap();
            assert_eq!(status.code(), Some(101));
        }
        assert!(!policy.exists(), "removed: the hosts start their services");
        // An image's own policy is left alone.
        fs::write(&policy, "#!/bin/sh\nexit 0\n").unwrap();
        drop(ServiceStartsDenied::install(root.path()).unwrap());
        assert_eq!(fs::read_to_string(&policy).unwrap(), "#!/bin/sh\nexit 0\n");
    }

    #[test]
    fn while_extra_packages_are_installed_the_image_has_proc_mounted_and_afterwards_no_mount() {
        // Needs root (mount), as the sandbox does.
        let root = tempfile::tempdir().unwrap();
        let proc = root.path().join("proc");
        {
            let _proc = ProcMounted::mount(root.path()).unwrap();
            assert!(proc.join("self/status").exists(), "proc is mounted");
        }
        assert!(!proc.join("self").exists(), "unmounted");
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(!mountinfo.contains(&proc.display().to_string()));
    }

    #[test]
    fn finding_a_cached_image_marks_it_used_so_a_day_without_it_does_not_collect_it() {
        let cache = tempfile::tempdir().unwrap();
        let r = recipe();
        let dir = image(cache.path(), &r.id(), Duration::from_secs(3 * 24 * 3600));
        assert_eq!(ensure(cache.path(), &r, &Ui::new(true)).unwrap(), r.id());
        assert!(age(&dir) < Duration::from_secs(60), "{:?}", age(&dir));
        collect_garbage(cache.path(), &[], &Ui::new(true)).unwrap();
        assert!(dir.is_dir(), "used just now: kept");
    }

    #[test]
    fn garbage_collection_removes_only_images_unused_for_a_day_and_not_in_use() {
        let cache = tempfile::tempdir().unwrap();
        let day = Duration::from_secs(24 * 3600);
        let old = image(cache.path(), "base-bookworm-old", day * 2);
        let in_use = image(cache.path(), "base-bookworm-inuse", day * 2);
        let recent = image(cache.path(), "base-bookworm-recent", day / 2);
        let interrupted = image(cache.path(), "base-bookworm-x.tmp", day * 2);
        let other = image(cache.path(), "apt-archives", day * 2);
        collect_garbage(
            cache.path(),
            &["base-bookworm-inuse".to_string()],
            &Ui::new(true),
        )
        .unwrap();
        assert!(!old.exists() && !interrupted.exists());
        assert!(in_use.is_dir() && recent.is_dir() && other.is_dir());
    }
}
