//! Loop-wide limits: how many connections, and how many queued output bytes across all of them.
//!
//! Per-connection water marks stop one slow reader from growing memory; they do not stop ten
//! thousand slow readers, each just under its cap. The output budget bounds the sum: when a
//! write would take the total past it, the connections with the most queued bytes are aborted
//! first with [`CloseReason::SlowConsumer`], *before* the new bytes are queued, so memory never
//! grows past the budget. The connection limit keeps the loop below the descriptor limit: at the
//! limit each listener follows its [`AtLimit`](crate::AtLimit) policy (pause, leaving new
//! clients in the backlog; reject them with a goodbye; or shed the longest-idle connection)
//! instead of failing accepts, and paused listeners resume as connections close.

use crate::core::{Net, Source};
use crate::{sys, CloseReason};

/// Limits that apply to a whole reactor.
///
/// ```
/// use evdrive_reactor::Limits;
/// let limits = Limits::default()
///     .with_output_budget(Some(256 << 20));
/// assert!(limits.max_connections > 0);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// The most connections open at once (accepted plus outgoing). At the limit listeners pause
    /// until a connection closes. Default: the descriptor limit (`RLIMIT_NOFILE`) minus a margin
    /// for listeners, the poll descriptor, logs and the spare descriptor.
    /// What each listener does at the limit is its own
    /// [`ListenOptions::at_limit`](crate::ListenOptions::at_limit). Rejected clients being told
    /// their goodbye hold a slot for a moment but do not count against this limit.
    pub max_connections: usize,
    /// The most output bytes queued across all connections; `None`: unbounded (each connection
    /// is still bounded by its own `max_output`).
    pub output_budget: Option<usize>,
}

impl Limits {
    /// The defaults (see [`Default`]); change them with the `with_` methods.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`max_connections`](Self::max_connections).
    #[must_use]
    pub fn with_max_connections(mut self, max_connections: usize) -> Self {
        self.max_connections = max_connections;
        self
    }

    /// Sets [`output_budget`](Self::output_budget).
    #[must_use]
    pub fn with_output_budget(mut self, output_budget: Option<usize>) -> Self {
        self.output_budget = output_budget;
        self
    }
}

impl Default for Limits {
    fn default() -> Self {
        let soft = sys::nofile_limit().map_or(1024, |(soft, _)| soft.min(1 << 24) as usize);
        let margin = (soft / 16).clamp(16, 256);
        Limits {
            max_connections: soft.saturating_sub(margin).max(1),
            output_budget: None,
        }
    }
}

impl<App> Net<App> {
    /// Makes room for `incoming` more output bytes within the budget by aborting the
    /// connections with the largest queues. Returns `false` if `target` itself was aborted (or
    /// the bytes can never fit).
    pub(crate) fn make_room(&mut self, target: usize, incoming: usize) -> bool {
        let Some(budget) = self.limits.output_budget else {
            return true;
        };
        while self.queued_total + incoming > budget {
            let victim = self
                .sources
                .iter()
                .filter_map(|(i, s)| match s {
                    Source::Conn(c) if !c.is_dead() && !c.output.is_empty() => {
                        Some((c.output.len(), i))
                    }
                    _ => None,
                })
                .max();
            let Some((queued, index)) = victim else {
                // Nothing left to shed: this write alone is over the budget.
                self.stats.slow_consumers += 1;
                self.abort(target, CloseReason::SlowConsumer);
                return false;
            };
            log::debug!("output budget {budget} B exceeded: shedding #{index} ({queued} B queued)");
            self.stats.slow_consumers += 1;
            self.stats.budget_sheds += 1;
            self.abort(index, CloseReason::SlowConsumer);
            if index == target {
                return false;
            }
        }
        true
    }

    /// Whether the connection limit is reached (rejected clients being told are not in
    /// `open`, so they do not count).
    pub(crate) fn at_connection_limit(&self) -> bool {
        self.stats.open as usize >= self.limits.max_connections
    }

    /// Whether another connection may be opened now; at the limit, with `shed_idle`, sheds the
    /// longest-idle connection to make room (S24).
    pub(crate) fn admit_connection(&mut self, shed_idle: bool) -> bool {
        if !self.at_connection_limit() {
            return true;
        }
        if !shed_idle {
            return false;
        }
        let idlest = self
            .sources
            .iter()
            .filter_map(|(i, s)| match s {
                Source::Conn(c) if c.is_open() => Some((self.last_activity(i), i)),
                _ => None,
            })
            .min();
        match idlest {
            Some((_, index)) => {
                self.stats.idle_sheds += 1;
                // Aborted, not closed gracefully: the slot must be free at the end of this turn.
                self.abort(index, CloseReason::IdleTimeout);
                // The slot frees when the dead connection is finalized; the listener resumes then.
                false
            }
            None => false,
        }
    }

    /// Replaces the loop-wide limits; listeners paused at the old limit look again.
    pub(crate) fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
        self.listeners_at_limit = true;
        self.connection_released();
    }

    /// The loop-wide limits in force.
    pub(crate) fn limits(&self) -> &Limits {
        &self.limits
    }

    /// A connection closed: wake listeners paused at the connection limit.
    pub(crate) fn connection_released(&mut self) {
        if !self.listeners_at_limit || self.at_connection_limit() {
            return;
        }
        self.listeners_at_limit = false;
        let paused: Vec<usize> = self
            .sources
            .iter()
            .filter_map(|(i, s)| match s {
                Source::Listener(l) if l.at_limit => Some(i),
                _ => None,
            })
            .collect();
        for index in paused {
            if let Some(Source::Listener(l)) = self.sources.get_mut(index) {
                l.at_limit = false;
            }
            self.mark_ready(index);
        }
    }
}
