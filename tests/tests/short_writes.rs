//! Short writes: a large payload queued at once reaches a slow reader whole and in order.

use std::io::{self, Read, Write};
use std::net::SocketAddr;

use evdrive_tests::{connect_with, observe, set_recv_buffer, PatternCheck, Server, WAIT};
use reactor::{CloseKind, ConnConfig, Cx, ListenOptions, Protocol, Shared};

/// Bytes the server sends.
const TOTAL: usize = 8 * 1024 * 1024;

/// Queues the whole test pattern in `on_open`, in pieces of varied sizes through every write
/// method (copied, owned and shared chunks), then closes gracefully.
struct Blast;

impl<App> Protocol<App> for Blast {
    fn on_open(&mut self, cx: &mut Cx<'_, App>) {
        // A tiny kernel send buffer: every sendmsg takes only a few KiB.
        cx.socket()
            .expect("an open connection has a socket")
            .set_send_buffer_size(4096)
            .expect("SO_SNDBUF");
        let sizes = [1, 100, 4095, 4096, 65_543, 1 << 20, 3, 300_007];
        let mut pos = 0;
        for i in 0.. {
            if pos == TOTAL {
                break;
            }
            let len = sizes[i % sizes.len()].min(TOTAL - pos);
            let piece = evdrive_tests::pattern(pos as u64, len);
            let queued = match i % 3 {
                0 => cx.write(&piece),
                1 => cx.write_vec(piece).is_ok(),
                _ => cx.write_shared(&Shared::from(piece)),
            };
            assert!(queued, "the connection refused a write at {pos}");
            pos += len;
        }
        assert_eq!(cx.queued(), TOTAL);
        cx.close();
    }

    fn on_data(&mut self, _cx: &mut Cx<'_, App>, data: &[u8]) -> usize {
        data.len()
    }
}

fn start() -> io::Result<(Server<()>, evdrive_tests::Observer)> {
    let (watch, observer) = observe();
    let opts = ListenOptions::default().with_conn(ConnConfig::default().with_max_output(2 * TOTAL));
    let server = Server::listen(|| (), opts, move |_, _: SocketAddr| watch.wrap(Blast))?;
    Ok((server, observer))
}

/// S3: 8 MiB queued in one turn through a tiny `SO_SNDBUF` to a client with a tiny
/// `SO_RCVBUF` that reads in small pieces. The kernel takes a few KiB per gather write; every
/// byte arrives once and in order, and the queue is seen partly sent in between (short writes
/// advance the queue, they neither lose nor repeat bytes).
#[test]
fn every_byte_arrives_in_order_through_short_writes() -> io::Result<()> {
    evdrive_tests::init_log();
    let (server, mut observer) = start()?;
    let mut client = connect_with(server.addr(), |fd| set_recv_buffer(fd, 4096))?;
    let conn = observer.wait_open(&[]);

    let mut check = PatternCheck::default();
    let mut buf = [0u8; 997];
    let mut partial_seen = false;
    loop {
        let n = client.read(&mut buf)?;
        if n == 0 {
            break;
        }
        check.check(&buf[..n]);
        if !partial_seen && check.pos > 256 * 1024 {
            // Mid-transfer: part of the queue is out, the rest still waits for the kernel.
            let snap = server
                .with(move |r| r.connections().into_iter().find(|c| c.id == conn))
                .expect("the connection is still there mid-transfer");
            assert!(snap.queued > 0, "{snap}");
            assert!(snap.bytes_out > 0, "{snap}");
            assert_eq!(snap.queued as u64 + snap.bytes_out, TOTAL as u64, "{snap}");
            partial_seen = true;
        }
    }
    assert_eq!(check.pos, TOTAL as u64);
    assert!(partial_seen);
    drop(client);

    assert_eq!(observer.wait_close(conn), CloseKind::Local);
    let stats = server.stats();
    assert_eq!(stats.bytes_out, TOTAL as u64);
    server.shutdown(WAIT)?;
    observer.assert_closed_once();
    Ok(())
}

/// Bytes of each reply of [`Replier`]: below the size written through at once, so a reply
/// written into an empty queue is a range of the reactor's turn buffer.
const REPLY: usize = 12_000;

/// Requests [`a_reply_the_kernel_takes_in_part_arrives_whole_and_in_order`] sends.
const REQUESTS: usize = 40;

/// Answers every byte with the next `REPLY` bytes of the test pattern.
#[derive(Default)]
struct Replier {
    pos: u64,
}

impl<App> Protocol<App> for Replier {
    fn on_open(&mut self, cx: &mut Cx<'_, App>) {
        cx.socket()
            .expect("an open connection has a socket")
            .set_send_buffer_size(4096)
            .expect("SO_SNDBUF");
    }

    fn on_data(&mut self, cx: &mut Cx<'_, App>, data: &[u8]) -> usize {
        for _ in data {
            assert!(cx.write(&evdrive_tests::pattern(self.pos, REPLY)));
            self.pos += REPLY as u64;
        }
        data.len()
    }
}

/// S3, S15: replies of a request-response exchange, each written in its own turn into an
/// empty queue, while the client does not read. Each is sent by the end-of-turn flush, whole
/// while the kernel has room; the first the kernel takes only in part (or not at all) keeps
/// its unsent rest queued (seen in the connection's snapshot), and what follows queues
/// behind it. Once the client reads, every byte arrives once and in order.
#[test]
fn a_reply_the_kernel_takes_in_part_arrives_whole_and_in_order() -> io::Result<()> {
    evdrive_tests::init_log();
    let (watch, mut observer) = observe();
    let server = Server::listen(
        || (),
        ListenOptions::default(),
        move |_, _: SocketAddr| watch.wrap(Replier::default()),
    )?;
    let mut client = connect_with(server.addr(), |fd| set_recv_buffer(fd, 4096))?;
    let conn = observer.wait_open(&[]);

    // Until a reply is left partly queued; one more then queues behind it. (Not many more:
    // above the high-water mark the server stops reading requests.)
    let mut sent = 0;
    let mut partial_at = None;
    while partial_at.is_none_or(|at| sent < at + 1) {
        assert!(sent < REQUESTS, "the kernel took all {sent} replies whole");
        client.write_all(b"?")?;
        sent += 1;
        let k = sent as u64;
        // This request read and its reply flushed (the snapshot is taken between turns).
        let snap = server
            .wait_for(WAIT, move |r| {
                r.connections()
                    .into_iter()
                    .find(|c| c.id == conn && c.bytes_in == k)
            })
            .expect("the server reads every request");
        if snap.queued > 0 && partial_at.is_none() {
            partial_at = Some(sent);
        }
    }

    let mut check = PatternCheck::default();
    let mut buf = [0u8; 4096];
    while check.pos < (sent * REPLY) as u64 {
        let n = client.read(&mut buf)?;
        assert!(n > 0, "end of stream after {} bytes", check.pos);
        check.check(&buf[..n]);
    }
    drop(client);
    observer.wait_close(conn);
    server.shutdown(WAIT)?;
    observer.assert_closed_once();
    Ok(())
}
