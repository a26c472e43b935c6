//! Tests run in a child process of their own, for process-wide state.

use std::io;

/// The environment variable naming the one test a child process started by
/// [`run_in_child`] is to run.
const CHILD_TEST_ENV: &str = "EVDRIVE_CHILD_TEST";

/// Runs the ignored test `name` of this test binary in a child process of its own, and fails
/// with the child's output unless it passes. For tests of process-wide state (signal
/// dispositions, children, descriptor limits) that would disturb the tests running beside them
/// in this process. The test `name` starts with `if !is_child(NAME) { return }`.
pub fn run_in_child(name: &str) -> io::Result<()> {
    let out = std::process::Command::new(std::env::current_exe()?)
        .args([
            name,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_TEST_ENV, name)
        .stdin(std::process::Stdio::null())
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{name} failed in its child process ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    // A filter that matched nothing would pass too: make sure the test ran.
    assert!(
        stdout.contains("1 passed"),
        "{name} did not run in its child process:\n{stdout}"
    );
    Ok(())
}

/// Whether this process is the child [`run_in_child`] started for test `name`.
pub fn is_child(name: &str) -> bool {
    std::env::var_os(CHILD_TEST_ENV).is_some_and(|v| v == name)
}
