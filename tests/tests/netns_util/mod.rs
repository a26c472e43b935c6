//! Network faults for the end-to-end tests: two network namespaces joined by a veth pair, the
//! reactor in one and its peers in the other, and packet filter rules between them.
//!
//! Loopback never loses a packet, never answers with an ICMP error and never goes silent, so
//! the timeouts and close reasons that matter most in production need a real path to break.
//! [`NetPair`] makes one per test:
//!
//! ```text
//!   namespace "…a" (the reactor)            namespace "…b" (the peers, the filter)
//!   va 10.231.0.1/30  <-------- veth -------->  vb 10.231.0.2/30
//! ```
//!
//! # Implementation notes
//! - Both ends always live in namespaces the test made: nothing is ever sent from the host
//!   namespace, whose routes do not lead to these addresses (a packet sent there would leave
//!   the machine). Each pair has its own namespaces, so every pair uses the same two addresses.
//! - A socket belongs to the namespace of the thread that created it, for its whole life. The
//!   reactor thread enters namespace `a` (with `setns(2)`) before it creates any socket; peer
//!   sockets are created by a short-lived thread that enters `b` ([`NetPair::in_b`]) and are
//!   then used from the test thread.
//! - Filter rules ([`Fault`]) go into `b`'s `INPUT` (and `OUTPUT`) chains with `iptables`, as
//!   if the network or the peer's host failed; the reactor's namespace stays untouched.
//! - Namespaces are named after the process id and a counter, so parallel tests and parallel
//!   test processes never collide. Dropping the pair deletes them, also when a test panics;
//!   namespaces left by a crashed earlier run are deleted on first use, but only those whose
//!   name embeds the id of a process that no longer exists.
//! - Where namespaces cannot be made (not root, no `ip`, no `iptables`), [`NetPair::new`]
//!   fails with a message saying so: the fault suite fails rather than passing silently.

#![allow(dead_code)] // Each test file uses a different part.

mod probe;

#[allow(unused_imports)] // Each test file uses a different part.
pub use probe::{Probe, Report, Reports};

use std::fs::File;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsFd;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Once;
use std::time::{Duration, Instant};

use evdrive_tests::{wait_ready, Server, WAIT};
use reactor::{ConnConfig, ConnId};

/// The reactor's address, in namespace `a`.
pub const ADDR_A: Ipv4Addr = Ipv4Addr::new(10, 231, 0, 1);
/// The peers' address, in namespace `b`.
pub const ADDR_B: Ipv4Addr = Ipv4Addr::new(10, 231, 0, 2);

/// How much later than its configured time a timeout may end and still pass: not a speed goal,
/// only proof that it fires, met by a loaded two-core machine.
pub const SLACK: Duration = Duration::from_secs(3);

/// The start of every namespace name this module makes; the process id follows it.
const PREFIX: &str = "evdft";
/// Where `ip netns` keeps its namespaces (bind mounts named after them).
const NETNS_DIR: &str = "/run/netns";

/// Pairs made by this process so far: the counter in their names.
static PAIRS: AtomicUsize = AtomicUsize::new(0);
/// Leftovers of crashed runs are deleted once per process.
static SWEEP: Once = Once::new();

/// A way the path from the reactor (`a`) to its peers (`b`) fails, applied in `b` to all TCP
/// traffic from `a` (to UDP traffic for [`Fault::RejectUdpPortUnreachable`]).
#[derive(Clone, Copy, Debug)]
pub enum Fault {
    /// Every packet between the two is dropped, both ways: a silent peer, a cut cable.
    Drop,
    /// Every TCP segment from `a` is answered with a TCP reset.
    RejectReset,
    /// Every TCP segment from `a` is answered with ICMP host unreachable.
    RejectHostUnreachable,
    /// Every TCP segment from `a` is answered with ICMP network unreachable.
    RejectNetUnreachable,
    /// Every UDP datagram from `a` is answered with ICMP port unreachable, as if nothing were
    /// bound, even where a socket is.
    RejectUdpPortUnreachable,
}

