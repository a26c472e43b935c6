//! The accept loop: drain until `WouldBlock` within a per-turn budget, skip the errors that
//! concern one client, follow the listener's policy at the connection limit, and back off when
//! descriptors or memory run out (S5, S23, S27).
//!
//! # Implementation notes
//! On `EMFILE`/`ENFILE` the pending clients would stay in the backlog, the listener readable,
//! and a naive loop would spin. The listener releases its spare descriptor, accepts and closes
//! at most `accepts_per_turn` pending clients with it (so a flood cannot hold the turn), reserves
//! the spare again, and pauses for a back-off period on the timer wheel, doubling while the
//! condition lasts. If the spare cannot be reserved again (the descriptors are still gone) the
//! failure is logged once and the reserve is retried each time the back-off timer fires.

use std::io;
use std::net::SocketAddr;
use std::rc::Rc;

use crate::core::conn::{Phase, WriteHalf};
use crate::core::connect::apply_conn_options;
use crate::core::listener::{Factory, Listener, ListenerId, ListenerStats, PeerName};
use crate::core::{Core, Net, Source};
use crate::timer::TimerEntry;
use crate::transport::{Acceptor, Stream};
use crate::{sys, AtLimit, ListenOptions};

impl<App> Net<App> {
    pub(super) fn listener(&mut self, index: usize) -> Option<&mut Listener<App>> {
        match self.sources.get_mut(index) {
            Some(Source::Listener(l)) => Some(l),
            _ => None,
        }
    }

    /// Adds a listener on `socket` and registers it.
    pub(crate) fn add_listener(
        &mut self,
        mut socket: Box<dyn Acceptor>,
        factory: Factory<App>,
        opts: &ListenOptions,
    ) -> io::Result<ListenerId> {
        let index = self.sources.vacant_key();
        socket.register(self.registration(index))?;
        self.next_generation = self.next_generation.wrapping_add(1);
        let generation = self.next_generation;
        let l = Listener::new(socket, factory, opts, generation)?;
        // Clients queued before the registration (an adopted listener) need no help: adding
        // a ready descriptor to epoll reports it at once, edge-triggered or not.
        self.sources.insert(Source::Listener(Box::new(l)));
        Ok(ListenerId {
            index: index as u32,
            generation,
        })
    }

    /// The listener an id names, if it still exists.
    fn listener_by_id(&mut self, id: ListenerId) -> Option<&mut Listener<App>> {
        self.listener(id.index as usize)
            .filter(|l| l.generation == id.generation)
    }

    /// Stops accepting on a listener until resumed; clients wait in the backlog. Returns
    /// whether it exists.
    pub(crate) fn pause_listener(&mut self, id: ListenerId) -> bool {
        self.listener_by_id(id).map(|l| l.held = true).is_some()
    }

    /// Accepts again on a paused listener, from the next turn (no edge announces the clients
    /// that queued meanwhile). Returns whether it exists.
    pub(crate) fn unpause_listener(&mut self, id: ListenerId) -> bool {
        let Some(l) = self.listener_by_id(id) else {
            return false;
        };
        if std::mem::take(&mut l.held) {
            self.mark_ready(id.index as usize);
        }
        true
    }

    /// Closes a listener: its socket is closed (clients still in the backlog are refused by
    /// the kernel); connections it accepted go on. Returns whether it existed.
    pub(crate) fn close_listener(&mut self, id: ListenerId) -> bool {
        if self.listener_by_id(id).is_none() {
            return false;
        }
        // Dropping the socket closes it, which also takes it out of the poller; a back-off
        // timer still armed finds no listener in the slot (or one of a later generation,
        // which it merely asks to accept).
        self.sources.try_remove(id.index as usize);
        true
    }

    /// A listener's address and counters.
    pub(crate) fn listener_stats(&self, id: ListenerId) -> Option<ListenerStats> {
        match self.sources.get(id.index as usize) {
            Some(Source::Listener(l)) if l.generation == id.generation => Some(ListenerStats {
                local_addr: l.local_addr.clone(),
                accepted: l.accepted,
                accept_errors: l.accept_errors,
                paused_by_limit: l.paused_by_limit,
                paused: l.held,
            }),
            _ => None,
        }
    }

    /// Out of descriptors or memory (or an unexpected error): tell pending clients, pause, and
    /// try again after a back-off (S27).
    fn exhausted(&mut self, index: usize, e: io::Error) {
        let Some(l) = self.listener(index) else {
            return;
        };
        if l.episode_failures == 0 && !sys::is_resource_error(&e) {
            log::error!(
                "listener {}: unexpected accept error: {e}; pausing accepts with back-off",
                l.local_addr
            );
        } else if l.episode_failures == 0 {
            log::warn!(
                "listener {}: accept failed: {e}; pausing accepts with back-off",
                l.local_addr
            );
        }
        l.episode_failures += 1;
        let mut shed = 0;
        if matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE)) {
            if let Some(spare) = l.spare.take() {
                drop(spare);
                // Each accepted socket is closed at once, so the one free slot is reused; the
                // budget bounds the work a flood can make in one turn.
                while shed < l.accepts_per_turn as u64 {
                    match l.socket.accept() {
                        Ok((stream, _)) => {
                            drop(stream);
                            shed += 1;
                        }
                        Err(_) => break,
                    }
                }
                reserve_spare(l);
            }
        }
        l.paused = true;
        let delay = l.backoff;
        l.backoff = l.backoff.saturating_mul(2).min(l.backoff_max);
        self.stats.accept_shed += shed;
        self.arm(delay, TimerEntry::ListenerResume(index as u32));
    }
}

