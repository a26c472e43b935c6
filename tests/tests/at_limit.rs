//! At the connection limit, tell the client (S23): a listener with `AtLimit::Reject` accepts the
//! clients past `Limits::max_connections`, sends them its goodbye and closes them gracefully,
//! instead of leaving them in the backlog with no answer.

mod samples_util;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use evdrive_tests::{connect, localhost, Server, WAIT};
use protocols::chat::{self, ChatConn, ChatRoom};
use protocols::echo::{self, Echo};
use protocols::http_server::{self, HttpServer};
use protocols::kv::{self, KvConn, KvStore};
use reactor::{AtLimit, Goodbye, Limits, ListenOptions, Protocol};
use samples_util::{read_until, require};

/// Connections the server serves at once.
const LIMIT: usize = 10;
/// Clients connecting at once: three times the limit.
const CLIENTS: usize = 3 * LIMIT;
/// What a rejected client gets before the end of stream.
const GOODBYE: &[u8] = b"full\n";
/// The longest a rejected client may wait for its goodbye and end of stream, from its connect.
const TOLD_WITHIN: Duration = Duration::from_secs(1);
/// The most loop turns the whole burst may cost, per client: a served client costs an accept
/// and a read, a rejected one an accept and the read of its end of stream.
const TURNS_PER_CLIENT: u64 = 6;

/// What became of one client.
#[derive(Debug)]
enum Outcome {
    /// Its byte came back; the connection is kept open.
    Served(TcpStream),
    /// It got these bytes, then end of stream, this long after its connect.
    Told(Vec<u8>, Duration),
}

/// Connects, sends a byte, and waits for the echo or for the goodbye and end of stream.
fn client(addr: SocketAddr) -> io::Result<Outcome> {
    let started = Instant::now();
    let mut stream = connect(addr)?;
    stream.write_all(b"p")?;
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    loop {
        match stream.read(&mut buf)? {
            0 => return Ok(Outcome::Told(got, started.elapsed())),
            n => got.extend_from_slice(&buf[..n]),
        }
        if got == b"p" {
            return Ok(Outcome::Served(stream));
        }
    }
}

/// S23: with `max_connections: 10` and `AtLimit::Reject`, 30 clients connect at once: 10 are
/// served and each of the 20 others gets the goodbye and end of stream within a second of its
/// connect, none left hanging, and the loop makes a bounded number of turns per client (it does
/// not spin). Once a served client leaves, a new client is served at once.
#[test]
fn clients_past_the_limit_get_their_goodbye_and_new_ones_are_served_after_a_close() -> io::Result<()>
{
    evdrive_tests::init_log();
    let opts = ListenOptions::default().with_at_limit(AtLimit::Reject(Goodbye::bytes(GOODBYE)));
    let server = Server::start(
        || (),
        move |r| {
            r.set_limits(Limits::default().with_max_connections(LIMIT));
            let id = r.listen(localhost(), opts, |_, _| Echo)?;
            r.listener_addr(id)
        },
    )?;
    let addr = server.addr();
    let turns_before = server.stats().turns;

    // 1. The burst: every client on its own thread, so none waits for another.
    let (tx, outcomes) = mpsc::channel();
    for _ in 0..CLIENTS {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let _ = tx.send(client(addr));
        });
    }
    drop(tx);
    let mut served = Vec::new();
    let mut told = 0;
    for _ in 0..CLIENTS {
        match outcomes.recv_timeout(WAIT).expect("a client hangs")? {
            Outcome::Served(stream) => served.push(stream),
            Outcome::Told(got, after) => {
                assert_eq!(got, GOODBYE, "a rejected client got {got:?}");
                assert!(
                    after < TOLD_WITHIN,
                    "a rejected client was told after {after:?}"
                );
                told += 1;
            }
        }
    }
    assert_eq!((served.len(), told), (LIMIT, CLIENTS - LIMIT));

    // 2. The told clients closed: their slots go, and the loop did not race meanwhile.
    server
        .wait_for(WAIT, |r| {
            let s = r.stats();
            (s.open == LIMIT as u64 && s.rejecting == 0).then_some(())
        })
        .expect("the rejected clients' slots were not released");
    let stats = server.stats();
    let turns = stats.turns - turns_before;
    assert!(
        turns <= TURNS_PER_CLIENT * CLIENTS as u64,
        "{turns} turns for {CLIENTS} clients: spinning"
    );
    assert_eq!(stats.rejected, (CLIENTS - LIMIT) as u64, "{stats:?}");
    assert_eq!(stats.accepted, LIMIT as u64, "{stats:?}");
    assert_eq!(stats.closed_total(), 0, "{stats:?}");

    // 3. A served client leaves; once its close is seen, a newcomer is served.
    drop(served.pop());
    server
        .wait_for(WAIT, |r| (r.stats().closed_total() == 1).then_some(()))
        .expect("the served client's close was not seen");
    match client(addr)? {
        Outcome::Served(stream) => served.push(stream),
        Outcome::Told(got, _) => panic!("a newcomer after a close was told {got:?}"),
    }
    // 4. And the limit holds again.
    match client(addr)? {
        Outcome::Told(got, _) => assert_eq!(got, GOODBYE),
        Outcome::Served(_) => panic!("served past the limit"),
    }
    drop(served);
    server.shutdown(Duration::from_secs(1))
}

