//! A graceful shutdown ends UDP sockets (S30, S31) over real sockets on 127.0.0.1: the loop's
//! `run` returns only once its UDP socket is closed, the handler hears `Shutdown` once, no
//! descriptor of the process holds the port afterwards, and the reactor's counters and socket list show the datagrams; the
//! `evdrive udp-echo` sample answers `socat`, prints its socket on SIGUSR1 and exits 0 on
//! SIGTERM with its socket closed.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use evdrive_tests::{evdrive_binary, localhost, wait_child, Running, WAIT};
use reactor::{CloseReason, Datagrams, Reactor, UdpConfig, UdpCx};

/// What the handler saw.
#[derive(Default)]
struct Log {
    datagrams: usize,
    closed: Vec<CloseReason>,
}

/// Echoes every datagram and records its close.
struct Echo;

impl Datagrams<Log> for Echo {
    fn on_datagram(&mut self, cx: &mut UdpCx<'_, Log>, data: &[u8], from: SocketAddr) {
        cx.app().datagrams += 1;
        cx.send_to(data, from).expect("a send on loopback");
    }
    fn on_close(&mut self, app: &mut Log, reason: CloseReason) {
        app.closed.push(reason);
    }
}

/// S30: three datagrams echoed, counted in `Stats` and the socket list; then `shutdown` and
/// `run`: it returns with the socket closed (once, `Shutdown`) and its port free to bind.
#[test]
fn run_returns_after_the_shutdown_closed_the_udp_socket() -> io::Result<()> {
    evdrive_tests::init_log();
    let mut reactor = Reactor::new(Log::default())?;
    let id = reactor.cx().bind_udp(localhost(), UdpConfig::new(), Echo)?;
    let addr = reactor.cx().udp_local_addr(id).expect("bound");
    let client = UdpSocket::bind(localhost())?;
    client.set_read_timeout(Some(WAIT))?;
    let mut reply = [0u8; 16];
    for seq in 0..3u8 {
        client.send_to(&[seq; 5], addr)?;
        let deadline = Instant::now() + WAIT;
        while reactor.app().datagrams <= seq as usize {
            assert!(Instant::now() < deadline, "datagram {seq} never arrived");
            reactor.turn(Some(Duration::from_millis(10)))?;
        }
        let (n, from) = client.recv_from(&mut reply)?;
        assert_eq!((&reply[..n], from), (&[seq; 5][..], addr));
    }
    let stats = reactor.stats();
    assert_eq!(stats.udp_sockets, 1);
    assert_eq!((stats.datagrams_in, stats.datagrams_out), (3, 3));
    assert_eq!(stats.datagrams_dropped, 0);
    let sockets = reactor.udp_sockets();
    assert_eq!(sockets.len(), 1);
    assert_eq!((sockets[0].id, sockets[0].local), (id, Some(addr)));
    assert_eq!(sockets[0].state, "open");
    assert!(
        sockets[0].to_string().contains("in 3 out 3"),
        "{}",
        sockets[0]
    );
    assert!(
        reactor.connections().is_empty(),
        "a UDP socket is not a connection"
    );

    assert!(
        udp_port_held_here(addr.port())?,
        "the open socket is not seen in /proc: the check below would prove nothing"
    );
    reactor.shutdown(Duration::from_secs(1));
    let started = Instant::now();
    reactor.run()?;
    assert!(started.elapsed() < WAIT);
    assert_eq!(reactor.app().closed.len(), 1);
    assert!(matches!(reactor.app().closed[0], CloseReason::Shutdown));
    assert_eq!(reactor.stats().udp_sockets, 0);
    assert!(reactor.udp_sockets().is_empty());
    assert!(reactor.cx().udp_stats(id).is_none(), "the socket is gone");
    // The descriptor is closed: no socket of this process is bound to the port any more.
    // (Binding the port again would prove it too, but another test may take the freed port.)
    assert!(
        !udp_port_held_here(addr.port())?,
        "a descriptor of this process is still bound to {addr}"
    );
    Ok(())
}

