//! Descriptors with bytes through the in-memory transport (S29): under random write budgets
//! (partial writes with descriptors attached, and writes refused outright) every batch leaves
//! with the first byte it was queued with, once; and received descriptors reach the handler
//! just before the bytes they came with; a peer made by `connect` (TCP's stand-in) carries none.

use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;

use evdrive_reactor::testing::Harness;
use evdrive_reactor::{ConnConfig, Cx, ListenOptions, Protocol};
use proptest::prelude::*;

/// The inode of a descriptor: a socket's is unique, so it names the socket across copies.
fn inode(fd: &OwnedFd) -> u64 {
    let file = std::fs::File::from(fd.try_clone().expect("dup"));
    file.metadata().expect("fstat").ino()
}

/// Queues its pieces on open: plain bytes, or bytes with one descriptor.
struct Writer {
    pieces: Vec<(Vec<u8>, Option<OwnedFd>)>,
}

impl Protocol<()> for Writer {
    fn on_open(&mut self, cx: &mut Cx<'_, ()>) {
        for (data, fd) in self.pieces.drain(..) {
            match fd {
                Some(fd) => assert!(cx.write_with_fds(data, vec![fd]).is_ok()),
                None => assert!(cx.write_vec(data).is_ok()),
            }
        }
    }
    fn on_data(&mut self, _: &mut Cx<'_, ()>, data: &[u8]) -> usize {
        data.len()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn descriptors_leave_with_their_first_byte_under_any_write_budget(
        pieces in proptest::collection::vec((1usize..3000, any::<bool>()), 1..12),
        budgets in proptest::collection::vec(0usize..2500, 1..40),
    ) {
        let mut expected = Vec::new();
        let mut keep = Vec::new();
        let mut queued = Vec::new();
        let mut at = 0u64;
        for (i, &(len, with_fd)) in pieces.iter().enumerate() {
            let fd = with_fd.then(|| {
                let (a, b) = UnixStream::pair().expect("socketpair");
                let fd = OwnedFd::from(a);
                expected.push((at, inode(&fd)));
                keep.push(b);
                fd
            });
            queued.push((vec![i as u8; len], fd));
            at += len as u64;
        }
        let mut h = Harness::new(()).unwrap();
        let slot = std::cell::RefCell::new(Some(queued));
        let l = h.listen(ListenOptions::default().with_conn(ConnConfig::default()), move |_, _| {
            Writer { pieces: slot.borrow_mut().take().unwrap_or_default() }
        });
        let peer = l.connect_with_fds();
        peer.set_write_budget(Some(0));
        h.settle().unwrap();
        let mut got = 0usize;
        let mut seen = Vec::new();
        for step in 0..10_000 {
            if got as u64 == at {
                break;
            }
            // Budgets of zero are refused writes; a larger budget is a writable edge.
            let budget = budgets[step % budgets.len()];
            peer.set_write_budget(Some(budget + step % 2));
            h.settle().unwrap();
            got += peer.take_received().len();
            for (pos, fds) in peer.take_received_fds() {
                for fd in &fds {
                    seen.push((pos, inode(fd)));
                }
            }
        }
        prop_assert_eq!(got as u64, at);
        prop_assert_eq!(seen, expected);
    }
}

/// Records the order of `on_fds` and `on_data`.
struct Recorder;

impl Protocol<Vec<String>> for Recorder {
    fn on_fds(&mut self, cx: &mut Cx<'_, Vec<String>>, fds: Vec<OwnedFd>) {
        cx.app().push(format!("fds {}", fds.len()));
    }
    fn on_data(&mut self, cx: &mut Cx<'_, Vec<String>>, data: &[u8]) -> usize {
        cx.app().push(String::from_utf8_lossy(data).into_owned());
        data.len()
    }
}

#[test]
fn received_descriptors_come_just_before_their_bytes() -> io::Result<()> {
    let mut h = Harness::new(Vec::new())?;
    let l = h.listen(ListenOptions::default(), |_, _| Recorder);
    let peer = l.connect_with_fds();
    let (a, _b) = UnixStream::pair()?;
    let (c, _d) = UnixStream::pair()?;
    peer.send(b"plain|");
    peer.send_with_fds(b"with two|", vec![a.into(), c.into()]);
    peer.send(b"after");
    h.settle()?;
    let log = h.app().clone();
    let at = log
        .iter()
        .position(|s| s == "fds 2")
        .expect("no descriptors");
    assert!(
        log[at + 1].starts_with("with two|"),
        "the descriptors were not followed by their bytes: {log:?}"
    );
    assert_eq!(log.concat().replace("fds 2", ""), "plain|with two|after");
    Ok(())
}

/// Tries to send a descriptor on open and records whether the reactor took it.
struct Offers;

impl Protocol<Vec<String>> for Offers {
    fn on_open(&mut self, cx: &mut Cx<'_, Vec<String>>) {
        let (a, _b) = UnixStream::pair().expect("socketpair");
        let taken = cx.write_with_fds(b"x".to_vec(), vec![a.into()]).is_ok();
        cx.app().push(format!("taken {taken}"));
    }
    fn on_data(&mut self, cx: &mut Cx<'_, Vec<String>>, data: &[u8]) -> usize {
        cx.app().push(String::from_utf8_lossy(data).into_owned());
        data.len()
    }
}

/// A peer made by `connect` stands in for TCP: the reactor hands descriptors back as it does
/// on a TCP connection, and its bytes are delivered as on one.
#[test]
fn a_tcp_like_peer_carries_no_descriptors() -> io::Result<()> {
    let mut h = Harness::new(Vec::new())?;
    let l = h.listen(ListenOptions::default(), |_, _| Offers);
    let tcp = l.connect();
    let unix = l.connect_with_fds();
    h.settle()?;
    assert_eq!(*h.app(), ["taken false", "taken true"]);
    tcp.send(b"bytes");
    h.settle()?;
    assert_eq!(h.app().last().map(String::as_str), Some("bytes"));
    assert_eq!(unix.take_received_fds().len(), 1);
    assert!(tcp.take_received_fds().is_empty());
    Ok(())
}

/// Sending descriptors from a TCP-like peer is a mistake in the test, said at once.
#[test]
#[should_panic(expected = "connect_with_fds")]
fn a_tcp_like_peer_refuses_to_send_descriptors() {
    let mut h = Harness::new(Vec::new()).expect("harness");
    let l = h.listen(ListenOptions::default(), |_, _| Recorder);
    let peer = l.connect();
    let (a, _b) = UnixStream::pair().expect("socketpair");
    peer.send_with_fds(b"x", vec![a.into()]);
}