impl Fault {
    /// The `iptables` rules, each a list of arguments.
    fn rules(self) -> Vec<Vec<String>> {
        let from_a = ADDR_A.to_string();
        let reject_proto = |proto: &str, with: &str| {
            vec![strings(&[
                "-A",
                "INPUT",
                "-s",
                &from_a,
                "-p",
                proto,
                "-j",
                "REJECT",
                "--reject-with",
                with,
            ])]
        };
        let reject = |with: &str| reject_proto("tcp", with);
        match self {
            Fault::Drop => vec![
                strings(&["-A", "INPUT", "-s", &from_a, "-j", "DROP"]),
                strings(&["-A", "OUTPUT", "-d", &from_a, "-j", "DROP"]),
            ],
            Fault::RejectReset => reject("tcp-reset"),
            Fault::RejectHostUnreachable => reject("icmp-host-unreachable"),
            Fault::RejectNetUnreachable => reject("icmp-net-unreachable"),
            Fault::RejectUdpPortUnreachable => reject_proto("udp", "icmp-port-unreachable"),
        }
    }
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// Two network namespaces joined by a veth pair; deleted when dropped.
///
/// # Invariant
/// Both namespaces exist (under [`NETNS_DIR`]) from `new` until `drop`.
#[derive(Debug)]
pub struct NetPair {
    /// The reactor's namespace.
    a: String,
    /// The peers' namespace, where the filter rules go.
    b: String,
}

impl NetPair {
    /// Makes the two namespaces, the veth pair between them and their addresses.
    ///
    /// # Errors
    /// If namespaces cannot be made here (not root, `ip` or `iptables` missing): the message
    /// says what the fault suite needs.
    pub fn new() -> io::Result<NetPair> {
        SWEEP.call_once(sweep_leftovers);
        let n = PAIRS.fetch_add(1, Ordering::Relaxed);
        let base = format!("{PREFIX}{}x{n}", std::process::id());
        let a = format!("{base}a");
        ip(&["netns", "add", &a]).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "the fault suite needs network namespaces (root and iproute2's `ip`), \
                     and `ip netns add` failed: {e}"
                ),
            )
        })?;
        // From here on the guard deletes whatever was made, also if a later step fails.
        let mut pair = NetPair {
            a,
            b: String::new(),
        };
        let b = format!("{base}b");
        ip(&["netns", "add", &b])?;
        pair.b = b;
        let (a, b) = (&pair.a, &pair.b);
        // The veth is made inside `a` with its peer end inside `b`, so the short interface
        // names never meet in the host namespace.
        ip(&[
            "-n", a, "link", "add", "va", "type", "veth", "peer", "name", "vb", "netns", b,
        ])?;
        ip(&["-n", a, "addr", "add", &format!("{ADDR_A}/30"), "dev", "va"])?;
        ip(&["-n", b, "addr", "add", &format!("{ADDR_B}/30"), "dev", "vb"])?;
        for (ns, dev) in [(a, "va"), (b, "vb"), (a, "lo"), (b, "lo")] {
            ip(&["-n", ns, "link", "set", dev, "up"])?;
        }
        // A device set up carries nothing until the kernel's link watch activates its queue,
        // which it may defer by up to a second when many links change at once (as when tests
        // make pairs in parallel): a SYN sent before then is dropped, and its retransmission
        // comes after a short connect timeout. The operational state turns UP in that same
        // step, so wait for it on both ends.
        for (ns, dev) in [(a, "va"), (b, "vb")] {
            wait_oper_up(ns, dev)?;
        }
        // Even then a packet can be lost while the link settles, and a test's single datagram
        // (or the single ICMP error it draws) is never sent again: prove the path with a
        // datagram each way, repeated until it crosses, which also resolves both neighbours.
        pair.probe_path()?;
        // Fail here, with a clear message, if the filter tool is missing.
        pair.iptables(&["-w", "-L", "INPUT", "-n"]).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("the fault suite needs `iptables` inside a namespace: {e}"),
            )
        })?;
        Ok(pair)
    }

    /// Starts a reactor with no listener on a thread that entered namespace `a` first, so
    /// every socket it creates lives there.
    ///
    /// # Errors
    /// If the thread cannot enter the namespace.
    pub fn reactor(&self) -> io::Result<Server<()>> {
        let path = ns_path(&self.a);
        Server::start(
            || (),
            move |_| {
                enter(&path)?;
                Ok(SocketAddr::from((ADDR_A, 0)))
            },
        )
    }

    /// Runs `f` on a thread that entered namespace `b` first and returns its result: sockets
    /// made by `f` live in `b` for their whole life, whichever thread uses them later.
    ///
    /// # Errors
    /// If the thread cannot enter the namespace, or what `f` returns.
    pub fn in_b<R, F>(&self, f: F) -> io::Result<R>
    where
        R: Send + 'static,
        F: FnOnce() -> io::Result<R> + Send + 'static,
    {
        in_namespace(ns_path(&self.b), f)
    }

    /// Sends a datagram from `a` to `b` and one back, repeating every 20 ms until both have
    /// crossed, at most [`WAIT`].
    fn probe_path(&self) -> io::Result<()> {
        let in_a = in_namespace(ns_path(&self.a), || UdpSocket::bind((ADDR_A, 0)))?;
        let in_b = self.in_b(|| UdpSocket::bind((ADDR_B, 0)))?;
        let step = Duration::from_millis(20);
        in_a.set_read_timeout(Some(step))?;
        in_b.set_read_timeout(Some(step))?;
        let to_b = in_b.local_addr()?;
        let deadline = Instant::now() + WAIT;
        let mut buf = [0u8; 8];
        while Instant::now() < deadline {
            in_a.send_to(b"probe", to_b)?;
            let Ok((_, from_a)) = in_b.recv_from(&mut buf) else {
                continue;
            };
            in_b.send_to(b"back", from_a)?;
            if in_a.recv_from(&mut buf).is_ok() {
                return Ok(());
            }
        }
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "no datagram crossed the new veth pair both ways",
        ))
    }

    /// A listener of the peers' namespace on a fresh port; connects from the reactor reach it.
    ///
    /// # Errors
    /// If it cannot be bound.
    pub fn peer_listener(&self) -> io::Result<TcpListener> {
        self.in_b(|| TcpListener::bind((ADDR_B, 0)))
    }

    /// Applies `fault` to the path: from now on, traffic from the reactor's namespace meets
    /// the rule in the peers' namespace.
    ///
    /// # Errors
    /// If `iptables` fails.
    pub fn break_path(&self, fault: Fault) -> io::Result<()> {
        for rule in fault.rules() {
            let mut args = vec!["-w"];
            args.extend(rule.iter().map(String::as_str));
            self.iptables(&args)?;
        }
        Ok(())
    }

    /// Sets a sysctl of the reactor's namespace (the `net.` ones are per namespace).
    ///
    /// # Errors
    /// If `sysctl` fails.
    pub fn sysctl_a(&self, key: &str, value: &str) -> io::Result<()> {
        run(Command::new("ip").args([
            "netns",
            "exec",
            &self.a,
            "sysctl",
            "-q",
            "-w",
            &format!("{key}={value}"),
        ]))
    }

    fn iptables(&self, args: &[&str]) -> io::Result<()> {
        run(Command::new("ip")
            .args(["netns", "exec", &self.b, "iptables"])
            .args(args))
    }
}

