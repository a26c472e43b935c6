//! The `evdrive` command-line binary, built for the tests that run it.

/// The `evdrive` command-line binary, built on first use with the cargo, profile and target
/// directory running the calling test (a test binary at `<target>/<profile>/deps/NAME-HASH`
/// finds it at `<target>/<profile>/evdrive`). The tests crate is not the binary's package, so
/// cargo does not build it for them.
///
/// # Panics
/// If the test does not run from a cargo target directory or the build fails.
pub fn evdrive_binary() -> &'static std::path::Path {
    static BINARY: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    BINARY.get_or_init(|| {
        let exe = std::env::current_exe().expect("the test's own path");
        let profile_dir = exe
            .parent()
            .and_then(|deps| deps.parent())
            .expect("the test runs from <target>/<profile>/deps");
        let target_dir = profile_dir.parent().expect("a target directory");
        let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") => "dev",
            Some(name) => name,
            None => panic!("no profile directory in {}", exe.display()),
        };
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = std::process::Command::new(cargo)
            .args(["build", "--quiet", "-p", "evdrive", "--bin", "evdrive"])
            .args(["--profile", profile])
            .arg("--target-dir")
            .arg(target_dir)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("running cargo build");
        assert!(status.success(), "cargo build -p evdrive: {status}");
        let binary = profile_dir.join("evdrive");
        assert!(binary.exists(), "no binary at {}", binary.display());
        binary
    })
}
