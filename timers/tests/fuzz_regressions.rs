//! Replays every input kept under `fuzz/regressions/timer_wheel/` through
//! `evdrive_timers::fuzz::model`, the entry point of the `timer_wheel` fuzz target, plus hand-written
//! and random scripts, so that `cargo test` on stable Rust checks what the fuzzer found (S9).

use std::fs;
use std::io;
use std::path::Path;

use proptest::prelude::*;

#[test]
fn every_kept_input_passes() -> io::Result<()> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions/timer_wheel");
    let mut files: Vec<_> = fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<io::Result<_>>()?;
    files.retain(|p| {
        p.is_file()
            && !p
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
    });
    files.sort();
    assert!(!files.is_empty(), "no input kept for timer_wheel");
    for path in files {
        eprintln!("timer_wheel: {}", path.display());
        evdrive_timers::fuzz::model(&fs::read(&path)?);
    }
    Ok(())
}

#[test]
fn hand_written_scripts() {
    // Many timers on one deadline, then one sweep.
    let same: Vec<u8> = (0..50).flat_map(|_| [0, 8, 0]).chain([4, 7]).collect();
    evdrive_timers::fuzz::model(&same);
    // Every boundary, then one poll at a time to the end of time.
    let bounds: Vec<u8> = (0..8u8)
        .flat_map(|b| (0..3u8).flat_map(move |d| [0, 3, b, d]))
        .chain((0..30).flat_map(|_| [5, 7]))
        .collect();
    evdrive_timers::fuzz::model(&bounds);
    // Slack of every kind, resets and cancels of live and stale keys.
    let mixed: Vec<u8> = (0..=255u8)
        .flat_map(|i| [i % 6, i, i / 2, i / 3, 4])
        .collect();
    evdrive_timers::fuzz::model(&mixed);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Random scripts: the same invariants the fuzz target checks, on stable Rust.
    #[test]
    fn random_scripts_match_the_model(data in prop::collection::vec(any::<u8>(), 0..600)) {
        evdrive_timers::fuzz::model(&data);
    }
}
