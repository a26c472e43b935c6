//! `evdrive echo --listen unix:PATH` and `unix:@NAME` (S28) with real clients: `nc -U` and
//! `socat` get their bytes back, `--unix-mode` sets the file's mode, and SIGTERM's graceful
//! shutdown removes the socket file.

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use evdrive_tests::{evdrive_binary, Running, TempDir, WAIT};

/// The sample, killed if the test fails before it ends it.
struct Sample(Child);

impl Drop for Sample {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `evdrive echo` with `args` and waits for its "listening on" line.
fn start_echo(args: &[&str]) -> io::Result<Sample> {
    let mut child = Command::new(evdrive_binary())
        .arg("echo")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let stderr = child.stderr.take().expect("piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let sample = Sample(child);
    loop {
        let line = rx
            .recv_timeout(WAIT)
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "the sample never listened"))?;
        if line.contains("listening on unix:") {
            return Ok(sample);
        }
    }
}

/// Runs a client with `input` on its standard input and returns its standard output.
fn client(program: &str, args: &[&str], input: &[u8]) -> io::Result<Vec<u8>> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("running {program} (installed?): {e}")))?;
    child.stdin.take().expect("piped").write_all(input)?;
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(WAIT) {
        Ok(out) => out?,
        Err(_) => {
            // The child this function started and has not reaped.
            let _ = Running::signal_pid(pid, "KILL");
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("{program} hung"),
            ));
        }
    };
    assert!(out.status.success(), "{program}: {out:?}");
    Ok(out.stdout)
}

/// Ends the sample with SIGTERM and waits for a clean exit.
fn terminate(mut sample: Sample) -> io::Result<()> {
    // The sample this test started and has not reaped.
    let _ = Running::signal_pid(sample.0.id(), "TERM");
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        if let Some(status) = sample.0.try_wait()? {
            assert!(status.success(), "the sample exited with {status}");
            return Ok(());
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the sample ignored SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn path_arg(path: &Path) -> String {
    format!("unix:{}", path.display())
}

#[test]
fn echo_on_a_unix_path_with_nc_and_socat() -> io::Result<()> {
    let dir = TempDir::new("path")?;
    let path = dir.join("echo.sock");
    let sample = start_echo(&["--listen", &path_arg(&path), "--unix-mode", "600"])?;
    let mode = std::fs::metadata(&path)?.permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "mode {mode:o}");
    let input = b"hello over a unix socket\n\x00binary\xff\n".repeat(50);
    let p = path.to_str().expect("utf-8 path");
    assert_eq!(client("nc", &["-N", "-U", p], &input)?, input);
    let socat_target = format!("UNIX-CONNECT:{p}");
    assert_eq!(
        client("socat", &["-t", "5", "-", &socat_target], &input)?,
        input
    );
    terminate(sample)?;
    assert!(
        !path.exists(),
        "the socket file outlived a graceful shutdown"
    );
    Ok(())
}

#[test]
fn echo_on_an_abstract_name_with_socat() -> io::Result<()> {
    let name = format!("evdrive-cli-{}", std::process::id());
    let sample = start_echo(&["--listen", &format!("unix:@{name}")])?;
    let input = b"abstract\n".repeat(10);
    let target = format!("ABSTRACT-CONNECT:{name}");
    assert_eq!(client("socat", &["-t", "5", "-", &target], &input)?, input);
    terminate(sample)
}
