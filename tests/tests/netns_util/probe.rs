//! The reactor's side of a faulty connection ([`Probe`]) and the test's side ([`Reports`]):
//! every callback of interest, with the moment it ran, sent over a channel, so a test waits
//! for the close it expects with a deadline and measures when it came.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use evdrive_tests::WAIT;
use reactor::{CloseKind, CloseReason, ConnId, Cx, Protocol, TimerId};

/// What a [`Probe`] saw, with the moment it saw it.
#[derive(Debug)]
pub enum Report {
    /// `on_open`.
    Open(ConnId, Instant),
    /// `on_data`, with the number of bytes.
    Data(ConnId, usize, Instant),
    /// `on_close`, with the reason's kind and text.
    Close(ConnId, CloseKind, String, Instant),
}

/// The reactor's side of a faulty connection: reports its callbacks with their times, and
/// sends a ping on every heartbeat tick.
#[derive(Debug)]
pub struct Probe {
    /// The heartbeat armed on open: interval and read-idle limit.
    heartbeat: Option<(Duration, Duration)>,
    reports: Sender<Report>,
}

impl Protocol<()> for Probe {
    fn on_open(&mut self, cx: &mut Cx<'_, ()>) {
        let _ = self.reports.send(Report::Open(cx.id(), Instant::now()));
        if let Some((interval, read_idle)) = self.heartbeat {
            cx.set_heartbeat(interval, read_idle);
        }
    }

    fn on_data(&mut self, cx: &mut Cx<'_, ()>, data: &[u8]) -> usize {
        let _ = self
            .reports
            .send(Report::Data(cx.id(), data.len(), Instant::now()));
        data.len()
    }

    fn on_timer(&mut self, cx: &mut Cx<'_, ()>, timer: TimerId) {
        if timer.tag() == TimerId::HEARTBEAT {
            cx.write(b"ping");
        }
    }

    fn on_close(&mut self, cx: &mut Cx<'_, ()>, reason: CloseReason) {
        let _ = self.reports.send(Report::Close(
            cx.id(),
            reason.kind(),
            reason.to_string(),
            Instant::now(),
        ));
    }
}

/// The test's side of [`Probe`]s: their reports, waited for with deadlines.
#[derive(Debug)]
pub struct Reports {
    tx: Sender<Report>,
    rx: Receiver<Report>,
    seen: Vec<Report>,
}

impl Default for Reports {
    fn default() -> Self {
        let (tx, rx) = mpsc::channel();
        Reports {
            tx,
            rx,
            seen: Vec::new(),
        }
    }
}

impl Reports {
    /// A handler reporting here, with a heartbeat of `interval` and `read_idle` if given.
    pub fn probe(&self, heartbeat: Option<(Duration, Duration)>) -> Probe {
        Probe {
            heartbeat,
            reports: self.tx.clone(),
        }
    }

    /// Waits up to `limit` for a report matching `pred` (seen earlier or arriving now) and
    /// returns its index in [`seen`](Self::seen).
    ///
    /// # Panics
    /// If none comes in time; the message lists what was seen.
    pub fn wait_for(
        &mut self,
        what: &str,
        limit: Duration,
        mut pred: impl FnMut(&Report) -> bool,
    ) -> usize {
        if let Some(i) = self.seen.iter().position(&mut pred) {
            return i;
        }
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(r) => {
                    let hit = pred(&r);
                    self.seen.push(r);
                    if hit {
                        return self.seen.len() - 1;
                    }
                }
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {
                    panic!("no {what} within {limit:?}; seen: {:#?}", self.seen)
                }
            }
        }
    }

    /// Everything reported so far.
    pub fn seen(&mut self) -> &[Report] {
        while let Ok(r) = self.rx.try_recv() {
            self.seen.push(r);
        }
        &self.seen
    }

    /// Waits up to [`WAIT`] for `conn` to open.
    pub fn wait_open(&mut self, conn: ConnId) -> Instant {
        let i = self.wait_for(
            "open",
            WAIT,
            |r| matches!(r, Report::Open(c, _) if *c == conn),
        );
        match self.seen[i] {
            Report::Open(_, at) => at,
            _ => unreachable!(),
        }
    }

    /// Waits up to `limit` for `conn` to close; returns the reason's kind and when it closed.
    pub fn wait_close(&mut self, conn: ConnId, limit: Duration) -> (CloseKind, Instant) {
        let i = self.wait_for(
            "close",
            limit,
            |r| matches!(r, Report::Close(c, ..) if *c == conn),
        );
        match self.seen[i] {
            Report::Close(_, kind, _, at) => (kind, at),
            _ => unreachable!(),
        }
    }

    /// Whether `conn` ever opened.
    pub fn opened(&mut self, conn: ConnId) -> bool {
        self.seen()
            .iter()
            .any(|r| matches!(r, Report::Open(c, _) if *c == conn))
    }

    /// The bytes `conn` received so far.
    pub fn received(&mut self, conn: ConnId) -> u64 {
        self.seen()
            .iter()
            .map(|r| match r {
                Report::Data(c, n, _) if *c == conn => *n as u64,
                _ => 0,
            })
            .sum()
    }
}
