//! Unit tests of the bus: its message format (every kind both ways, malformed input refused,
//! never a panic), the roster and the back-off.

use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::message::{decode, encode, BadMessage, Msg, MAX_TEXT};
use super::roster::Roster;
use super::*;

fn round_trip(msg: Msg<'_>) {
    let mut out = Vec::new();
    encode("ab12.0", &msg, &mut out);
    assert_eq!(
        decode(&out),
        Ok(("ab12.0", msg)),
        "{:?}",
        String::from_utf8_lossy(&out)
    );
}

#[test]
fn every_kind_round_trips() {
    round_trip(Msg::Hello);
    round_trip(Msg::Beat);
    round_trip(Msg::Member {
        tag: "#3.1",
        nick: "Alice_-9",
        room: "#lobby",
    });
    round_trip(Msg::Gone { tag: "#3.1" });
    round_trip(Msg::Line {
        room: "#rust",
        text: b"<alice> hello  there, spaces kept ",
    });
    round_trip(Msg::Private {
        to_node: "ff00.3",
        to: "bob",
        text: b"<alice (private)> hi",
    });
}

#[test]
fn the_wire_form_is_plain_text() {
    let mut out = Vec::new();
    encode(
        "n.0",
        &Msg::Line {
            room: "#lobby",
            text: b"<a> hi",
        },
        &mut out,
    );
    assert_eq!(out, b"evchat1 n.0 line #lobby <a> hi");
}

#[test]
fn malformed_messages_are_refused() {
    let cases: &[(&[u8], BadMessage)] = &[
        (b"", BadMessage::NotOurs),
        (b"evchat2 n.0 beat", BadMessage::NotOurs),
        (b"evchat1", BadMessage::NotOurs),
        (b"evchat1 N.0 beat", BadMessage::BadField("node")),
        (b"evchat1 n.0", BadMessage::BadField("kind")),
        (b"evchat1 n.0 dance", BadMessage::UnknownKind),
        (
            b"evchat1 n.0 beat extra",
            BadMessage::BadField("trailing fields"),
        ),
        (
            b"evchat1 n.0 member #1.1 bad!nick #lobby",
            BadMessage::BadField("nick"),
        ),
        (
            b"evchat1 n.0 member #1.1 bob lobby",
            BadMessage::BadField("room"),
        ),
        (
            b"evchat1 n.0 member #1.1 bob #Lobby",
            BadMessage::BadField("room"),
        ),
        (b"evchat1 n.0 member #1.1 bob", BadMessage::BadField("room")),
        (b"evchat1 n.0 gone", BadMessage::BadField("tag")),
        (b"evchat1 n.0 line #lobby", BadMessage::BadField("text")),
        (b"evchat1 n.0 msg n.1 bob", BadMessage::BadField("text")),
        (b"evchat1 n.0  beat", BadMessage::BadField("kind")),
        (
            b"evchat1 n.0 beat ",
            BadMessage::BadField("trailing fields"),
        ),
        (
            b"evchat1 n.0 gone #1.1 ",
            BadMessage::BadField("trailing fields"),
        ),
    ];
    for (payload, err) in cases {
        assert_eq!(
            decode(payload),
            Err(*err),
            "{:?}",
            String::from_utf8_lossy(payload)
        );
    }
    let mut long = b"evchat1 n.0 line #lobby ".to_vec();
    long.resize(long.len() + MAX_TEXT + 1, b'a');
    assert_eq!(decode(&long), Err(BadMessage::BadField("text")));
}

#[test]
fn roster_tracks_members_and_expires_silent_nodes() {
    let t0 = Instant::now();
    let mut r = Roster::default();
    assert!(r.saw("a.0", t0));
    assert!(!r.saw("a.0", t0));
    r.member("a.0", "#1.1", "Alice", "#lobby");
    r.member("a.0", "#2.1", "bob", "#rust");
    assert_eq!(r.find("alice"), Some("a.0"));
    // The newest news about a nickname wins.
    assert!(r.saw("b.0", t0));
    r.member("b.0", "#1.1", "ALICE", "#lobby");
    assert_eq!(r.find("alice"), Some("b.0"));
    assert_eq!(r.len(), 2);
    r.gone("a.0", "#2.1");
    assert_eq!(r.find("bob"), None);
    r.member("a.0", "#3.1", "carol", "#lobby");
    // a.0 goes silent; b.0 keeps beating.
    r.saw("b.0", t0 + Duration::from_secs(6));
    assert_eq!(r.expire(t0 + Duration::from_secs(8), NODE_EXPIRY), 1);
    assert_eq!(r.find("carol"), None);
    assert_eq!(r.find("alice"), Some("b.0"));
    r.forget_node("b.0");
    assert_eq!(r.len(), 0);
}

#[test]
fn back_off_doubles_with_jitter_up_to_the_cap() {
    let config = BusConfig::new("127.0.0.1:6379".parse().unwrap());
    let mut bus = Bus::for_tests(config);
    let mut full = BACKOFF_FIRST;
    for _ in 0..12 {
        let d = bus.next_delay();
        assert!(
            d >= full / 2 && d <= full,
            "{d:?} outside [{:?}, {full:?}]",
            full / 2
        );
        full = (full * 2).min(BACKOFF_MAX);
    }
    bus.attempts = u32::MAX;
    assert!(bus.next_delay() <= BACKOFF_MAX);
}

#[test]
fn urls() {
    let c = BusConfig::from_url("redis://127.0.0.1:6380").unwrap();
    assert_eq!(c.addr(), "127.0.0.1:6380".parse().unwrap());
    let c = BusConfig::from_url("redis://127.0.0.1").unwrap();
    assert_eq!(c.addr().port(), 6379);
    for bad in [
        "127.0.0.1:6379",
        "redis://",
        "redis://u:p@h:1",
        "redis://h:1/0",
    ] {
        assert!(BusConfig::from_url(bad).is_err(), "{bad}");
    }
    // Two processes never share an id (the ids are random).
    let a = BusConfig::new(c.addr());
    let b = BusConfig::new(c.addr());
    assert_ne!(a.process, b.process);
}

proptest! {
    /// Whatever is published on the channel, decoding never panics, and what it accepts
    /// encodes back to the same bytes.
    #[test]
    fn decoding_any_payload_is_safe(
        payload in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..80),
            (proptest::sample::select(vec!["hello", "beat", "member", "gone", "line", "msg"]),
             proptest::collection::vec(
                prop_oneof![Just(b' '), Just(b'#'), Just(b'a'), Just(b'.'), Just(b'1'), any::<u8>()],
                0..40))
                .prop_map(|(kind, rest)| {
                    let mut p = format!("evchat1 n.0 {kind} ").into_bytes();
                    p.extend(rest);
                    p
                }),
        ],
    ) {
        if let Ok((node, msg)) = decode(&payload) {
            let mut again = Vec::new();
            encode(node, &msg, &mut again);
            prop_assert_eq!(again, payload);
        }
    }
}
