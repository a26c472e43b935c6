//! Switching a live connection's handler (`Cx::replace_handler`): the successor takes over after
//! the callback that asked, gets `on_open`, then the bytes its predecessor left unconsumed; the
//! old handler is dropped without `on_close`, and `on_close` runs once, to the handler in place
//! at the end. Driven on the in-memory harness, so every step is one settled turn.

use std::cell::RefCell;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use evdrive_reactor::testing::Harness;
use evdrive_reactor::{CloseReason, ConnConfig, Cx, ListenOptions, Protocol, TimerId};

/// What happened, in order, to every handler of the test's connections.
type Log = Vec<String>;

thread_local! {
    /// The far ends of adopted socket pairs, kept open for the test's length.
    static KEPT: RefCell<Vec<UnixStream>> = const { RefCell::new(Vec::new()) };
}

/// Line-based until a line `UPGRADE` arrives, then hands the connection to [`Upper`]; a line
/// `UPGRADE+CLOSE` asks for the switch and closes in the same callback.
struct Greeter {
    name: &'static str,
}

/// Sends every byte back in upper case; `on_open` says which one it is.
struct Upper {
    name: &'static str,
    /// `on_open` hands over again to a second `Upper` of this name (a chain of switches).
    then: Option<&'static str>,
}

impl Protocol<Log> for Greeter {
    fn on_open(&mut self, cx: &mut Cx<'_, Log>) {
        let name = self.name;
        cx.app().push(format!("{name} open"));
    }

    fn on_data(&mut self, cx: &mut Cx<'_, Log>, data: &[u8]) -> usize {
        let Some(end) = data.iter().position(|&b| b == b'\n') else {
            // An unfinished line that adopts a connection, whose nested `on_open` hands over
            // (another connection's switch during this callback), and is kept.
            if data.starts_with(b"ADOPT") {
                let text = String::from_utf8_lossy(data).into_owned();
                let name = self.name;
                cx.app().push(format!("{name} partial {text}"));
                adopt_one(cx);
            }
            return 0;
        };
        let line = String::from_utf8_lossy(&data[..end]).into_owned();
        let name = self.name;
        cx.app().push(format!("{name} line {line}"));
        match line.as_str() {
            "UPGRADE" => {
                assert!(cx.replace_handler(Box::new(Upper {
                    name: "upper",
                    then: None
                })));
                // Only the request line is consumed: the rest is the new protocol's.
                return end + 1;
            }
            "UPGRADE+CLOSE" => {
                assert!(cx.replace_handler(Box::new(Upper {
                    name: "never",
                    then: None
                })));
                cx.close();
            }
            "CHAIN" => {
                assert!(cx.replace_handler(Box::new(Upper {
                    name: "first",
                    then: Some("second"),
                })));
                return end + 1;
            }
            "UPGRADE+ADOPT" => {
                assert!(cx.replace_handler(Box::new(Upper {
                    name: "upper",
                    then: None
                })));
                adopt_one(cx);
                return end + 1;
            }
            "LATER" => {
                cx.set_timer(Duration::from_millis(10), 7);
            }
            _ => {}
        }
        end + 1
    }

    fn on_timer(&mut self, cx: &mut Cx<'_, Log>, _timer: TimerId) {
        assert!(cx.replace_handler(Box::new(Upper {
            name: "timed",
            then: None
        })));
    }

    fn on_close(&mut self, cx: &mut Cx<'_, Log>, _reason: CloseReason) {
        let name = self.name;
        cx.app().push(format!("{name} close"));
        // Too late: the connection is gone.
        let accepted = cx.replace_handler(Box::new(Upper {
            name: "ghost",
            then: None,
        }));
        cx.app().push(format!("replace in on_close: {accepted}"));
    }
}

impl Protocol<Log> for Upper {
    fn on_open(&mut self, cx: &mut Cx<'_, Log>) {
        let name = self.name;
        cx.app().push(format!("{name} open"));
        cx.write(format!("[{name}]").as_bytes());
        if let Some(next) = self.then.take() {
            cx.replace_handler(Box::new(Upper {
                name: next,
                then: None,
            }));
        }
    }

    fn on_data(&mut self, cx: &mut Cx<'_, Log>, data: &[u8]) -> usize {
        let name = self.name;
        let text = String::from_utf8_lossy(data).into_owned();
        cx.app().push(format!("{name} data {text}"));
        cx.write(&data.to_ascii_uppercase());
        data.len()
    }

    fn on_close(&mut self, cx: &mut Cx<'_, Log>, _reason: CloseReason) {
        let name = self.name;
        cx.app().push(format!("{name} close"));
    }
}

/// Adopts one end of a new socket pair: the adopted connection's `on_open` runs now, nested in
/// the calling callback, and hands over to a successor of its own.
fn adopt_one(cx: &mut Cx<'_, Log>) {
    let (ours, theirs) = UnixStream::pair().expect("socketpair");
    KEPT.with(|k| k.borrow_mut().push(theirs));
    cx.adopt_stream(
        ours.into(),
        Upper {
            name: "adopted",
            then: Some("adopted-next"),
        },
        ConnConfig::default(),
    )
    .expect("adopt");
}

fn greeter(h: &mut Harness<Log>) -> evdrive_reactor::testing::MemListener {
    h.listen(ListenOptions::default(), |_, _| Greeter { name: "greeter" })
}

