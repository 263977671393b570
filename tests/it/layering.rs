//! Architecture rules the compiler and clippy cannot check. Printing: src/lib.rs shadows `print!`,
//! `println!` and `eprintln!` for the whole crate (closed pipes never panic), which hides them from
//! clippy's `print_stdout`/`print_stderr`; so this test keeps terminal output in the command layer, `ui`
//! and `lib.rs`'s error line, and domain modules return data or take a `Ui`/`impl Write`.

use std::path::{Path, PathBuf};

const PRINT_MACROS: [&str; 4] = ["println!", "print!(", "eprintln!", "eprint!("];

/// The files and folders of `src/` allowed to print.
fn may_print(rel: &Path) -> bool {
    rel.starts_with("commands") || rel == Path::new("ui.rs") || rel == Path::new("lib.rs")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Lines of `text` that print, outside comments (`//`, `//!`, `///`).
fn printing_lines(text: &str) -> Vec<(usize, String)> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim_start().starts_with("//"))
        .filter(|(_, l)| PRINT_MACROS.iter().any(|m| l.contains(m)))
        .map(|(i, l)| (i + 1, l.trim().to_string()))
        .collect()
}

#[test]
fn printing_lines_ignores_doc_examples_and_finds_real_calls() {
    let text =
        "//! println!(\"doc\");\n/// eprintln!(\"doc\");\nfn f() {\n    println!(\"x\");\n}\n";
    assert_eq!(
        printing_lines(text),
        vec![(4, "println!(\"x\");".to_string())]
    );
}

#[test]
fn only_the_command_layer_and_ui_print_to_the_terminal() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(
        files.len() > 50,
        "found only {} files under {}",
        files.len(),
        src.display()
    );
    let mut offenders = Vec::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap();
        if may_print(rel) {
            continue;
        }
        for (line, text) in printing_lines(&std::fs::read_to_string(&file).unwrap()) {
            offenders.push(format!("src/{}:{line}: {text}", rel.display()));
        }
    }
    assert!(
        offenders.is_empty(),
        "domain modules print; return the text or write through Ui / impl Write instead:\n{}",
        offenders.join("\n")
    );
}
