//! SIGINT and SIGTERM: stop what runs, clean up as an error would, say what was left, exit 128+N.
//!
//! Children ([`crate::process::Cmd`]) run in process groups of their own, so a Ctrl-C on the terminal
//! reaches only `pipeline`, which decides: on the first signal it forwards it to every running child's
//! whole group (ansible-playbook and its workers), sends SIGKILL to the groups still there after
//! [`CHILD_GRACE`], and lets the command unwind through its ordinary error path (the canary destroys its
//! hosts unless `--keep`, run directories holding `vars.json` are removed). Async stages that must stop at
//! once wait on [`cancelled`]. A second signal kills every child group, removes the run directories and
//! exits at once. Either way the exit code is 130 (SIGINT) or 143 (SIGTERM) and stderr names what was
//! stopped, cleaned up and left behind ([`report`]).
//!
//! Commands without cleanup of their own ([`Mode::Immediate`]) forward the signal to their children and
//! exit at once.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// How long a child group gets to stop after the forwarded signal before SIGKILL.
pub const CHILD_GRACE: Duration = Duration::from_secs(5);

/// The signals `pipeline` handles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Int,
    Term,
}

impl Signal {
    pub fn number(self) -> i32 {
        match self {
            Signal::Int => libc::SIGINT,
            Signal::Term => libc::SIGTERM,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Signal::Int => "SIGINT",
            Signal::Term => "SIGTERM",
        }
    }

    /// 130 for SIGINT, 143 for SIGTERM (128 + the signal number, as shells report it).
    pub fn exit_code(self) -> u8 {
        128 + self.number() as u8
    }

    fn from_code(code: u8) -> Option<Signal> {
        match code {
            1 => Some(Signal::Int),
            2 => Some(Signal::Term),
            _ => None,
        }
    }

    fn code(self) -> u8 {
        match self {
            Signal::Int => 1,
            Signal::Term => 2,
        }
    }
}

impl std::fmt::Display for Signal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The error a stage returns when a signal stopped it.
#[derive(Debug, thiserror::Error)]
#[error("stopped by {0}")]
pub struct Interrupted(pub Signal);

/// What the command does on the first signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Stop children, unwind through the command's cleanup, then exit 128+N.
    Graceful,
    /// Forward the signal to the children and exit 128+N at once.
    Immediate,
}

struct Child {
    pgid: i32,
    command: String,
    /// Running when the first signal came (so it was signalled, and its group is killed when it ends).
    signalled: bool,
}

struct Leftover {
    left: String,
    done: String,
    path: Option<PathBuf>,
}

#[derive(Default)]
struct Registry {
    children: BTreeMap<u64, Child>,
    leftovers: BTreeMap<u64, Leftover>,
    stopped: Vec<String>,
    cleaned: Vec<String>,
}

static NEXT: AtomicU64 = AtomicU64::new(1);
static REGISTRY: Mutex<Option<Registry>> = Mutex::new(None);

fn with<R>(f: impl FnOnce(&mut Registry) -> R) -> R {
    let mut guard = REGISTRY
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    f(guard.get_or_insert_with(Registry::default))
}

fn state() -> &'static tokio::sync::watch::Sender<u8> {
    static STATE: OnceLock<tokio::sync::watch::Sender<u8>> = OnceLock::new();
    STATE.get_or_init(|| tokio::sync::watch::channel(0).0)
}

/// The first signal received, if any.
pub fn received() -> Option<Signal> {
    Signal::from_code(*state().borrow())
}

/// Resolves when a signal has been received (at once if one already was).
pub async fn cancelled() -> Signal {
    let mut rx = state().subscribe();
    let code = match rx.wait_for(|c| *c != 0).await {
        Ok(c) => *c,
        // The sender is static and never dropped.
        Err(_) => return std::future::pending().await,
    };
    Signal::from_code(code).unwrap_or(Signal::Int)
}

fn kill_group(pgid: i32, sig: i32) {
    if pgid > 1 {
        // SAFETY: kill has no memory-safety preconditions; a negative PID addresses our child's group.
        unsafe {
            libc::kill(-pgid, sig);
        }
    }
}

/// Registers a running child (the leader of its own process group) until the guard drops, which must
/// happen after the child was waited for.
pub fn track_child(pid: u32, command: String) -> ChildGuard {
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    let pgid = pid as i32;
    with(|r| {
        r.children.insert(
            id,
            Child {
                pgid,
                command,
                signalled: false,
            },
        )
    });
    ChildGuard { id }
}

/// See [`track_child`].
pub struct ChildGuard {
    id: u64,
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(c) = with(|r| r.children.remove(&self.id)) {
            if c.signalled {
                // The leader is gone; workers it forked into its group may not be.
                kill_group(c.pgid, libc::SIGKILL);
            }
        }
    }
}

