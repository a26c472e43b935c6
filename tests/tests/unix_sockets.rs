//! Unix-domain stream sockets (S28): the echo handler served on a path and on an abstract
//! name; a stale socket file replaced, a live one refused, a plain file refused; the file's
//! mode; the file removed on graceful shutdown unless another server replaced it; outgoing
//! connections and their refusal; the peer's credentials (S29).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::Duration;

use evdrive_tests::{observe, Event, Server, TempDir, WAIT};
use protocols::echo::Echo;
use reactor::{CloseKind, ConnConfig, Cx, PeerCredentials, Protocol, UnixAddr, UnixListenOptions};

/// A Unix listener has no TCP address; the test server's setup must return one.
fn no_tcp_addr() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 0))
}

/// Serves `Echo` on `addr` with `opts`.
fn echo_server(addr: UnixAddr, opts: UnixListenOptions) -> io::Result<Server<()>> {
    Server::start(
        || (),
        move |r| {
            r.listen_unix(&addr, opts, |_| Echo)?;
            Ok(no_tcp_addr())
        },
    )
}

fn echo_once(stream: &mut UnixStream) -> io::Result<()> {
    stream.set_read_timeout(Some(WAIT))?;
    stream.write_all(b"ping\n")?;
    let mut line = String::new();
    BufReader::new(&*stream).read_line(&mut line)?;
    assert_eq!(line, "ping\n");
    Ok(())
}

#[test]
fn echo_on_a_path_and_file_removed_on_graceful_shutdown() -> io::Result<()> {
    let dir = TempDir::new("unix")?;
    let path = dir.join("echo.sock");
    let server = echo_server(UnixAddr::from(path.clone()), UnixListenOptions::new())?;
    let mut client = UnixStream::connect(&path)?;
    echo_once(&mut client)?;
    drop(client);
    server.shutdown(Duration::from_secs(1))?;
    assert!(
        !path.exists(),
        "the socket file outlived a graceful shutdown"
    );
    Ok(())
}

#[test]
fn abstract_name_serves_and_leaves_no_file() -> io::Result<()> {
    let name = format!("evdrive-test-{}-abstract", std::process::id());
    let server = echo_server(
        UnixAddr::parse(&format!("@{name}")),
        UnixListenOptions::new(),
    )?;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
    let mut client = UnixStream::connect_addr(&addr)?;
    echo_once(&mut client)?;
    // A second listener on the same name is refused by the kernel.
    let again = server.with(move |r| {
        r.listen_unix(
            &UnixAddr::parse(&format!("@{name}")),
            UnixListenOptions::new(),
            |_| Echo,
        )
        .map(drop)
        .map_err(|e| e.kind())
    });
    assert_eq!(again, Err(io::ErrorKind::AddrInUse));
    server.shutdown(Duration::from_secs(1))
}

#[test]
fn stale_socket_file_is_replaced() -> io::Result<()> {
    let dir = TempDir::new("unix")?;
    let path = dir.join("stale.sock");
    // A server that died without removing its file.
    drop(UnixListener::bind(&path)?);
    assert!(path.exists());
    let server = echo_server(UnixAddr::from(path.clone()), UnixListenOptions::new())?;
    echo_once(&mut UnixStream::connect(&path)?)?;
    server.shutdown(Duration::from_secs(1))
}

#[test]
fn live_socket_is_never_taken() -> io::Result<()> {
    let dir = TempDir::new("unix")?;
    let path = dir.join("live.sock");
    let live = UnixListener::bind(&path)?;
    let err = echo_server(UnixAddr::from(path.clone()), UnixListenOptions::new())
        .expect_err("listened over a live server's socket");
    assert_eq!(err.kind(), io::ErrorKind::AddrInUse, "{err}");
    // The live server still owns its file: a client reaches it.
    let _client = UnixStream::connect(&path)?;
    live.set_nonblocking(false)?;
    let (_conn, _) = live.accept()?;
    Ok(())
}

#[test]
fn plain_file_at_the_path_is_refused() -> io::Result<()> {
    let dir = TempDir::new("unix")?;
    let path = dir.join("not-a-socket");
    std::fs::write(&path, b"data")?;
    let err = echo_server(UnixAddr::from(path.clone()), UnixListenOptions::new())
        .expect_err("listened over a plain file");
    assert_eq!(err.kind(), io::ErrorKind::AlreadyExists, "{err}");
    assert_eq!(std::fs::read(&path)?, b"data");
    Ok(())
}

