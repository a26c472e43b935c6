//! Socket options as an accepted connection sees them (S13, S17, S20): read back from the
//! kernel with `getsockopt` on the server's own socket, not from the values the test passed.

use std::io;
use std::sync::mpsc::{self, Sender};
use std::time::Duration;

use evdrive_tests::{connect, Server, WAIT};
use reactor::{ConnConfig, Cx, Keepalive, ListenOptions, Protocol};

/// What a [`Probe`] read back from its socket.
#[derive(Debug)]
struct Readback {
    keepalive: Option<Keepalive>,
    nodelay: bool,
    linger_before: Option<Duration>,
    linger_abortive: Option<Duration>,
    linger_after: Option<Duration>,
}

/// Reads the options of its socket on open and reports them.
struct Probe(Sender<io::Result<Readback>>);

impl<App> Protocol<App> for Probe {
    fn on_open(&mut self, cx: &mut Cx<'_, App>) {
        let socket = cx.socket().expect("a TCP connection has a socket");
        let read = || -> io::Result<Readback> {
            let keepalive = socket.keepalive()?;
            let nodelay = socket.nodelay()?;
            let linger_before = socket.linger()?;
            socket.set_abortive_close(true)?;
            let linger_abortive = socket.linger()?;
            socket.set_abortive_close(false)?;
            let linger_after = socket.linger()?;
            Ok(Readback {
                keepalive,
                nodelay,
                linger_before,
                linger_abortive,
                linger_after,
            })
        };
        let _ = self.0.send(read());
    }

    fn on_data(&mut self, _cx: &mut Cx<'_, App>, data: &[u8]) -> usize {
        data.len()
    }
}

/// S13: the keepalive settings of `ConnConfig` reach every accepted socket: `SO_KEEPALIVE` is
/// on and `TCP_KEEPIDLE`/`TCP_KEEPINTVL`/`TCP_KEEPCNT` read back as configured (the default
/// configuration leaves keepalive off). S20: `TCP_NODELAY` as configured.
#[test]
fn keepalive_and_nodelay_settings_reach_the_accepted_socket() -> io::Result<()> {
    let ka = Keepalive {
        idle: Duration::from_secs(7),
        interval: Duration::from_secs(3),
        count: 4,
    };
    for keepalive in [Some(ka), None] {
        let (tx, rx) = mpsc::channel();
        let opts = ListenOptions::default().with_conn(
            ConnConfig::default()
                .with_keepalive(keepalive)
                .with_nodelay(keepalive.is_some()),
        );
        let server = Server::listen(|| (), opts, move |_, _| Probe(tx.clone()))?;
        let _client = connect(server.addr())?;
        let got = rx.recv_timeout(WAIT).expect("the connection opened")?;
        assert_eq!(got.keepalive, keepalive, "{got:?}");
        assert_eq!(got.nodelay, keepalive.is_some(), "{got:?}");
    }
    Ok(())
}

/// S17, S20: the public `SO_LINGER` option is abortive close or off, and reads back as such
/// (zero, or off), never a nonzero time, which would make `close` block the loop.
#[test]
fn abortive_close_option_reads_back_as_zero_or_off() -> io::Result<()> {
    let (tx, rx) = mpsc::channel();
    let server = Server::listen(
        || (),
        ListenOptions::default(),
        move |_, _| Probe(tx.clone()),
    )?;
    let _client = connect(server.addr())?;
    let got = rx.recv_timeout(WAIT).expect("the connection opened")?;
    assert_eq!(got.linger_before, None, "{got:?}");
    assert_eq!(got.linger_abortive, Some(Duration::ZERO), "{got:?}");
    assert_eq!(got.linger_after, None, "{got:?}");

    drop(server);
    Ok(())
}