/// A sample server that serves one connection at a time, with the sample's own policy.
fn one_at_a_time<App: 'static, P: Protocol<App> + 'static>(
    app: impl FnOnce() -> App + Send + 'static,
    at_limit: AtLimit,
    factory: impl FnMut(&mut App, SocketAddr) -> P + Send + 'static,
) -> io::Result<Server<App>> {
    let opts = ListenOptions::default().with_at_limit(at_limit);
    Server::start(app, move |r| {
        r.set_limits(Limits::default().with_max_connections(1));
        let id = r.listen(localhost(), opts, factory)?;
        r.listener_addr(id)
    })
}

/// Runs a client program to completion; returns its standard output and error.
fn output_of(program: &str, args: &[&str]) -> io::Result<String> {
    require(program);
    let out = std::process::Command::new(program).args(args).output()?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    Ok(text)
}

/// S23: the KV and HTTP samples' goodbyes reach real clients. With one connection held,
/// `redis-cli` prints Redis's own `max number of clients reached` error and `curl` gets a
/// complete `503` that closes the connection; once the held connections leave, both are served.
#[test]
fn redis_cli_and_curl_are_told_at_the_limit() -> io::Result<()> {
    evdrive_tests::init_log();
    let kv_server = one_at_a_time(KvStore::new, kv::at_limit(), |_, _| KvConn::new())?;
    let http = one_at_a_time(|| (), http_server::at_limit(), |_, _| HttpServer::new())?;
    let port = kv_server.addr().port().to_string();
    let url = format!("http://{}/", http.addr());

    // 1. One connection each, served.
    let mut held_kv = connect(kv_server.addr())?;
    held_kv.write_all(b"PING\r\n")?;
    read_until(&mut held_kv, &mut Vec::new(), b"+PONG\r\n")?;
    let mut held_http = connect(http.addr())?;
    held_http.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")?;
    read_until(&mut held_http, &mut Vec::new(), b"Hello from evdrive\n")?;

    // 2. The real clients are told.
    let said = output_of("redis-cli", &["-p", &port, "ping"])?;
    assert!(
        said.contains("ERR max number of clients reached"),
        "{said:?}"
    );
    let said = output_of("curl", &["-s", "-i", "--noproxy", "*", &url])?;
    assert!(said.starts_with("HTTP/1.1 503 "), "{said:?}");
    assert!(said.contains("Connection: close\r\n"), "{said:?}");

    // 3. The held connections leave; the clients are served.
    drop((held_kv, held_http));
    kv_server
        .wait_for(WAIT, |r| (r.stats().closed_total() == 1).then_some(()))
        .expect("the held KV connection's close was not seen");
    http.wait_for(WAIT, |r| (r.stats().closed_total() == 1).then_some(()))
        .expect("the held HTTP connection's close was not seen");
    assert_eq!(
        output_of("redis-cli", &["-p", &port, "ping"])?.trim(),
        "PONG"
    );
    let said = output_of("curl", &["-s", "--noproxy", "*", &url])?;
    assert_eq!(said, "Hello from evdrive\n");
    kv_server.shutdown(Duration::from_secs(1))?;
    http.shutdown(Duration::from_secs(1))
}

/// S23: the chat sample says the room is full, the echo sample just closes; both at once, with
/// the one held connection still served.
#[test]
fn chat_says_the_room_is_full_and_echo_just_closes() -> io::Result<()> {
    evdrive_tests::init_log();
    let room = one_at_a_time(ChatRoom::new, chat::at_limit(), |_, _| ChatConn::new())?;
    let echo = one_at_a_time(|| (), echo::at_limit(), |_, _| Echo)?;
    let mut member = connect(room.addr())?;
    read_until(&mut member, &mut Vec::new(), b"/help")?;
    let mut held = connect(echo.addr())?;
    held.write_all(b"p")?;
    read_until(&mut held, &mut Vec::new(), b"p")?;

    for (server, goodbye) in [(room.addr(), chat::ROOM_FULL), (echo.addr(), &b""[..])] {
        match client(server)? {
            Outcome::Told(got, after) => {
                assert_eq!(got, goodbye);
                assert!(after < TOLD_WITHIN, "told after {after:?}");
            }
            Outcome::Served(_) => panic!("served past the limit"),
        }
    }
    member.write_all(b"still here\n")?;
    held.write_all(b"q")?;
    read_until(&mut held, &mut Vec::new(), b"q")?;
    drop((member, held));
    room.shutdown(Duration::from_secs(1))?;
    echo.shutdown(Duration::from_secs(1))
}
