//! Tests of quiet members, on the harness clock: a connection greeted after silence gets the
//! room's lines but is announced only at its first line or after [`ANNOUNCE_AFTER`]; one that
//! leaves unannounced leaves unseen; an HTTP request as its first line is answered as HTTP.

use super::line::is_request_line;
use super::*;
use reactor::testing::{Harness, MemListener, MemPeer};
use reactor::ListenOptions;

fn text(peer: &MemPeer) -> String {
    String::from_utf8_lossy(&peer.take_received()).into_owned()
}

/// A chat on the harness with the sniffing handler every TCP port of `evdrive chat` uses.
fn chat() -> (Harness<ChatRoom>, MemListener) {
    let mut h = Harness::new(ChatRoom::new()).unwrap();
    let opts = ListenOptions::default().with_conn(conn_config(ConnConfig::default()));
    let listener = h.listen(opts, |_, _| ChatConn::new());
    (h, listener)
}

/// Connects a member and lets the greeting grace pass in silence.
fn greeted(h: &mut Harness<ChatRoom>, listener: &MemListener) -> MemPeer {
    let peer = listener.connect();
    h.settle().unwrap();
    h.advance(SNIFF_GRACE).unwrap();
    peer
}

#[test]
fn a_silent_connection_is_announced_at_its_first_line() {
    let (mut h, listener) = chat();
    let alice = greeted(&mut h, &listener);
    alice.send(b"/nick alice\n");
    h.settle().unwrap();
    assert!(text(&alice).contains("you are now alice"));

    // Greeted at once after the grace, and told who is here; the others hear nothing.
    let spare = greeted(&mut h, &listener);
    let welcome = text(&spare);
    assert!(
        welcome.starts_with("* welcome to evdrive chat, you are guest2; 1 other is here"),
        "{welcome}"
    );
    alice.send(b"/who\n/rooms\nhello\n");
    h.settle().unwrap();
    assert_eq!(
        text(&alice),
        "* 1 here: alice (you)\r\n* rooms: #lobby (1)\r\n"
    );
    // It sees the room, though.
    assert_eq!(text(&spare), "<alice> hello\r\n");
    assert_eq!(h.app().len(), 2);

    // Its first line introduces it, then is said.
    spare.send(b"hi all\n");
    h.settle().unwrap();
    assert_eq!(text(&alice), "* guest2 joined\r\n<guest2> hi all\r\n");
    alice.send(b"/who\n");
    h.settle().unwrap();
    assert_eq!(text(&alice), "* 2 here: alice (you), guest2\r\n");
}

#[test]
fn a_quiet_member_is_announced_after_staying_and_unseen_if_it_leaves_before() {
    let (mut h, listener) = chat();
    let alice = greeted(&mut h, &listener);
    alice.send(b"here\n");
    h.settle().unwrap();
    alice.take_received();

    // A spare connection a browser drops before long: nobody ever hears of it.
    let spare = greeted(&mut h, &listener);
    h.advance(ANNOUNCE_AFTER / 2).unwrap();
    spare.shutdown_write();
    h.settle().unwrap();
    assert!(spare.fin_received());
    assert_eq!(h.app().nicks(), ["guest1"]);
    h.advance(ANNOUNCE_AFTER).unwrap();
    assert_eq!(text(&alice), "");

    // Someone watching without typing is announced once it has stayed, not a tick before.
    let lurker = greeted(&mut h, &listener);
    h.advance(ANNOUNCE_AFTER - Duration::from_millis(1))
        .unwrap();
    assert_eq!(text(&alice), "");
    h.advance(Duration::from_millis(1)).unwrap();
    assert_eq!(text(&alice), "* guest3 joined\r\n");
    assert!(h.app().nicks_in(LOBBY).contains(&"guest3"));
    // Once announced, its leaving is news too.
    lurker.shutdown_write();
    h.settle().unwrap();
    assert_eq!(text(&alice), "* guest3 left\r\n");
}

#[test]
fn an_http_request_after_the_grace_is_answered_not_said() {
    let (mut h, listener) = chat();
    let alice = greeted(&mut h, &listener);
    alice.send(b"here\n");
    h.settle().unwrap();
    alice.take_received();

    // A client that spoke just after the grace: it already has the welcome line.
    let late = greeted(&mut h, &listener);
    assert!(text(&late).starts_with("* welcome"));
    late.send(b"GET /nowhere HTTP/1.1\r\nHost: chat\r\n\r\n");
    h.settle().unwrap();
    let answer = text(&late);
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    assert_eq!(h.app().nicks(), ["guest1"]);
    assert_eq!(text(&alice), "");
    // The page too, on the same connection, as HTTP does.
    late.send(b"GET / HTTP/1.1\r\nHost: chat\r\n\r\n");
    h.settle().unwrap();
    assert!(text(&late).starts_with("HTTP/1.1 200"));

    // Only a quiet member's first line is looked at: later, the same text is a message.
    let bob = greeted(&mut h, &listener);
    bob.send(b"hi\nGET / HTTP/1.1\n");
    h.settle().unwrap();
    assert_eq!(
        text(&alice),
        "* guest3 joined\r\n<guest3> hi\r\n<guest3> GET / HTTP/1.1\r\n"
    );
}

#[test]
fn request_lines() {
    assert!(is_request_line(b"GET / HTTP/1.1"));
    assert!(is_request_line(b"HEAD /index.html?x=1 HTTP/1.0"));
    assert!(is_request_line(b"OPTIONS * HTTP/1.1"));
    assert!(is_request_line(b"GET http://example.org/ HTTP/1.1"));
    assert!(!is_request_line(b"GET / HTTP/2"));
    assert!(!is_request_line(b"get / HTTP/1.1"));
    assert!(!is_request_line(b"GET me a coffee HTTP/1.1"));
    assert!(!is_request_line(b"GET  / HTTP/1.1"));
    assert!(!is_request_line(b"hello"));
    assert!(!is_request_line(b""));
}
