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

/// Starts the ignored test `name` of this test binary in a child process that runs beside the
/// test (unlike [`run_in_child`], which waits for it), with `env` set and its standard output
/// piped, for tests that talk to another process. The test `name` starts with
/// `if !is_child(NAME) { return }`.
///
/// # Errors
/// The error of finding this test binary or of spawning it.
pub fn spawn_child(
    name: &str,
    env: &[(&str, &std::ffi::OsStr)],
) -> io::Result<std::process::Child> {
    let mut cmd = std::process::Command::new(std::env::current_exe()?);
    cmd.args([
        name,
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD_TEST_ENV, name)
    .stdin(std::process::Stdio::null())
    .stdout(std::process::Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn()
}

/// A directory of its own under the system's temporary directory, removed with what it holds
/// when dropped: for socket files.
#[derive(Debug)]
pub struct TempDir(std::path::PathBuf);

impl TempDir {
    /// Creates `evdrive-<what>-<pid>-<n>` under `std::env::temp_dir()`.
    ///
    /// # Errors
    /// The error of creating it.
    pub fn new(what: &str) -> io::Result<TempDir> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("evdrive-{what}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        Ok(TempDir(dir))
    }

    /// A path inside the directory.
    pub fn join(&self, name: &str) -> std::path::PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
