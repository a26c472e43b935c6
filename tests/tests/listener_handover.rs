//! The library's hand-over (S28, S29): a reactor exports its Unix-domain listener, the
//! descriptor crosses a hand-over channel with its name, a second reactor adopts it and
//! confirms, and the first releases it: clients are served by the second, and the socket file
//! the first reactor created stays in place for it (neither removes it).

use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use evdrive_tests::{TempDir, WAIT};
use protocols::echo::Echo;
use reactor::activation::SocketKind;
use reactor::restart::Channel;
use reactor::{ListenOptions, Reactor, UnixAddr, UnixListenOptions};

#[test]
fn an_exported_listener_serves_in_its_successor_and_keeps_its_file() -> io::Result<()> {
    evdrive_tests::init_log();
    let dir = TempDir::new("handover-lib")?;
    let path = dir.join("echo.sock");
    let mut old = Reactor::new(())?;
    let id = old.listen_unix(
        &UnixAddr::Path(path.clone()),
        UnixListenOptions::default(),
        |_| Echo,
    )?;
    let exported = old.cx().export_listeners()?;
    assert_eq!(exported.len(), 1);
    assert_eq!(exported[0].id, id);
    assert_eq!(exported[0].addr.unix(), Some(&UnixAddr::Path(path.clone())));

    // The hand-over, both ends in this process.
    let (to_successor, from_old) = Channel::pair()?;
    to_successor.send_listeners(&[("web", exported[0].fd.as_fd())])?;
    drop(exported);
    let mut received = from_old.receive_listeners(WAIT)?;
    assert_eq!(received.len(), 1);
    let socket = received.pop().expect("one");
    assert_eq!(
        (socket.name(), socket.kind()),
        (Some("web"), SocketKind::UnixListener)
    );
    let mut successor = Reactor::new(())?;
    successor.adopt_unix_listener(
        socket.into_unix_listener()?,
        ListenOptions::default(),
        |_| Echo,
    )?;
    from_old.confirm_serving()?;
    assert_eq!(to_successor.await_serving(WAIT)?, std::process::id());
    assert!(old.cx().release_listener(id));
    assert!(old.cx().listeners().is_empty());
    assert!(path.exists(), "released, the file stays for the successor");

    // A client is served by the successor; the old reactor, turned too, accepts nothing.
    let (done, finished) = mpsc::channel();
    let client_path = path.clone();
    std::thread::spawn(move || {
        let run = || -> io::Result<Vec<u8>> {
            let mut c = UnixStream::connect(&client_path)?;
            c.set_read_timeout(Some(WAIT))?;
            c.write_all(b"handed over\n")?;
            let mut back = vec![0; 12];
            c.read_exact(&mut back)?;
            Ok(back)
        };
        let _ = done.send(run());
    });
    let deadline = Instant::now() + WAIT;
    let echoed = loop {
        successor.turn(Some(Duration::from_millis(10)))?;
        old.turn(Some(Duration::ZERO))?;
        if let Ok(result) = finished.try_recv() {
            break result?;
        }
        assert!(Instant::now() < deadline, "the client was not served");
    };
    assert_eq!(echoed, b"handed over\n");
    assert_eq!(successor.stats().accepted, 1);
    assert_eq!(old.stats().accepted, 0);

    // Neither removes the file: the old one released it, the successor adopted it.
    drop(old);
    drop(successor);
    assert!(path.exists());
    Ok(())
}
