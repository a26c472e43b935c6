//! Handlers wrapped to report their callbacks to the test thread, and the waits on them.

use std::collections::HashMap;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use reactor::{CloseKind, CloseReason, ConnId, Cx, Protocol, TimerId};

use crate::*;

/// A callback a handler wrapped in [`Observed`] received, as reported to the test thread.
#[derive(Debug)]
pub enum Event {
    /// `on_open`.
    Open(ConnId),
    /// `on_high_water`, with the bytes queued at that moment.
    HighWater(ConnId, usize),
    /// `on_drained`, with the bytes queued at that moment.
    Drained(ConnId, usize),
    /// `on_timer`, with the timer's tag and the moment it fired.
    Timer(ConnId, u64, Instant),
    /// `on_eof`.
    Eof(ConnId),
    /// `on_close`, with the reason's kind and its text (which names a protocol error's cause
    /// or an I/O error's errno).
    Close(ConnId, CloseKind, String),
}

impl Event {
    /// The connection the event is about.
    pub fn conn(&self) -> ConnId {
        match self {
            Event::Open(c)
            | Event::HighWater(c, _)
            | Event::Drained(c, _)
            | Event::Timer(c, _, _)
            | Event::Eof(c)
            | Event::Close(c, _, _) => *c,
        }
    }

    /// The close reason's kind, if this is a close.
    pub fn close_kind(&self) -> Option<CloseKind> {
        match self {
            Event::Close(_, kind, _) => Some(*kind),
            _ => None,
        }
    }
}

/// The sending side of an observation: wraps handlers so that they report their callbacks.
#[derive(Clone, Debug)]
pub struct Watch {
    events: Sender<Event>,
}

impl Watch {
    /// Wraps `inner` so that its callbacks are reported.
    pub fn wrap<P>(&self, inner: P) -> Observed<P> {
        Observed {
            inner,
            events: self.events.clone(),
        }
    }
}

/// Creates a [`Watch`] for the reactor side and an [`Observer`] for the test side.
pub fn observe() -> (Watch, Observer) {
    let (events, rx) = mpsc::channel();
    (
        Watch { events },
        Observer {
            rx,
            seen: Vec::new(),
        },
    )
}

/// A handler that forwards every callback to `inner` and reports it as an [`Event`].
/// Reports are sent after `inner` ran (before it, for `on_close`).
#[derive(Debug)]
pub struct Observed<P> {
    /// The handler doing the work.
    pub inner: P,
    events: Sender<Event>,
}

impl<P> Observed<P> {
    fn report(&self, event: Event) {
        let _ = self.events.send(event);
    }
}

impl<App, P: Protocol<App>> Protocol<App> for Observed<P> {
    fn on_open(&mut self, cx: &mut Cx<'_, App>) {
        self.report(Event::Open(cx.id()));
        self.inner.on_open(cx);
    }

    fn on_data(&mut self, cx: &mut Cx<'_, App>, data: &[u8]) -> usize {
        self.inner.on_data(cx, data)
    }

    fn on_fds(&mut self, cx: &mut Cx<'_, App>, fds: Vec<std::os::fd::OwnedFd>) {
        self.inner.on_fds(cx, fds)
    }

    fn on_high_water(&mut self, cx: &mut Cx<'_, App>) {
        self.report(Event::HighWater(cx.id(), cx.queued()));
        self.inner.on_high_water(cx);
    }

    fn on_drained(&mut self, cx: &mut Cx<'_, App>) {
        self.report(Event::Drained(cx.id(), cx.queued()));
        self.inner.on_drained(cx);
    }

    fn on_timer(&mut self, cx: &mut Cx<'_, App>, timer: TimerId) {
        self.report(Event::Timer(cx.id(), timer.tag(), Instant::now()));
        self.inner.on_timer(cx, timer);
    }

    fn on_eof(&mut self, cx: &mut Cx<'_, App>) {
        self.report(Event::Eof(cx.id()));
        self.inner.on_eof(cx);
    }

