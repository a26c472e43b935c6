//! Unix-domain listeners as handles (S28): their stats name the path or abstract name they are
//! bound to, and a `std` Unix listener bound elsewhere can be adopted, its socket file left to
//! whoever made it.

mod common;

use std::io;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;

use common::{accepted_by, echo_through, turn_until, Echo};
use evdrive_reactor::{ListenAddr, ListenOptions, Reactor, UnixAddr, UnixListenOptions};

/// A directory of its own for this test's socket files, removed at the end.
struct TempDir(PathBuf);

impl TempDir {
    fn new(what: &str) -> io::Result<TempDir> {
        let dir =
            std::env::temp_dir().join(format!("evdrive-reactor-{what}-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        Ok(TempDir(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn unix_listener_stats_name_its_path_and_abstract_name() -> io::Result<()> {
    let dir = TempDir::new("stats")?;
    let path = dir.0.join("stats.sock");
    let name = format!("evdrive-reactor-stats-{}", std::process::id());
    let mut r = Reactor::new(())?;
    let on_path = r.listen_unix(
        &UnixAddr::from(path.clone()),
        UnixListenOptions::new(),
        |_| Echo,
    )?;
    let on_name = r.listen_unix(
        &UnixAddr::parse(&format!("@{name}")),
        UnixListenOptions::new(),
        |_| Echo,
    )?;
    let path_addr = r.cx().listener_stats(on_path).unwrap().local_addr;
    assert_eq!(path_addr, ListenAddr::Unix(UnixAddr::Path(path.clone())));
    assert_eq!(path_addr.to_string(), format!("unix:{}", path.display()));
    let name_addr = r.cx().listener_stats(on_name).unwrap().local_addr;
    assert_eq!(
        name_addr,
        ListenAddr::Unix(UnixAddr::Abstract(name.clone().into_bytes()))
    );
    assert_eq!(name_addr.unix().unwrap().to_string(), format!("@{name}"));
    assert_eq!(name_addr.to_string(), format!("unix:@{name}"));
    // No made-up IP address: asking for one is an error, not `0.0.0.0:0`.
    assert_eq!(
        r.listener_addr(on_path).unwrap_err().kind(),
        io::ErrorKind::Unsupported
    );
    // A TCP listener's stats carry its TCP address.
    let tcp = r.listen(
        "127.0.0.1:0".parse().unwrap(),
        ListenOptions::default(),
        |_, _| Echo,
    )?;
    let tcp_addr = r.cx().listener_stats(tcp).unwrap().local_addr;
    assert_eq!(tcp_addr.tcp(), Some(r.listener_addr(tcp)?));
    assert_ne!(tcp_addr.tcp().unwrap().port(), 0);
    Ok(())
}

#[test]
fn an_adopted_unix_listener_serves_queued_and_new_clients_and_leaves_its_file() -> io::Result<()> {
    let dir = TempDir::new("adopt")?;
    let path = dir.0.join("adopted.sock");
    // Bound elsewhere (as a parent process would), blocking, with a client already queued.
    let std_listener = UnixListener::bind(&path)?;
    let mut early = UnixStream::connect(&path)?;
    let mut r = Reactor::new(())?;
    let id = r.adopt_unix_listener(std_listener, ListenOptions::default(), |_| Echo)?;
    assert_eq!(
        r.cx().listener_stats(id).unwrap().local_addr,
        ListenAddr::Unix(UnixAddr::Path(path.clone()))
    );
    // Queued before the registration, accepted after it; made non-blocking, so the accept
    // loop ends at WouldBlock instead of hanging the turn.
    turn_until(&mut r, |r| accepted_by(r, id) == 1)?;
    assert_eq!(echo_through(&mut r, &mut early, b"adopted")?, b"adopted");
    let mut later = UnixStream::connect(&path)?;
    assert_eq!(echo_through(&mut r, &mut later, b"again")?, b"again");
    assert_eq!(accepted_by(&mut r, id), 2);
    // The reactor did not make the file: closing the listener leaves it, and so does
    // dropping the reactor; nobody answers on it any more.
    assert!(r.cx().close_listener(id));
    assert!(
        path.exists(),
        "an adopted listener's file was removed on close"
    );
    drop(r);
    assert!(
        path.exists(),
        "an adopted listener's file was removed on drop"
    );
    assert_eq!(
        UnixStream::connect(&path).unwrap_err().kind(),
        io::ErrorKind::ConnectionRefused
    );
    Ok(())
}

#[test]
fn an_adopted_abstract_unix_listener_reports_its_name() -> io::Result<()> {
    use std::os::linux::net::SocketAddrExt;

    let name = format!("evdrive-reactor-adopt-{}", std::process::id());
    let bound = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
    let std_listener = UnixListener::bind_addr(&bound)?;
    let mut r = Reactor::new(())?;
    let id = r.adopt_unix_listener(std_listener, ListenOptions::default(), |_| Echo)?;
    let addr = r.cx().listener_stats(id).unwrap().local_addr;
    assert_eq!(addr.to_string(), format!("unix:@{name}"));
    let mut client = UnixStream::connect_addr(&bound)?;
    assert_eq!(echo_through(&mut r, &mut client, b"named")?, b"named");
    Ok(())
}

/// Every log line of this test binary, for the test that reads what the accept loop says.
struct Lines(std::sync::Mutex<Vec<String>>);

impl log::Log for Lines {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        self.0.lock().unwrap().push(record.args().to_string());
    }
    fn flush(&self) {}
}

static LINES: Lines = Lines(std::sync::Mutex::new(Vec::new()));

#[test]
fn a_unix_listener_and_its_clients_are_logged_by_name_not_a_placeholder() -> io::Result<()> {
    log::set_logger(&LINES).expect("the only logger of this test binary");
    log::set_max_level(log::LevelFilter::Debug);
    let dir = TempDir::new("logs")?;
    let path = dir.0.join("logged.sock");
    let mut r = Reactor::new(())?;
    let id = r.listen_unix(
        &UnixAddr::from(path.clone()),
        UnixListenOptions::new(),
        |_| Echo,
    )?;
    let mut client = UnixStream::connect(&path)?;
    assert_eq!(echo_through(&mut r, &mut client, b"hello")?, b"hello");
    assert_eq!(accepted_by(&mut r, id), 1);
    let lines = LINES.0.lock().unwrap().clone();
    let named = format!("unix:{}", path.display());
    assert!(
        lines
            .iter()
            .any(|l| l.contains("listening on") && l.contains(&named)),
        "no line names {named}: {lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("accepted") && l.contains("a Unix-domain client")),
        "no accept line for the Unix client: {lines:?}"
    );
    // Other tests of this binary log too, concurrently; none may print the placeholder.
    assert!(
        !lines.iter().any(|l| l.contains("0.0.0.0:0")),
        "a placeholder address was logged: {lines:?}"
    );
    Ok(())
}
