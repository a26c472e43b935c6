//! What a rejected client's goodbye is made from (S23, S28): a TCP client's address, and for a
//! Unix-domain client, which has none, `None`, never a made-up `0.0.0.0:0`. Real sockets.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use evdrive_reactor::{
    AtLimit, Cx, Goodbye, Limits, ListenOptions, Protocol, Reactor, UnixAddr, UnixListenOptions,
};

/// Echoes.
struct Echo;

impl<App> Protocol<App> for Echo {
    fn on_data(&mut self, cx: &mut Cx<'_, App>, data: &[u8]) -> usize {
        cx.write(data);
        data.len()
    }
}

/// Options that reject past one connection with a goodbye naming the client's address.
fn rejecting() -> ListenOptions {
    ListenOptions::default().with_at_limit(AtLimit::Reject(Goodbye::with(|peer| match peer {
        Some(addr) => format!("bye {addr}\n").into_bytes(),
        None => b"bye, no address\n".to_vec(),
    })))
}

/// Turns the reactor until `client` has sent `msg` and read `want` bytes, or to its end of
/// stream with `want` 0; returns what it read.
fn exchange<S: Read + Write>(
    r: &mut Reactor<()>,
    client: &mut S,
    msg: &[u8],
    want: usize,
) -> io::Result<Vec<u8>> {
    client.write_all(msg)?;
    let mut got = Vec::new();
    for _ in 0..1000 {
        let mut buf = [0u8; 64];
        match client.read(&mut buf) {
            Ok(0) => return Ok(got),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        if want > 0 && got.len() >= want {
            return Ok(got);
        }
        r.turn(Some(Duration::from_millis(50)))?;
    }
    panic!("never got there: {got:?}");
}

/// S23: the goodbye of a TCP client past the limit is made from its own address.
#[test]
fn a_rejected_tcp_client_gets_a_goodbye_made_from_its_address() -> io::Result<()> {
    let mut r = Reactor::new(())?;
    r.set_limits(Limits::default().with_max_connections(1));
    let local: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let id = r.listen(local, rejecting(), |_, _| Echo)?;
    let addr = r.listener_addr(id)?;
    let mut served = TcpStream::connect(addr)?;
    served.set_nonblocking(true)?;
    assert_eq!(exchange(&mut r, &mut served, b"p", 1)?, b"p");
    let mut told = TcpStream::connect(addr)?;
    told.set_nonblocking(true)?;
    let goodbye = exchange(&mut r, &mut told, b"", 0)?;
    assert_eq!(
        goodbye,
        format!("bye {}\n", told.local_addr()?).into_bytes()
    );
    Ok(())
}

/// S23, S28: a Unix-domain client past the limit has no address: its goodbye is made from
/// `None`.
#[test]
fn a_rejected_unix_client_gets_a_goodbye_made_from_no_address() -> io::Result<()> {
    let name = format!("evdrive-goodbye-{}", std::process::id());
    let mut r = Reactor::new(())?;
    r.set_limits(Limits::default().with_max_connections(1));
    let at = UnixAddr::Abstract(name.clone().into_bytes());
    r.cx()
        .listen_unix(&at, UnixListenOptions::from(rejecting()), |_| Echo)?;
    let connect = || {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
        let s = UnixStream::connect_addr(&addr)?;
        s.set_nonblocking(true)?;
        Ok::<_, io::Error>(s)
    };
    let mut served = connect()?;
    assert_eq!(exchange(&mut r, &mut served, b"p", 1)?, b"p");
    let mut told = connect()?;
    assert_eq!(exchange(&mut r, &mut told, b"", 0)?, b"bye, no address\n");
    Ok(())
}