impl Drop for NetPair {
    fn drop(&mut self) {
        // Deleting a namespace removes its name; the kernel frees it (and the veth) once the
        // last socket or thread inside it is gone.
        for ns in [&self.a, &self.b] {
            if !ns.is_empty() {
                if let Err(e) = ip(&["netns", "del", ns]) {
                    eprintln!("deleting network namespace {ns}: {e}");
                }
            }
        }
    }
}

/// Deletes namespaces of this module whose name embeds the id of a process that no longer
/// exists (a run that crashed before its guards ran). Names of live processes, this one
/// included, are left alone.
fn sweep_leftovers() {
    let Ok(dir) = std::fs::read_dir(NETNS_DIR) else {
        return;
    };
    for entry in dir.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let Some((pid, _)) = rest.split_once('x') else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        if pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = ip(&["netns", "del", &name]);
        }
    }
}

/// Runs `f` on a thread that entered the namespace at `path` first, and returns its result.
fn in_namespace<R, F>(path: String, f: F) -> io::Result<R>
where
    R: Send + 'static,
    F: FnOnce() -> io::Result<R> + Send + 'static,
{
    std::thread::spawn(move || {
        enter(&path)?;
        f()
    })
    .join()
    .map_err(|_| io::Error::other("a thread in a test namespace panicked"))?
}

