//! Heap allocations per message in the steady state (S25): none, for echo ping-pong, pipelined
//! echo and KV `GET`/`SET`, over real sockets on 127.0.0.1.
//!
//! A counting global allocator counts the allocations made by this test's thread during the
//! counted rounds. The reactor runs on the same thread as its non-blocking clients, so
//! every allocation of a message's path (read, handler, queue, flush) is counted and nothing
//! else is. After a warm-up (the reactor's reusable lists and stocked output queues reach their
//! size), many more messages must cost no allocation at all; an idle connection still owns no
//! buffer (`overload_memory.rs` checks that).
//!
//! This file holds one test only, so no other test's thread shares the allocator.

use std::io::{self, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use protocols::echo::Echo;
use protocols::kv::{KvConn, KvStore};
use reactor::sys::alloc_count::CountingAlloc;
use reactor::{ListenOptions, Protocol, Reactor};

/// The system allocator, counting (per thread: this test's thread runs the reactor and its
/// clients, and the count is read before and after the counted rounds).
#[global_allocator]
static ALLOCATOR: CountingAlloc = CountingAlloc::new();

/// Connections of each load, as in `bench/instructions`.
const CONNS: usize = 50;
/// Rounds before counting, and rounds counted.
const WARM_UP: usize = 50;
const COUNTED: usize = 400;

/// A round: every client sends `request`, then the reactor turns until every client has read
/// `reply_len` bytes back (checked against `reply`).
fn round(
    reactor: &mut Reactor<impl Sized + 'static>,
    clients: &mut [TcpStream],
    request: &[u8],
    reply: &[u8],
    buf: &mut [u8],
) -> io::Result<()> {
    for c in clients.iter_mut() {
        c.write_all(request)?;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    for c in clients.iter_mut() {
        let mut got = 0;
        while got < reply.len() {
            assert!(Instant::now() < deadline, "no reply within 10 s");
            match c.read(&mut buf[got..reply.len()]) {
                Ok(0) => return Err(ErrorKind::UnexpectedEof.into()),
                Ok(n) => got += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    reactor.turn(Some(Duration::from_millis(5)))?;
                }
                Err(e) => return Err(e),
            }
        }
        assert_eq!(&buf[..got], reply);
    }
    Ok(())
}

/// Runs `WARM_UP` rounds, then counts the allocations of `COUNTED` more.
fn allocations_per_round<App: 'static, P>(
    app: App,
    factory: impl FnMut(&mut App, std::net::SocketAddr) -> P + 'static,
    request: &[u8],
    reply: &[u8],
) -> io::Result<u64>
where
    P: Protocol<App> + 'static,
{
    let mut reactor = Reactor::new(app)?;
    let listener = reactor.listen(
        "127.0.0.1:0".parse().unwrap(),
        ListenOptions::default(),
        factory,
    )?;
    let addr = reactor.listener_addr(listener)?;
    let mut clients = Vec::with_capacity(CONNS);
    for _ in 0..CONNS {
        let c = TcpStream::connect(addr)?;
        c.set_nodelay(true)?;
        c.set_nonblocking(true)?;
        clients.push(c);
    }
    let mut buf = vec![0u8; reply.len()];
    for _ in 0..WARM_UP {
        round(&mut reactor, &mut clients, request, reply, &mut buf)?;
    }
    let before = CountingAlloc::thread_allocations();
    let result =
        (0..COUNTED).try_for_each(|_| round(&mut reactor, &mut clients, request, reply, &mut buf));
    let after = CountingAlloc::thread_allocations();
    result?;
    Ok(after - before)
}

/// S25: in the steady state, echoing (64-byte ping-pong, and 16 pipelined 64-byte messages per
/// write) and answering KV `SET` and `GET` allocate nothing: the output queue and its buffer
/// come from the reactor's stock, the read buffer is the shared scratch, and the KV replies are
/// built in a buffer the store reuses.
#[test]
fn steady_state_messages_allocate_nothing() -> io::Result<()> {
    let message = [b'p'; 64];
    let pingpong = allocations_per_round((), |_, _| Echo, &message, &message)?;

    let batch = [b'q'; 64 * 16];
    let pipelined = allocations_per_round((), |_, _| Echo, &batch, &batch)?;

    let value = [b'v'; 64];
    let set = [
        &b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$64\r\n"[..],
        &value,
        b"\r\n",
    ]
    .concat();
    let set_get = [&set[..], b"*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n"].concat();
    let replies = [&b"+OK\r\n$64\r\n"[..], &value, b"\r\n"].concat();
    let kv = allocations_per_round(KvStore::new(), |_, _| KvConn::new(), &set_get, &replies)?;

    let messages = (CONNS * COUNTED) as u64;
    eprintln!(
        "allocations over {messages} messages: ping-pong {pingpong}, pipelined {pipelined} \
         (x16), KV SET+GET {kv}"
    );
    assert_eq!(pingpong, 0, "allocations in {messages} ping-pong echoes");
    assert_eq!(pipelined, 0, "allocations in {messages} pipelined echoes");
    assert_eq!(kv, 0, "allocations in {messages} KV SET+GET pairs");
    Ok(())
}
