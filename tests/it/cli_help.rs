//! `--help` of every command and subcommand, pinned as insta snapshots (tests/it/snapshots/), so wording
//! and wrapping changes show up in review. The command list is read from the help itself, so a new command
//! gets its snapshot (and a failing test until the snapshot is accepted).

fn help(args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = crate::support::pipeline(dir.path())
        .args(args)
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?} --help failed: {out:?}");
    String::from_utf8(out.stdout).expect("help is UTF-8")
}

/// The names under `Commands:` (without `help`).
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| l.trim() != "Commands:")
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect()
}

#[test]
fn help_of_every_command_keeps_its_wording() {
    let dir = tempfile::tempdir().unwrap();
    let settings = crate::support::snapshot_settings(dir.path());
    let top = help(&[]);
    let mut pages = vec![(vec![], top.clone())];
    for command in subcommands(&top) {
        let text = help(&[&command]);
        for sub in subcommands(&text) {
            pages.push((vec![command.clone(), sub.clone()], help(&[&command, &sub])));
        }
        pages.push((vec![command], text));
    }
    assert!(pages.len() > 8, "found only {} help pages", pages.len());
    settings.bind(|| {
        for (path, text) in pages {
            let name = if path.is_empty() {
                "help".to_string()
            } else {
                format!("help_{}", path.join("_"))
            };
            insta::assert_snapshot!(name, text);
        }
    });
}