fn ns_path(name: &str) -> String {
    format!("{NETNS_DIR}/{name}")
}

/// Moves the calling thread into the network namespace at `path` (only this thread).
fn enter(path: &str) -> io::Result<()> {
    let ns = File::open(path)
        .map_err(|e| io::Error::new(e.kind(), format!("opening namespace {path}: {e}")))?;
    // Only the calling thread's network namespace changes.
    if let Err(e) = reactor::sys::enter_net_namespace(ns.as_fd()) {
        return Err(io::Error::new(
            e.kind(),
            format!("entering namespace {path}: {e}"),
        ));
    }
    Ok(())
}

fn ip(args: &[&str]) -> io::Result<()> {
    run(Command::new("ip").args(args))
}

/// Waits until `dev` in namespace `ns` is operationally up (its queue active), at most
/// [`WAIT`].
fn wait_oper_up(ns: &str, dev: &str) -> io::Result<()> {
    let path = std::env::var("PATH").unwrap_or_default();
    let deadline = Instant::now() + WAIT;
    loop {
        let out = Command::new("ip")
            .args(["-n", ns, "-o", "link", "show", "dev", dev])
            .env("PATH", format!("{path}:/usr/sbin:/sbin"))
            .output()?;
        if String::from_utf8_lossy(&out.stdout).contains("state UP") {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "{dev} in {ns} never came up: {}",
                    String::from_utf8_lossy(&out.stdout).trim()
                ),
            ));
        }
        // A condition polled with a deadline: the link watch runs within about a second.
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs a command to its end; an error carries the command and what it printed. The
/// administration tools (`ip`, `iptables`, `sysctl`) live in the `sbin` directories, which a
/// non-login shell's `PATH` may lack: they are searched last.
fn run(cmd: &mut Command) -> io::Result<()> {
    let path = std::env::var("PATH").unwrap_or_default();
    let out = cmd
        .env("PATH", format!("{path}:/usr/sbin:/sbin"))
        .output()
        .map_err(|e| io::Error::new(e.kind(), format!("running {cmd:?}: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// Accepts one connection on a listener of the peers' namespace, waiting at most [`WAIT`];
/// the stream gets read and write timeouts of [`WAIT`].
///
/// # Errors
/// If no connection arrives in time.
pub fn accept(listener: &TcpListener) -> io::Result<TcpStream> {
    use std::os::fd::AsFd;
    if !wait_ready(listener.as_fd(), libc::POLLIN, WAIT)? {
        return Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "no connection arrived",
        ));
    }
    let (stream, _) = listener.accept()?;
    stream.set_read_timeout(Some(WAIT))?;
    stream.set_write_timeout(Some(WAIT))?;
    Ok(stream)
}

/// Starts a connect from the reactor to `addr` with `probe` and `config`; returns its id.
///
/// # Errors
/// If the connect cannot even start.
pub fn connect(
    server: &Server<()>,
    addr: SocketAddr,
    probe: Probe,
    config: ConnConfig,
) -> io::Result<ConnId> {
    server.with(move |r| r.connect(addr, probe, config))
}

/// Checks that a timeout ended no earlier than `not_before` after the moment that armed it and
/// within [`SLACK`] after that.
///
/// # Panics
/// If it ended outside those bounds.
pub fn assert_bounded(what: &str, elapsed: Duration, not_before: Duration) {
    assert!(
        elapsed >= not_before,
        "{what} ended after {elapsed:?}, before its configured {not_before:?}"
    );
    assert!(
        elapsed <= not_before + SLACK,
        "{what} ended after {elapsed:?}, more than {SLACK:?} past its configured {not_before:?}"
    );
}