#[test]
fn bytes_after_the_upgrade_line_in_the_same_read_go_to_the_new_handler() -> std::io::Result<()> {
    let mut h = Harness::new(Log::new())?;
    let listener = greeter(&mut h);
    let peer = listener.connect();
    h.settle()?;
    // The request and the new protocol's first bytes in one read.
    peer.send(b"UPGRADE\nhello");
    h.settle()?;
    assert_eq!(peer.take_received(), b"[upper]HELLO");
    peer.send(b" again");
    h.settle()?;
    assert_eq!(peer.take_received(), b" AGAIN");
    peer.shutdown_write();
    h.settle()?;
    assert_eq!(
        h.app().as_slice(),
        [
            "greeter open",
            "greeter line UPGRADE",
            "upper open",
            "upper data hello",
            "upper data  again",
            // The replaced handler never hears `on_close`; the one in place does, once.
            "upper close",
        ]
    );
    Ok(())
}

#[test]
fn an_upgrade_with_nothing_after_it_waits_for_the_next_read() -> std::io::Result<()> {
    let mut h = Harness::new(Log::new())?;
    let listener = greeter(&mut h);
    let peer = listener.connect();
    peer.send(b"UPGRADE\n");
    h.settle()?;
    assert_eq!(peer.take_received(), b"[upper]");
    peer.send(b"x");
    h.settle()?;
    assert_eq!(peer.take_received(), b"X");
    assert_eq!(h.app()[3], "upper data x");
    Ok(())
}

#[test]
fn a_switch_asked_before_closing_is_dropped_and_the_old_handler_closes() -> std::io::Result<()> {
    let mut h = Harness::new(Log::new())?;
    let listener = greeter(&mut h);
    let peer = listener.connect();
    peer.send(b"UPGRADE+CLOSE\n");
    h.settle()?;
    peer.shutdown_write();
    h.settle()?;
    assert!(peer.is_closed());
    assert_eq!(peer.take_received(), b"");
    assert_eq!(
        h.app().as_slice(),
        [
            "greeter open",
            "greeter line UPGRADE+CLOSE",
            "greeter close",
            "replace in on_close: false",
        ]
    );
    Ok(())
}

#[test]
fn a_new_handler_may_hand_over_again_from_its_on_open() -> std::io::Result<()> {
    let mut h = Harness::new(Log::new())?;
    let listener = greeter(&mut h);
    let peer = listener.connect();
    peer.send(b"CHAIN\nabc");
    h.settle()?;
    assert_eq!(peer.take_received(), b"[first][second]ABC");
    peer.reset();
    h.settle()?;
    assert_eq!(
        h.app().as_slice(),
        [
            "greeter open",
            "greeter line CHAIN",
            "first open",
            "second open",
            "second data abc",
            "second close",
        ]
    );
    Ok(())
}

#[test]
fn a_switch_from_a_timer_offers_the_kept_partial_input_at_once() -> std::io::Result<()> {
    let mut h = Harness::new(Log::new())?;
    let listener = greeter(&mut h);
    let peer = listener.connect();
    // `partial` has no newline: the greeter leaves it unconsumed, the reactor keeps it.
    peer.send(b"LATER\npartial");
    h.settle()?;
    assert_eq!(peer.take_received(), b"");
    h.advance(Duration::from_millis(20))?;
    h.settle()?;
    assert_eq!(peer.take_received(), b"[timed]PARTIAL");
    assert_eq!(
        h.app().as_slice(),
        [
            "greeter open",
            "greeter line LATER",
            "timed open",
            "timed data partial",
        ]
    );
    Ok(())
}

/// A switch asked for before the same callback adopts a connection, whose handler's `on_open`
/// (run at once, nested in that callback) asks for a switch of its own: each connection gets
/// the successor it asked for. (One shared mailbox lost the first request to the nested one.)
#[test]
fn a_switch_survives_a_nested_open_that_asks_for_its_own() -> std::io::Result<()> {
    let mut h = Harness::new(Log::new())?;
    let listener = greeter(&mut h);
    let peer = listener.connect();
    peer.send(b"UPGRADE+ADOPT\nabc");
    h.settle()?;
    assert_eq!(peer.take_received(), b"[upper]ABC");
    assert_eq!(
        h.app().as_slice(),
        [
            "greeter open",
            "greeter line UPGRADE+ADOPT",
            "adopted open",
            "adopted-next open",
            "upper open",
            "upper data abc",
        ]
    );
    Ok(())
}

/// Kept input offered again with more bytes, in a callback that adopts a connection whose
/// nested `on_open` hands over: the other connection's switch is not taken for this one's, so
/// the kept input is not offered a second time.
#[test]
fn another_connections_switch_in_a_callback_does_not_offer_kept_input_again() -> std::io::Result<()>
{
    let mut h = Harness::new(Log::new())?;
    let listener = greeter(&mut h);
    let peer = listener.connect();
    peer.send(b"ADOPT");
    h.settle()?;
    peer.send(b"x");
    h.settle()?;
    assert_eq!(
        h.app().as_slice(),
        [
            "greeter open",
            "greeter partial ADOPT",
            "adopted open",
            "adopted-next open",
            "greeter partial ADOPTx",
            "adopted open",
            "adopted-next open",
        ]
    );
    Ok(())
}
