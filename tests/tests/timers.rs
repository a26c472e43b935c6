//! Handler timers: `Cx::set_timer` and `Cx::cancel_timer` (S9).

use std::collections::HashMap;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::{Duration, Instant};

use evdrive_tests::{connect, observe, Event, Server, WAIT};
use reactor::{Cx, ListenOptions, Protocol, TimerId};

/// A timer that fired: its tag, how long after arming, and the delay asked for.
#[derive(Debug)]
struct Fired {
    tag: u64,
    after: Duration,
    delay: Duration,
}

/// Arms timers on open (some cancelled at once, one cancelled later by another timer's
/// callback, one re-armed from its own callback) and reports each firing.
#[derive(Default)]
struct Clockwork {
    /// When each tag was armed, and with what delay.
    armed: HashMap<u64, (Instant, Duration)>,
    /// The timer that the tag-2 callback cancels.
    victim: Option<TimerId>,
    /// Firings of the re-armed timer so far.
    repeats: u32,
}

/// Tags and delays of the timers armed on open and left alone.
const KEPT: [(u64, u64); 3] = [(1, 100), (2, 30), (3, 60)];
/// The tag re-armed from its own callback, and how often it fires.
const REPEATING: (u64, u32) = (10, 5);

impl Clockwork {
    fn arm(&mut self, cx: &mut Cx<'_, Sender<Fired>>, tag: u64, ms: u64) -> TimerId {
        let delay = Duration::from_millis(ms);
        self.armed.insert(tag, (Instant::now(), delay));
        let id = cx
            .set_timer(delay, tag)
            .expect("an open connection takes timers");
        assert_eq!(id.tag(), tag);
        id
    }
}

impl Protocol<Sender<Fired>> for Clockwork {
    fn on_open(&mut self, cx: &mut Cx<'_, Sender<Fired>>) {
        for (tag, ms) in KEPT {
            self.arm(cx, tag, ms);
        }
        // Cancelled at once: never fires; a second cancel finds nothing.
        let gone = self.arm(cx, 4, 50);
        assert!(cx.cancel_timer(gone));
        assert!(!cx.cancel_timer(gone));
        // Cancelled by the tag-2 callback at 30 ms, before its 80 ms are up.
        self.victim = Some(self.arm(cx, 5, 80));
        self.arm(cx, REPEATING.0, 10);
    }

    fn on_data(&mut self, _cx: &mut Cx<'_, Sender<Fired>>, data: &[u8]) -> usize {
        data.len()
    }

    fn on_timer(&mut self, cx: &mut Cx<'_, Sender<Fired>>, timer: TimerId) {
        let tag = timer.tag();
        let (at, delay) = self.armed[&tag];
        let _ = cx.app().send(Fired {
            tag,
            after: at.elapsed(),
            delay,
        });
        if tag == 2 {
            let victim = self.victim.take().expect("armed on open");
            assert!(cx.cancel_timer(victim));
        }
        if tag == REPEATING.0 {
            self.repeats += 1;
            if self.repeats < REPEATING.1 {
                self.arm(cx, tag, 10);
            }
        }
    }
}

fn start() -> io::Result<(
    Server<Sender<Fired>>,
    Receiver<Fired>,
    evdrive_tests::Observer,
)> {
    let (watch, observer) = observe();
    let (fired_tx, fired) = mpsc::channel();
    let server = Server::listen(
        move || fired_tx,
        ListenOptions::default(),
        move |_, _: SocketAddr| watch.wrap(Clockwork::default()),
    )?;
    Ok((server, fired, observer))
}

/// S9: timers fire with their tag, in deadline order, never early; a cancelled timer never
/// fires (cancelled at once or from another timer's callback); a timer re-armed from its own
/// callback fires again.
#[test]
fn timers_fire_on_time_with_their_tag_unless_cancelled() -> io::Result<()> {
    evdrive_tests::init_log();
    let (server, fired, mut observer) = start()?;
    let client = connect(server.addr())?;
    let conn = observer.wait_open(&[]);

    let mut seen = Vec::new();
    // Tag 1 is the last timer due; anything cancelled would have fired before it. The
    // repeating timer re-arms from its own callback, so on a loaded machine its fifth run may
    // come after tag 1: wait for both.
    let repeats = |seen: &[Fired]| seen.iter().filter(|f| f.tag == REPEATING.0).count();
    while !seen.iter().any(|f: &Fired| f.tag == 1) || repeats(&seen) < REPEATING.1 as usize {
        let f = fired
            .recv_timeout(WAIT)
            .expect("a timer did not fire in time");
        assert!(
            f.after >= f.delay,
            "timer {} fired early: {:?} < {:?}",
            f.tag,
            f.after,
            f.delay
        );
        assert!(f.after < f.delay + Duration::from_secs(1), "{f:?} is late");
        seen.push(f);
    }
    let tags: Vec<u64> = seen.iter().map(|f| f.tag).collect();
    assert!(
        !tags.contains(&4) && !tags.contains(&5),
        "cancelled fired: {tags:?}"
    );
    let kept: Vec<u64> = tags.iter().copied().filter(|t| *t < 10).collect();
    assert_eq!(kept, [2, 3, 1], "deadline order");
    assert_eq!(repeats(&seen), REPEATING.1 as usize);
    // Every timer of the connection is spent: nothing left in the wheel (a sixth run of the
    // repeating timer would still be armed here).
    assert_eq!(server.with(|r| r.timers_armed()), 0);

    drop(client);
    observer.wait_close(conn);
    server.shutdown(WAIT)?;
    observer.assert_closed_once();
    Ok(())
}

/// Timers die with their connection: a connection closed before its timers are due leaves no
/// timer in the wheel, and its handler never hears of them.
#[test]
fn timers_die_with_their_connection() -> io::Result<()> {
    evdrive_tests::init_log();
    let (server, fired, mut observer) = start()?;
    let mut client = connect(server.addr())?;
    let conn = observer.wait_open(&[]);
    assert!(server.with(|r| r.timers_armed()) > 0);
    // Close at once: the server reads end of stream and closes too.
    client.shutdown(std::net::Shutdown::Write)?;
    let mut rest = Vec::new();
    client.read_to_end(&mut rest)?;
    observer.wait_close(conn);
    assert_eq!(server.with(|r| r.timers_armed()), 0);
    // Nothing fires after the close (whatever fired before it was due before it).
    drop(fired);
    assert!(!observer
        .poll()
        .iter()
        .skip_while(|e| !matches!(e, Event::Close(..)))
        .any(|e| matches!(e, Event::Timer(..))));
    server.shutdown(WAIT)?;
    observer.assert_closed_once();
    Ok(())
}
