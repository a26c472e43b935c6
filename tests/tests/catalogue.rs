//! The behaviour catalogue, `BEHAVIOURS.md`, checked against the tree it describes.
//!
//! Code, docs and tests cite guaranteed behaviours by ID (an `S` and a number). A reader looks
//! an ID up in the catalogue, so the catalogue must have an entry for every ID cited anywhere
//! (in a `.rs` file, a README or ARCHITECTURE.md), and every test it names as evidence must
//! exist: a renamed or deleted test would otherwise leave the catalogue pointing at nothing.
//!
//! The scan is plain text over the repository (every folder but `target` and hidden ones), so
//! it sees the fuzz workspace and the benchmarks too. Test functions are found by their
//! `fn NAME(` text, wherever they moved.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// The number of behaviours the catalogue describes.
const BEHAVIOURS: u32 = 31;

fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate lives in a folder of the repository")
        .to_path_buf()
}

fn read_catalogue() -> io::Result<String> {
    fs::read_to_string(repository_root().join("BEHAVIOURS.md"))
}

/// Every file under `dir` whose name `keep` accepts, skipping build output and hidden folders.
fn files_under(dir: &Path, keep: &dyn Fn(&Path) -> bool, out: &mut Vec<PathBuf>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if entry.file_type()?.is_dir() {
            if name != "target" && !name.starts_with('.') {
                files_under(&path, keep, out)?;
            }
        } else if keep(&path) {
            out.push(path);
        }
    }
    Ok(())
}

/// The files whose citations the catalogue must cover: Rust sources, READMEs, ARCHITECTURE.md.
fn citing_files() -> io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let keep = |p: &Path| {
        p.extension().is_some_and(|e| e == "rs")
            || p.file_name()
                .is_some_and(|n| n == "README.md" || n == "ARCHITECTURE.md")
    };
    files_under(&repository_root(), &keep, &mut files)?;
    Ok(files)
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The behaviour IDs cited in `text`: an `S` and one or two digits standing as a word of their
/// own (so a range written `S2–S7` cites both ends, and `S123` or `SIGTERM` cite nothing).
fn cited_ids(text: &str) -> BTreeSet<u32> {
    let b = text.as_bytes();
    let mut ids = BTreeSet::new();
    for i in 0..b.len() {
        if b[i] != b'S' || (i > 0 && is_word(b[i - 1])) {
            continue;
        }
        let digits = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        let end = i + 1 + digits;
        if (1..=2).contains(&digits) && (end == b.len() || !is_word(b[end])) {
            ids.insert(text[i + 1..end].parse().expect("one or two digits"));
        }
    }
    ids
}

/// The IDs that have an entry (a `### S<n>: title` heading), in the order they appear.
fn entries(catalogue: &str) -> Vec<u32> {
    catalogue
        .lines()
        .filter_map(|line| line.strip_prefix("### S"))
        .filter_map(|rest| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .collect()
}

/// The test functions the catalogue names: every `` `name` `` in a "- Tests:" item (which may
/// run over several lines, until the next item or heading) that is a plain snake-case name.
fn named_tests(catalogue: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut in_tests = false;
    for line in catalogue.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("- ") || trimmed.starts_with('#') || trimmed.is_empty() {
            in_tests = trimmed.starts_with("- Tests:");
        }
        if !in_tests {
            continue;
        }
        // Backticked spans are the odd-numbered pieces between backticks.
        for span in line.split('`').skip(1).step_by(2) {
            let is_name = !span.is_empty()
                && span
                    .bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_');
            if is_name {
                names.insert(span.to_string());
            }
        }
    }
    names
}

#[test]
fn every_cited_behaviour_has_an_entry() -> io::Result<()> {
    let listed: BTreeSet<u32> = entries(&read_catalogue()?).into_iter().collect();
    let root = repository_root();
    let mut missing: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    let files = citing_files()?;
    assert!(
        files.len() > 50,
        "the scan found only {} files: is the root right?",
        files.len()
    );
    for file in files {
        let text = fs::read_to_string(&file)?;
        for id in cited_ids(&text).difference(&listed) {
            let shown = file.strip_prefix(&root).unwrap_or(&file);
            missing
                .entry(*id)
                .or_default()
                .push(shown.display().to_string());
        }
    }
    assert!(
        missing.is_empty(),
        "cited but not in BEHAVIOURS.md (ID: files): {missing:?}"
    );
    Ok(())
}

#[test]
fn the_catalogue_has_one_entry_per_behaviour_in_order() -> io::Result<()> {
    let listed = entries(&read_catalogue()?);
    let expected: Vec<u32> = (1..=BEHAVIOURS).collect();
    assert_eq!(listed, expected, "entries of BEHAVIOURS.md, in order");
    Ok(())
}

#[test]
fn every_test_the_catalogue_names_exists() -> io::Result<()> {
    let names = named_tests(&read_catalogue()?);
    assert!(
        names.len() > 50,
        "found only {} test names in BEHAVIOURS.md: did its format change?",
        names.len()
    );
    let mut sources = Vec::new();
    let keep = |p: &Path| p.extension().is_some_and(|e| e == "rs");
    files_under(&repository_root(), &keep, &mut sources)?;
    let mut code = String::new();
    for file in sources {
        code.push_str(&fs::read_to_string(file)?);
    }
    let absent: Vec<&String> = names
        .iter()
        .filter(|name| !code.contains(&format!("fn {name}(")))
        .collect();
    assert!(
        absent.is_empty(),
        "tests named in BEHAVIOURS.md but defined nowhere: {absent:?}"
    );
    Ok(())
}

#[test]
fn the_readme_links_the_catalogue() -> io::Result<()> {
    let readme = fs::read_to_string(repository_root().join("README.md"))?;
    assert!(
        readme.contains("](BEHAVIOURS.md)"),
        "README.md does not link BEHAVIOURS.md"
    );
    Ok(())
}

/// The scanners themselves: what they must find and what they must leave alone, so that the
/// checks above cannot pass by finding nothing.
#[test]
fn the_scanners_find_citations_entries_and_test_names() {
    let text = "S2–S7 (S11), S1x XS3 S123 SIGTERM S5. S_9 [S31]";
    let expected: BTreeSet<u32> = [2, 7, 11, 5, 31].into_iter().collect();
    assert_eq!(cited_ids(text), expected);

    let md = "\
# Title\n\
\n\
### S1: first (Required)\n\
Text with `not_a_test` outside a test item.\n\
- Where: `Core::accept`, `some_fn`.\n\
- Tests: `first_test` (tests/tests/a.rs);\n  `second_test`, `Not::a_name` (unit test).\n\
\n\
### S2: second (Offered)\n\
- Tests: no test yet.\n\
### S10: tenth\n";
    assert_eq!(entries(md), vec![1, 2, 10]);
    let names: Vec<String> = named_tests(md).into_iter().collect();
    assert_eq!(names, ["first_test", "second_test"]);
}
