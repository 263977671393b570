//! Terminal output for humans: status lines and progress bars on stderr, silenced by `--quiet`.
//! Machine-readable output (`--json`, reports) goes to stdout or files and never through here.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Writes one line to stderr, ignoring a closed or broken stderr (terminal output never panics).
pub fn err_line(text: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{text}");
}

#[derive(Debug, Clone)]
pub struct Ui {
    quiet: bool,
}

impl Ui {
    pub fn new(quiet: bool) -> Self {
        Ui { quiet }
    }

    pub fn quiet(&self) -> bool {
        self.quiet
    }

    /// A one-line status message on stderr (suppressed by `--quiet`).
    pub fn info(&self, msg: impl AsRef<str>) {
        if !self.quiet {
            eprintln!("{}", msg.as_ref());
        }
    }

    /// A warning on stderr; shown even with `--quiet`.
    pub fn warn(&self, msg: impl AsRef<str>) {
        eprintln!("warning: {}", msg.as_ref());
    }

    /// A set of progress lines (one per host, say); hidden with `--quiet` or when stderr is not a terminal.
    pub fn multi(&self) -> MultiProgress {
        if self.quiet {
            MultiProgress::with_draw_target(ProgressDrawTarget::hidden())
        } else {
            MultiProgress::with_draw_target(ProgressDrawTarget::stderr())
        }
    }

    /// A spinner line with a prefix, added to `multi`.
    pub fn spinner(&self, multi: &MultiProgress, prefix: impl Into<String>) -> ProgressBar {
        let pb = multi.add(ProgressBar::new_spinner());
        pb.set_style(
            ProgressStyle::with_template("{spinner} {prefix:>10.bold} {wide_msg} {elapsed:>4}")
                .expect("static template")
                .tick_chars("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏ "),
        );
        pb.set_prefix(prefix.into());
        pb.enable_steady_tick(std::time::Duration::from_millis(120));
        pb
    }
}