#[test]
fn mode_is_applied_to_the_socket_file() -> io::Result<()> {
    let dir = TempDir::new("unix")?;
    for mode in [0o600, 0o666] {
        let path = dir.join(&format!("mode-{mode:o}.sock"));
        let server = echo_server(
            UnixAddr::from(path.clone()),
            UnixListenOptions::new().with_mode(Some(mode)),
        )?;
        let got = std::fs::metadata(&path)?.permissions().mode() & 0o777;
        assert_eq!(got, mode, "mode {got:o}, asked {mode:o}");
        server.shutdown(Duration::from_secs(1))?;
    }
    Ok(())
}

#[test]
fn a_replaced_file_is_left_to_its_new_owner() -> io::Result<()> {
    let dir = TempDir::new("unix")?;
    let path = dir.join("replaced.sock");
    let server = echo_server(UnixAddr::from(path.clone()), UnixListenOptions::new())?;
    // Another server takes the path over (as an operator's restart might).
    std::fs::remove_file(&path)?;
    let newer = UnixListener::bind(&path)?;
    server.shutdown(Duration::from_secs(1))?;
    assert!(
        path.exists(),
        "the old listener removed the newer server's socket"
    );
    drop(newer);
    Ok(())
}

/// Records its connection's peer credentials and whether it pretended to have an IP peer.
struct WhoIsThere;

impl Protocol<Vec<(io::Result<PeerCredentials>, bool)>> for WhoIsThere {
    fn on_open(&mut self, cx: &mut Cx<'_, Vec<(io::Result<PeerCredentials>, bool)>>) {
        let cred = cx.peer_credentials();
        let has_ip = cx.peer_addr().is_some();
        cx.app().push((cred, has_ip));
        cx.write(b"ok");
    }
    fn on_data(
        &mut self,
        _: &mut Cx<'_, Vec<(io::Result<PeerCredentials>, bool)>>,
        data: &[u8],
    ) -> usize {
        data.len()
    }
}

#[test]
fn peer_credentials_are_the_tests_own() -> io::Result<()> {
    let dir = TempDir::new("unix")?;
    let path = dir.join("cred.sock");
    let addr = UnixAddr::from(path.clone());
    let server = Server::start(Vec::new, move |r| {
        r.listen_unix(&addr, UnixListenOptions::new(), |_| WhoIsThere)?;
        Ok(no_tcp_addr())
    })?;
    let mut client = UnixStream::connect(&path)?;
    client.set_read_timeout(Some(WAIT))?;
    let mut ok = [0; 2];
    client.read_exact(&mut ok)?;
    let seen = server.with(|r| {
        r.app()
            .drain(..)
            .map(|(c, ip)| (c.map_err(|e| e.to_string()), ip))
            .collect::<Vec<_>>()
    });
    let [(cred, has_ip)] = &seen[..] else {
        panic!("expected one connection, saw {seen:?}");
    };
    let cred = cred.as_ref().expect("no credentials");
    assert_eq!(cred.pid as u32, std::process::id());
    let (uid, gid) = reactor::sys::user_ids();
    assert_eq!((cred.uid, cred.gid), (uid, gid));
    assert!(!has_ip, "a Unix connection reported an IP peer address");
    server.shutdown(Duration::from_secs(1))
}

#[test]
fn connect_unix_opens_and_a_dead_path_is_refused() -> io::Result<()> {
    let dir = TempDir::new("unix")?;
    let live_path = dir.join("live.sock");
    let dead_path = dir.join("dead.sock");
    let live = UnixListener::bind(&live_path)?;
    drop(UnixListener::bind(&dead_path)?);
    let (watch, mut seen) = observe();
    let (live_addr, dead_addr) = (
        UnixAddr::from(live_path.clone()),
        UnixAddr::from(dead_path.clone()),
    );
    let server = Server::start(
        || (),
        move |r| {
            r.cx()
                .connect_unix(&live_addr, watch.wrap(Echo), ConnConfig::default())?;
            r.cx()
                .connect_unix(&dead_addr, watch.wrap(Echo), ConnConfig::default())?;
            Ok(no_tcp_addr())
        },
    )?;
    seen.wait_for(WAIT, |e| matches!(e, Event::Open(_)));
    let (_, kind) = seen.wait_any_close();
    assert_eq!(kind, CloseKind::Refused);
    let (mut conn, _) = live.accept()?;
    echo_once(&mut conn)?;
    server.shutdown(Duration::from_secs(1))
}
