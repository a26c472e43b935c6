//! Socket activation of the samples with a real parent, `systemd-socket-activate`: the sockets
//! it binds (named with `--fdname`) are served without `--listen`, a client that connected
//! before the server started is served, `LISTEN_PID` naming another process is ignored, a
//! socket of the wrong kind is refused with a clear error, and the variables are not passed on
//! to the process a restart starts. `udp-echo` serves an activated datagram socket.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::process::Command;

use evdrive_tests::{evdrive_binary, unassigned_port, Running, TempDir, WAIT};

/// The parent that binds the sockets and starts the server with them.
const ACTIVATE: &str = "systemd-socket-activate";

/// Fails unless `program` is installed (`.ci/run` installs it).
fn require(program: &str) {
    let found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()));
    assert!(found, "{program} is not installed (Debian package systemd)");
}

/// Starts the parent `command(port)` makes on a free port (`systemd-socket-activate` takes
/// no port 0), and waits until the parent listens on it. A port below the ephemeral range is
/// taken by no other test; should another program take it first, the parent says so and
/// exits, and another port is tried.
fn start_on_free_port(command: impl Fn(u16) -> Command) -> io::Result<(Running, u16)> {
    for _ in 0..5 {
        let port = unassigned_port()?;
        let mut server = Running::start(command(port))?;
        // "Listening on 127.0.0.1:PORT as 4." or "Failed to listen on 127.0.0.1:PORT: …".
        let line = server.wait_line(&format!("127.0.0.1:{port}"), WAIT)?;
        if line.starts_with("Listening on") {
            return Ok((server, port));
        }
    }
    Err(io::Error::other("no free port in 5 tries"))
}

/// Sends `msg` and expects exactly it back.
fn echo(mut stream: impl Read + Write, msg: &[u8]) -> io::Result<()> {
    stream.write_all(msg)?;
    let mut back = vec![0; msg.len()];
    stream.read_exact(&mut back)?;
    assert_eq!(back, msg, "echo differs");
    Ok(())
}

fn unix_client(path: &std::path::Path) -> io::Result<UnixStream> {
    let c = UnixStream::connect(path)?;
    c.set_read_timeout(Some(WAIT))?;
    Ok(c)
}

/// The echo sample under `systemd-socket-activate` with a Unix socket named `web` and a TCP
/// socket named `admin`: the first client connects before the server runs (the parent starts
/// it on the first connection) and gets its echo; the admin endpoint answers on its socket.
/// Then SIGUSR2 starts a successor: its environment holds no `LISTEN_*` variable.
#[test]
fn named_sockets_are_served_and_the_variables_not_passed_on() -> io::Result<()> {
    require(ACTIVATE);
    let dir = TempDir::new("activation")?;
    let path = dir.join("echo.sock");
    let (mut server, admin_port) = start_on_free_port(|admin_port| {
        // A failed attempt leaves its socket file: removed, so this parent can bind it.
        let _ = std::fs::remove_file(&path);
        let mut cmd = Command::new(ACTIVATE);
        cmd.arg("-l")
            .arg(&path)
            .arg("-l")
            .arg(format!("127.0.0.1:{admin_port}"))
            .arg("--fdname=web:admin")
            .arg(evdrive_binary())
            .args(["echo", "--shutdown-grace", "1"]);
        cmd
    })?;
    // Connected while nothing serves yet: the parent starts the server now.
    let first = unix_client(&path)?;
    let admin = server.wait_line("admin on", WAIT)?;
    let line = server.wait_line("listening on", WAIT)?;
    assert!(
        line.ends_with(&format!("listening on unix:{}", path.display())),
        "{line}"
    );
    echo(first, b"before the server ran\n")?;
    echo(unix_client(&path)?, b"after\n")?;
    // The socket named admin serves the admin endpoint.
    assert!(admin.ends_with(&format!("admin on 127.0.0.1:{admin_port}")));
    let mut http = TcpStream::connect(("127.0.0.1", admin_port))?;
    http.set_read_timeout(Some(WAIT))?;
    http.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
    let mut reply = String::new();
    http.read_to_string(&mut reply)?;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(
        reply.contains("evdrive_connections_accepted_total"),
        "{reply}"
    );

    // The successor a restart starts inherits this process's environment, without LISTEN_*.
    server.signal("USR2")?;
    let line = server.wait_line("took over the listeners", WAIT)?;
    let pid = successor_pid(&line);
    let successor = Guard(pid);
    let environ = std::fs::read(format!("/proc/{pid}/environ"))?;
    let vars: Vec<String> = environ
        .split(|b| *b == 0)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect();
    assert!(
        !vars.iter().any(|v| v.starts_with("LISTEN_")),
        "the successor saw {:?}",
        vars.iter()
            .filter(|v| v.starts_with("LISTEN_"))
            .collect::<Vec<_>>()
    );
    assert!(server.wait_exit(WAIT)?.success(), "{:?}", server.seen());
    echo(unix_client(&path)?, b"served by the successor\n")?;
    drop(successor);
    Ok(())
}

