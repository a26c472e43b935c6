//! The echo handler against real-world clients: `nc` and `socat` as subprocesses.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;

use evdrive_tests::{observe, pattern, Observer, Running, Server, WAIT};
use protocols::echo::Echo;
use reactor::ListenOptions;

fn echo_server() -> io::Result<(Server<()>, Observer)> {
    let (watch, observer) = observe();
    let server = Server::listen(
        || (),
        ListenOptions::default(),
        move |_, _: SocketAddr| watch.wrap(Echo),
    )?;
    Ok((server, observer))
}

/// Runs `command` to completion with its stdout captured, killing it if it takes longer than
/// twice [`WAIT`].
fn run(mut command: Command, stdin: Stdio) -> io::Result<Output> {
    let program = command.get_program().to_string_lossy().into_owned();
    let child = command
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("running {program} (installed?): {e}")))?;
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(2 * WAIT) {
        Ok(output) => output,
        Err(_) => {
            // The child this function started, which has not been reaped (its waiting thread
            // has not returned).
            let _ = Running::signal_pid(pid, "KILL");
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("{program} did not finish"),
            ))
        }
    }
}

/// S10, S14: `nc -N` sends a few lines, half-closes on end of input, and gets every byte back before
/// the server closes.
#[test]
fn nc_round_trip() -> io::Result<()> {
    evdrive_tests::init_log();
    let (server, mut observer) = echo_server()?;
    let input = b"hello\nfrom netcat\n\x00binary\xff\n".repeat(100);
    let path = temp_file("nc", &input)?;
    let mut nc = Command::new("nc");
    nc.args(["-N", "127.0.0.1", &server.addr().port().to_string()]);
    let output = run(nc, Stdio::from(std::fs::File::open(&path)?));
    std::fs::remove_file(&path)?;
    let output = output?;
    assert!(output.status.success(), "{output:?}");
    assert_eq!(output.stdout, input);
    server.shutdown(WAIT)?;
    observer.assert_closed_once();
    Ok(())
}

/// S3, S14: `socat` streams a 5 MB file through the echo server and gets it back unchanged.
#[test]
fn socat_streams_a_large_file() -> io::Result<()> {
    evdrive_tests::init_log();
    let (server, mut observer) = echo_server()?;
    let input = pattern(0, 5_000_000);
    let path = temp_file("socat", &input)?;
    let mut socat = Command::new("socat");
    socat.args([
        "-t",
        "5",
        "-",
        &format!("TCP:127.0.0.1:{}", server.addr().port()),
    ]);
    let output = run(socat, Stdio::from(std::fs::File::open(&path)?));
    std::fs::remove_file(&path)?;
    let output = output?;
    assert!(output.status.success(), "{:?}", output.status);
    assert_eq!(output.stdout.len(), input.len());
    assert!(output.stdout == input, "the echo differs from the file");
    let stats = server.stats();
    assert_eq!(stats.bytes_in, input.len() as u64);
    assert_eq!(stats.bytes_out, input.len() as u64);
    server.shutdown(WAIT)?;
    observer.assert_closed_once();
    Ok(())
}

/// Writes `data` to a new file in the temporary directory, named after the test and the
/// process so that parallel runs do not collide.
fn temp_file(name: &str, data: &[u8]) -> io::Result<std::path::PathBuf> {
    let path = std::env::temp_dir().join(format!("evdrive-test-{name}-{}", std::process::id()));
    let mut f = std::fs::File::create(&path)?;
    f.write_all(data)?;
    Ok(path)
}