/// Something that exists until the guard drops (hosts, a run directory): named in the report when the
/// run ends by a signal while it is still there. `done` is what the report says once it was cleaned up;
/// `path` is removed on a forced exit (second signal).
pub fn leftover(
    left: impl Into<String>,
    done: impl Into<String>,
    path: Option<PathBuf>,
) -> LeftoverGuard {
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    with(|r| {
        r.leftovers.insert(
            id,
            Leftover {
                left: left.into(),
                done: done.into(),
                path,
            },
        )
    });
    LeftoverGuard { id }
}

/// See [`leftover`].
#[derive(Debug)]
pub struct LeftoverGuard {
    id: u64,
}

impl LeftoverGuard {
    /// It stays (e.g. hosts kept with `--keep`, or a teardown that failed): the report names it.
    pub fn keep(self) {
        std::mem::forget(self);
    }
}

impl Drop for LeftoverGuard {
    fn drop(&mut self) {
        let interrupted = received().is_some();
        with(|r| {
            if let Some(l) = r.leftovers.remove(&self.id) {
                if interrupted {
                    r.cleaned.push(l.done);
                }
            }
        });
    }
}

/// Installs the handlers; call once, inside the tokio runtime, before the command runs.
pub fn install(mode: Mode) -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    tokio::spawn(async move {
        loop {
            let sig = tokio::select! {
                _ = int.recv() => Signal::Int,
                _ = term.recv() => Signal::Term,
            };
            on_signal(sig, mode);
        }
    });
    Ok(())
}

fn on_signal(sig: Signal, mode: Mode) {
    if received().is_some() {
        crate::ui::err_line(&format!(
            "{sig} again: killing every child process and exiting now"
        ));
        force_exit();
    }
    state().send_replace(sig.code());
    let signalled: Vec<(u64, i32)> = with(|r| {
        r.children
            .iter_mut()
            .map(|(id, c)| {
                c.signalled = true;
                r.stopped
                    .push(format!("`{}` (process group {})", c.command, c.pgid));
                (*id, c.pgid)
            })
            .collect()
    });
    for (_, pgid) in &signalled {
        kill_group(*pgid, sig.number());
    }
    if mode == Mode::Immediate {
        for line in report() {
            crate::ui::err_line(&line);
        }
        std::process::exit(sig.exit_code().into());
    }
    crate::ui::err_line(&format!(
        "{sig} received: stopping{} and cleaning up (send it again to exit at once)",
        if signalled.is_empty() {
            String::new()
        } else {
            format!(" {} child process group(s)", signalled.len())
        }
    ));
    // Whatever has not stopped after the grace period is killed.
    std::thread::spawn(move || {
        std::thread::sleep(CHILD_GRACE);
        let still: Vec<i32> = with(|r| {
            signalled
                .iter()
                .filter(|(id, _)| r.children.contains_key(id))
                .map(|(_, pgid)| *pgid)
                .collect()
        });
        for pgid in still {
            kill_group(pgid, libc::SIGKILL);
        }
    });
}

/// Second signal: every child group killed, run directories removed, the report printed, exit.
fn force_exit() -> ! {
    let sig = received().unwrap_or(Signal::Int);
    let (groups, paths): (Vec<i32>, Vec<(PathBuf, String)>) = with(|r| {
        (
            r.children.values().map(|c| c.pgid).collect(),
            r.leftovers
                .values()
                .filter_map(|l| Some((l.path.clone()?, l.done.clone())))
                .collect(),
        )
    });
    for pgid in groups {
        kill_group(pgid, libc::SIGKILL);
    }
    for (path, done) in paths {
        if std::fs::remove_dir_all(&path).is_ok() {
            with(|r| {
                r.leftovers.retain(|_, l| l.path.as_ref() != Some(&path));
                r.cleaned.push(done);
            });
        }
    }
    for line in report() {
        crate::ui::err_line(&line);
    }
    std::process::exit(sig.exit_code().into())
}

/// What the signal stopped, what was cleaned up, and what is left (empty without a signal).
pub fn report() -> Vec<String> {
    let Some(sig) = received() else {
        return Vec::new();
    };
    with(|r| {
        let mut lines = vec![format!("interrupted by {sig}")];
        for s in &r.stopped {
            lines.push(format!("  stopped:     {s}"));
        }
        for c in &r.cleaned {
            lines.push(format!("  cleaned up:  {c}"));
        }
        if r.leftovers.is_empty() {
            lines.push("  left behind: nothing this run created".to_string());
        }
        for l in r.leftovers.values() {
            lines.push(format!("  left behind: {}", l.left));
        }
        lines
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_128_plus_the_signal_number() {
        assert_eq!(Signal::Int.exit_code(), 130);
        assert_eq!(Signal::Term.exit_code(), 143);
        assert_eq!(Signal::from_code(Signal::Term.code()), Some(Signal::Term));
    }
}