/// Whether a descriptor of this process is a UDP socket bound to `port`: the inodes
/// `/proc/net/udp` lists for the port, against the sockets `/proc/self/fd` holds. Only this
/// test binds UDP sockets in this process, so no other test can make it true.
fn udp_port_held_here(port: u16) -> io::Result<bool> {
    let wanted = format!(":{port:04X}");
    let table = std::fs::read_to_string("/proc/net/udp")?;
    let inodes: Vec<String> = table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local = fields.get(1)?;
            local
                .ends_with(&wanted)
                .then(|| fields.get(9).map(|i| format!("socket:[{i}]")))
                .flatten()
        })
        .collect();
    for entry in std::fs::read_dir("/proc/self/fd")? {
        // A descriptor closed while this walks is simply gone.
        if let Ok(target) = std::fs::read_link(entry?.path()) {
            if inodes.iter().any(|i| target.as_os_str() == i.as_str()) {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// A running `evdrive udp-echo` and the lines of its standard error.
struct UdpEcho {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl UdpEcho {
    /// Starts the sample on a free port; returns it and its address.
    fn start() -> io::Result<(UdpEcho, SocketAddr)> {
        let mut child = Command::new(evdrive_binary())
            .args(["udp-echo", "--listen", "127.0.0.1:0"])
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let stderr = child.stderr.take().expect("piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut server = UdpEcho {
            child,
            lines,
            seen: Vec::new(),
        };
        let marker = "evdrive udp-echo listening on ";
        let line = server.wait_line(|l| l.contains(marker));
        let at = line.find(marker).expect("matched") + marker.len();
        let addr = line[at..]
            .trim()
            .parse()
            .expect("an address after the marker");
        Ok((server, addr))
    }

    /// Waits up to [`WAIT`] for a line of standard error matching `pred`.
    fn wait_line(&mut self, pred: impl Fn(&str) -> bool) -> String {
        if let Some(line) = self.seen.iter().find(|l| pred(l)) {
            return line.clone();
        }
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if pred(&line) {
                        return line;
                    }
                }
                Err(_) => panic!("no such line from udp-echo; it printed: {:#?}", self.seen),
            }
        }
    }

    /// Sends `sig` to the sample.
    fn signal(&self, sig: libc::c_int) {
        // The pid is our child's, not yet reaped (it is reaped only through `self.child`), so
        // it names no other process.
        if let Err(e) = Running::signal_pid(self.child.id(), &sig.to_string()) {
            panic!("kill: {e}");
        }
    }
}

impl Drop for UdpEcho {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// S30, S31: `socat` gets its echo from `evdrive udp-echo`; SIGUSR1 prints the socket with its
/// counters; SIGTERM closes the socket and the process exits 0, its last line saying no socket
/// is left open.
#[test]
fn udp_echo_prints_its_socket_and_exits_0_on_sigterm() -> io::Result<()> {
    let (mut server, addr) = UdpEcho::start()?;
    let mut socat = Command::new("socat")
        .args(["-t", "1", "-", &format!("UDP:{addr}")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("running socat (installed?): {e}")))?;
    socat
        .stdin
        .take()
        .expect("piped")
        .write_all(b"hello udp\n")?;
    let output = socat.wait_with_output()?;
    assert!(output.status.success(), "socat: {:?}", output.status);
    assert_eq!(output.stdout, b"hello udp\n");

    server.signal(libc::SIGUSR1);
    let line = server.wait_line(|l| l.starts_with("udp#"));
    assert!(line.contains(&addr.to_string()), "{line}");
    assert!(line.contains(" open "), "{line}");
    assert!(line.contains("in 1 out 1 dropped 0"), "{line}");

    server.signal(libc::SIGTERM);
    let status = wait_child(&mut server.child, WAIT)?.expect("udp-echo exited after SIGTERM");
    assert_eq!(status.code(), Some(0), "{status}");
    server.wait_line(|l| l.contains("udp-echo: 0 sockets open, received 1, sent 1, dropped 0"));
    Ok(())
}