/// Reserves the listener's spare descriptor if it has none; a failure is logged once.
fn reserve_spare<App>(l: &mut Listener<App>) {
    if l.spare.is_some() {
        return;
    }
    match l.socket.reserve_spare() {
        Ok(fd) => {
            if l.spare_failure_logged {
                log::info!("listener {}: spare descriptor reserved again", l.local_addr);
            }
            l.spare = Some(fd);
            l.spare_failure_logged = false;
        }
        Err(e) => {
            if !l.spare_failure_logged {
                log::warn!(
                    "listener {}: cannot reserve the spare descriptor again: {e}; retrying after \
                     each back-off",
                    l.local_addr
                );
                l.spare_failure_logged = true;
            }
        }
    }
}

impl<App> Core<App> {
    /// Accepts until `WouldBlock`, the per-turn budget, or an exhaustion pause.
    pub(crate) fn accept(&mut self, index: usize) {
        let mut accepted = 0;
        loop {
            let Some(l) = self.listener(index) else {
                return;
            };
            if l.paused || l.held {
                return;
            }
            if accepted >= l.accepts_per_turn {
                self.mark_ready(index);
                return;
            }
            let (shed_idle, reject) = match &l.policy {
                AtLimit::Pause => (false, false),
                AtLimit::Reject(_) => (false, true),
                AtLimit::ShedIdle => (true, false),
            };
            let at_limit = self.at_connection_limit();
            if at_limit
                && shed_idle
                && !self.listener(index).is_some_and(|l| l.socket.has_pending())
            {
                // Nobody is waiting: shedding now would close an idle connection for no
                // newcomer. The next client raises a new edge.
                return;
            }
            // A rejecting listener accepts at the limit too: the client is told, not served.
            if !(at_limit && reject || self.admit_connection(shed_idle)) {
                // At the connection limit: leave new clients in the backlog until one closes.
                if let Some(l) = self.listener(index) {
                    if !l.at_limit {
                        l.paused_by_limit += 1;
                    }
                    l.at_limit = true;
                }
                self.listeners_at_limit = true;
                return;
            }
            let Some(l) = self.listener(index) else {
                return;
            };
            match l.socket.accept() {
                Ok((stream, peer)) => {
                    accepted += 1;
                    // A rejected client is told, not served: not counted as accepted.
                    if !(at_limit && reject) {
                        l.accepted += 1;
                    }
                    if l.episode_failures > 0 {
                        log::info!(
                            "listener {}: accepting again after {} failed accepts",
                            l.local_addr,
                            l.episode_failures
                        );
                        l.episode_failures = 0;
                    }
                    l.backoff = l.backoff_min;
                    if at_limit && reject {
                        self.reject(index, stream, peer);
                    } else {
                        self.open_accepted(index, stream, peer);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if sys::is_transient_accept_error(&e) => {
                    l.accept_errors += 1;
                    self.stats.accept_errors.count(&e);
                }
                Err(e) => {
                    l.accept_errors += 1;
                    self.stats.accept_errors.count(&e);
                    self.exhausted(index, e);
                    return;
                }
            }
        }
    }

    /// The back-off ended: reserve the spare again if it is missing, and accept again (no edge
    /// will announce what queued meanwhile).
    pub(crate) fn resume_listener(&mut self, index: usize) {
        if let Some(l) = self.listener(index) {
            l.paused = false;
            reserve_spare(l);
            self.accept(index);
        }
    }

    /// Gives an accepted socket its handler and slot, then calls `on_open`.
    fn open_accepted(&mut self, index: usize, stream: Stream, peer: Option<SocketAddr>) {
        let (app, net) = self.split();
        let Some(l) = net.listener(index) else {
            return;
        };
        let from = PeerName(peer);
        let Some(handler) = l.factory.make(app, peer) else {
            // Dropping the stream closes it: a client with no address for a factory that
            // needs one is not served rather than given a made-up address.
            log::warn!(
                "listener {}: a client with no address, closed",
                l.local_addr
            );
            return;
        };
        let config = Rc::clone(&l.conn);
        apply_conn_options(&stream, &config);
        let phase = Phase::Open {
            first_byte: None,
            write: WriteHalf::Open,
        };
        match self.insert_conn(stream, handler, config, phase) {
            Ok(id) => {
                self.stats.accepted += 1;
                log::debug!("accepted {id} from {from}");
                self.arm_watchdog(id.index as usize);
                self.call(id.index as usize, |h, cx| h.on_open(cx));
            }
            Err(e) => log::warn!("registering a connection from {from}: {e}"),
        }
    }
}
