//! The project's rule, kept true: every `unsafe` of the workspace lives in the reactor's `sys`
//! module (`reactor/src/sys/`), each with its `// SAFETY:` reason, and everything else calls
//! the safe functions there. The crate roots say so too (`#![forbid(unsafe_code)]`, and
//! `#![deny(unsafe_code)]` in the reactor with `sys` allowed), but a crate root can lose its
//! attribute and a new crate (a fuzz target, a bench) may never get one: this test reads every
//! `.rs` file of the workspace outside `target/` and fails naming each one, outside `sys`,
//! whose code holds the keyword.
//!
//! Comments, string and character literals are skipped, and the keyword must be a whole
//! identifier, so a comment about `unsafe` or the lint name `unsafe_code` does not count.

use std::io;
use std::path::{Path, PathBuf};

/// The one directory where `unsafe` may appear, relative to the workspace root.
const ALLOWED: &str = "reactor/src/sys";

/// Lines (1-based) of `src` whose code, outside comments and literals, holds the identifier
/// `unsafe`.
fn unsafe_lines(src: &str) -> Vec<usize> {
    let c: Vec<char> = src.chars().collect();
    let ident = |ch: char| ch.is_alphanumeric() || ch == '_';
    let (mut i, mut line, mut found) = (0, 1, Vec::new());
    // Advances past `n` characters, counting newlines.
    let skip = |i: &mut usize, line: &mut usize, n: usize| {
        for _ in 0..n {
            if c.get(*i) == Some(&'\n') {
                *line += 1;
            }
            *i += 1;
        }
    };
    while i < c.len() {
        let next = c.get(i + 1).copied();
        match c[i] {
            '/' if next == Some('/') => {
                while i < c.len() && c[i] != '\n' {
                    i += 1;
                }
            }
            '/' if next == Some('*') => {
                let mut depth = 0;
                loop {
                    if i >= c.len() {
                        break;
                    }
                    if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                        depth += 1;
                        skip(&mut i, &mut line, 2);
                    } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                        depth -= 1;
                        skip(&mut i, &mut line, 2);
                        if depth == 0 {
                            break;
                        }
                    } else {
                        skip(&mut i, &mut line, 1);
                    }
                }
            }
            '"' => {
                skip(&mut i, &mut line, 1);
                while i < c.len() && c[i] != '"' {
                    let n = if c[i] == '\\' { 2 } else { 1 };
                    skip(&mut i, &mut line, n);
                }
                i += 1;
            }
            '\'' => {
                // A character literal ('a', '\n', '\''), or a lifetime ('a), left as it is.
                if next == Some('\\') {
                    i += 2;
                    while i < c.len() && c[i] != '\'' {
                        i += 1;
                    }
                    i += 1;
                } else if c.get(i + 2) == Some(&'\'') {
                    i += 3;
                } else {
                    i += 1;
                }
            }
            ch if ident(ch) => {
                let start = i;
                while i < c.len() && ident(c[i]) {
                    i += 1;
                }
                let word: String = c[start..i].iter().collect();
                // A raw string: r"…", r#"…"#, br"…" (the prefix ends right before it).
                if (word == "r" || word == "br") && matches!(c.get(i), Some('"' | '#')) {
                    let mut hashes = 0;
                    while c.get(i) == Some(&'#') {
                        hashes += 1;
                        i += 1;
                    }
                    if c.get(i) == Some(&'"') {
                        i += 1;
                        loop {
                            if i >= c.len() {
                                break;
                            }
                            if c[i] == '"' && (1..=hashes).all(|k| c.get(i + k) == Some(&'#')) {
                                i += 1 + hashes;
                                break;
                            }
                            skip(&mut i, &mut line, 1);
                        }
                    }
                } else if word == "unsafe" {
                    found.push(line);
                }
            }
            '\n' => {
                line += 1;
                i += 1;
            }
            _ => i += 1,
        }
    }
    found
}

/// Every `.rs` file under `dir`, skipping build output (`target`) and hidden directories.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if entry.file_type()?.is_dir() {
            if name != "target" && !name.starts_with('.') {
                rust_files(&path, out)?;
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
    Ok(())
}

#[test]
fn the_scanner_sees_code_and_skips_comments_and_literals() {
    assert_eq!(unsafe_lines("fn f() {\n    unsafe { g() }\n}\n"), vec![2]);
    assert_eq!(unsafe_lines("unsafe impl Send for X {}"), vec![1]);
    assert_eq!(unsafe_lines("let c = '\"';\nunsafe fn f() {}"), vec![2]);
    assert_eq!(unsafe_lines("fn f<'a>(x: &'a u8) { unsafe {} }"), vec![1]);
    let clean = "// unsafe here\n/* and unsafe /* nested unsafe */ there */\n\
                 #![forbid(unsafe_code)]\nlet s = \"unsafe \\\" unsafe\";\n\
                 let r = r#\"unsafe \"quoted\" \"#;\nlet c = 'u';\nlet not_unsafe = 1;\n";
    assert_eq!(unsafe_lines(clean), Vec::<usize>::new());
}

#[test]
fn unsafe_appears_only_in_the_reactors_sys_module() -> io::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests package sits in the workspace")
        .to_path_buf();
    let mut files = Vec::new();
    rust_files(&root, &mut files)?;
    assert!(
        files.iter().any(|f| f.ends_with("reactor/src/sys/mod.rs")),
        "the walk did not reach reactor/src/sys from {}",
        root.display()
    );
    let allowed = root.join(ALLOWED);
    let mut offenders = Vec::new();
    for file in &files {
        if file.starts_with(&allowed) {
            continue;
        }
        let lines = unsafe_lines(&std::fs::read_to_string(file)?);
        if !lines.is_empty() {
            let rel = file.strip_prefix(&root).unwrap_or(file);
            offenders.push(format!("{} (lines {lines:?})", rel.display()));
        }
    }
    assert!(
        offenders.is_empty(),
        "`unsafe` outside {ALLOWED}: move it behind a safe function there\n{}",
        offenders.join("\n")
    );
    Ok(())
}