/// The pid in a successor's "evdrive … pid N took over the listeners" line.
fn successor_pid(line: &str) -> u32 {
    line.split_whitespace()
        .skip_while(|w| *w != "pid")
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no pid in {line:?}"))
}

/// A process this test did not start (a successor), ended when the test ends.
struct Guard(u32);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = Running::signal_pid(self.0, "KILL");
    }
}

/// `LISTEN_PID` naming another process: the descriptors are not for this one, which binds
/// its `--listen` address as usual and leaves the inherited socket alone.
#[test]
fn another_process_pid_is_ignored() -> io::Result<()> {
    require(ACTIVATE);
    let dir = TempDir::new("activation-pid")?;
    let path = dir.join("echo.sock");
    let own = dir.join("own.sock");
    // `exec` keeps the shell's pid, which the parent put in LISTEN_PID; 1 is another process.
    let script = format!(
        "LISTEN_PID=1 exec {} echo --listen unix:{}",
        evdrive_binary().display(),
        own.display()
    );
    let mut cmd = Command::new(ACTIVATE);
    cmd.arg("-l").arg(&path).args(["sh", "-c", &script]);
    let mut server = Running::start(cmd)?;
    server.wait_line(&format!("Listening on {}", path.display()), WAIT)?;
    // The parent starts the program on the first connection; it is never served.
    let _waiting = UnixStream::connect(&path)?;
    let line = server.wait_line("listening on", WAIT)?;
    assert!(line.ends_with(&format!("unix:{}", own.display())), "{line}");
    echo(unix_client(&own)?, b"own socket\n")?;
    assert!(
        !server
            .seen()
            .iter()
            .any(|l| l.contains("socket activation")),
        "{:?}",
        server.seen()
    );
    Ok(())
}

/// A socket named `admin` that is not a TCP socket: the sample refuses to start and says
/// what the socket is.
#[test]
fn a_socket_of_the_wrong_kind_is_refused_clearly() -> io::Result<()> {
    require(ACTIVATE);
    let dir = TempDir::new("activation-kind")?;
    let path = dir.join("admin.sock");
    let mut cmd = Command::new(ACTIVATE);
    cmd.arg("-l")
        .arg(&path)
        .arg("--fdname=admin")
        .arg(evdrive_binary())
        .args(["echo", "--listen", "127.0.0.1:0"]);
    let mut server = Running::start(cmd)?;
    server.wait_line(&format!("Listening on {}", path.display()), WAIT)?;
    let _waiting = UnixStream::connect(&path)?;
    server.wait_line(
        "inherited descriptor 3 (admin) is a listening Unix-domain socket, not a listening TCP socket",
        WAIT,
    )?;
    assert!(!server.wait_exit(WAIT)?.success());
    Ok(())
}

/// `udp-echo` under `systemd-socket-activate --datagram`: the datagram that made the parent
/// start the server is waiting in the socket and is echoed, and so is the next.
#[test]
fn udp_echo_serves_an_activated_datagram_socket() -> io::Result<()> {
    require(ACTIVATE);
    let (mut server, port) = start_on_free_port(|port| {
        let mut cmd = Command::new(ACTIVATE);
        cmd.args(["--datagram", "-l", &format!("127.0.0.1:{port}")])
            .arg(evdrive_binary())
            .arg("udp-echo");
        cmd
    })?;
    let client = std::net::UdpSocket::bind("127.0.0.1:0")?;
    client.set_read_timeout(Some(WAIT))?;
    client.connect(("127.0.0.1", port))?;
    client.send(b"wake up")?;
    let mut buf = [0u8; 64];
    let n = client.recv(&mut buf)?;
    assert_eq!(&buf[..n], b"wake up");
    let line = server.wait_line("listening on", WAIT)?;
    assert!(line.ends_with(&format!("127.0.0.1:{port}")), "{line}");
    client.send(b"again")?;
    let n = client.recv(&mut buf)?;
    assert_eq!(&buf[..n], b"again");
    Ok(())
}