    fn on_close(&mut self, cx: &mut Cx<'_, App>, reason: CloseReason) {
        let id = cx.id();
        let (kind, text) = (reason.kind(), reason.to_string());
        self.inner.on_close(cx, reason);
        self.report(Event::Close(id, kind, text));
    }
}

/// The receiving side of an observation: every [`Event`] reported so far, and waits for more.
#[derive(Debug)]
pub struct Observer {
    rx: Receiver<Event>,
    /// Every event received, in order.
    seen: Vec<Event>,
}

impl Observer {
    /// Every event received so far (call [`poll`](Self::poll) first to take in new ones).
    pub fn seen(&self) -> &[Event] {
        &self.seen
    }

    /// Takes in the events reported so far without waiting.
    pub fn poll(&mut self) -> &[Event] {
        while let Ok(e) = self.rx.try_recv() {
            self.seen.push(e);
        }
        &self.seen
    }

    /// Waits up to `limit` for an event matching `pred` (among those already seen, too) and
    /// returns its position in [`seen`](Self::seen).
    ///
    /// # Panics
    /// If none arrives in time; the message lists what did arrive.
    pub fn wait_for(&mut self, limit: Duration, pred: impl Fn(&Event) -> bool) -> usize {
        self.try_wait_for(limit, pred).unwrap_or_else(|| {
            panic!(
                "no matching event within {limit:?}; events seen: {:#?}",
                self.seen
            )
        })
    }

    /// Like [`wait_for`](Self::wait_for), but returns `None` instead of panicking.
    pub fn try_wait_for(
        &mut self,
        limit: Duration,
        pred: impl Fn(&Event) -> bool,
    ) -> Option<usize> {
        if let Some(i) = self.seen.iter().position(&pred) {
            return Some(i);
        }
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(e) => {
                    let hit = pred(&e);
                    self.seen.push(e);
                    if hit {
                        return Some(self.seen.len() - 1);
                    }
                }
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {
                    return None
                }
            }
        }
    }

    /// Waits for the close of `conn` and returns its reason's kind.
    pub fn wait_close(&mut self, conn: ConnId) -> CloseKind {
        let i = self.wait_for(WAIT, |e| matches!(e, Event::Close(c, ..) if *c == conn));
        self.seen[i].close_kind().expect("a close event")
    }

    /// Waits for the next `on_open` not yet returned by an earlier call and returns its
    /// connection. Opens are handed out in the order they happened.
    pub fn wait_open(&mut self, already: &[ConnId]) -> ConnId {
        let i = self.wait_for(
            WAIT,
            |e| matches!(e, Event::Open(c) if !already.contains(c)),
        );
        self.seen[i].conn()
    }

    /// Waits for the first close of any connection and returns it and its reason's kind.
    pub fn wait_any_close(&mut self) -> (ConnId, CloseKind) {
        let i = self.wait_for(WAIT, |e| matches!(e, Event::Close(..)));
        (self.seen[i].conn(), self.seen[i].close_kind().unwrap())
    }

    /// The close reasons seen so far, by connection.
    pub fn closes(&mut self) -> Vec<(ConnId, CloseKind)> {
        self.poll();
        self.seen
            .iter()
            .filter_map(|e| e.close_kind().map(|k| (e.conn(), k)))
            .collect()
    }

    /// Checks that every connection that was reported at all (opened, or only closed: a failed
    /// connect) got exactly one `on_close`, and that nothing was reported after it. Call it
    /// once the reactor has shut down.
    ///
    /// # Panics
    /// On a connection with no close, two closes, or an event after its close.
    pub fn assert_closed_once(&mut self) {
        self.poll();
        let mut closes: HashMap<ConnId, usize> = HashMap::new();
        for e in &self.seen {
            let closed = closes.entry(e.conn()).or_default();
            assert_eq!(*closed, 0, "{e:?} after {:?} was closed", e.conn());
            if let Event::Close(..) = e {
                *closed += 1;
            }
        }
        for (conn, n) in closes {
            assert_eq!(
                n, 1,
                "{conn:?} was closed {n} times; events: {:#?}",
                self.seen
            );
        }
    }
}
