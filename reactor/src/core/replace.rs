//! Switching a live connection's handler: a handler asks for its successor during a callback
//! ([`Cx::replace_handler`](crate::Cx::replace_handler)), and the core installs it once that
//! callback has returned (an HTTP request upgraded to WebSocket, a STARTTLS-like switch, a
//! sniffing handler that hands over once it knows the protocol).
//!
//! # Implementation notes
//! A handler runs taken out of its slot ([`Core::call`]), so it cannot be replaced while it
//! runs: the successor waits in [`Net`]'s mailbox, keyed by the connection's id. Callbacks
//! nest where a callback adopts or connects a connection whose `on_open` runs at once, and
//! both may ask for a successor, so the mailbox holds one entry per connection (nearly always
//! none, and never more than the depth of the nesting). [`Core::call`] installs it after the
//! callback, drops the old handler without `on_close` (the connection did not close), and runs
//! the new one's [`on_open`](crate::Protocol::on_open). Input the old handler left unconsumed
//! is offered to the new one at once, by [`Core::deliver`] when the switch was asked for in
//! `on_data` (it notices through [`Net::swaps`]), here otherwise: the bytes after an upgrade request that arrived in the same read are the
//! new protocol's first bytes, and no new edge would come for them. `on_close` still runs
//! exactly once, to whichever handler is in the slot when the connection ends.

use crate::core::{Core, Net};
use crate::{ConnId, Protocol};

impl<App> Net<App> {
    /// Keeps `handler` to replace `id`'s handler when the running callback returns. Returns
    /// `false` (dropping `handler`) if the connection is not open.
    pub(crate) fn request_replacement(
        &mut self,
        id: ConnId,
        handler: Box<dyn Protocol<App>>,
    ) -> bool {
        if !self.conn_ref(id).is_some_and(|c| c.is_open()) {
            return false;
        }
        // A second request in the same callback wins: the last word is the handler's.
        match self
            .replacements
            .iter_mut()
            .find(|(wanted, _)| *wanted == id)
        {
            Some(entry) => entry.1 = handler,
            None => self.replacements.push((id, handler)),
        }
        true
    }

    /// How many handlers have been replaced so far; [`Core::deliver`] compares it around a
    /// callback to learn whether the input it kept belongs to a new handler.
    pub(crate) fn swaps(&self) -> u64 {
        self.swaps
    }
}

impl<App> Core<App> {
    /// Installs the successor `index`'s handler asked for, if any, and opens it. Called by
    /// [`Core::call`] after every callback, with the old handler back in its slot.
    ///
    /// Every callback passes here, and nearly none asked for a successor: the check is inlined,
    /// the installation is not.
    #[inline]
    pub(super) fn install_replacement(&mut self, index: usize, id: ConnId) {
        if !self.net.replacements.is_empty() {
            self.install_requested(index, id);
        }
    }

    /// The part of [`install_replacement`](Self::install_replacement) that runs only when a
    /// successor was asked for.
    #[cold]
    #[inline(never)]
    fn install_requested(&mut self, index: usize, id: ConnId) {
        // Only this connection's: another's (a callback this one nests in) waits for its own
        // callback to return.
        let Some(at) = self
            .net
            .replacements
            .iter()
            .position(|(wanted, _)| *wanted == id)
        else {
            return;
        };
        let (_, handler) = self.net.replacements.swap_remove(at);
        // The connection began closing after the request: the successor is dropped unused,
        // never opened and never closed, and the handler in place gets `on_close`.
        if !self.conn_at(index).is_some_and(|c| c.is_open()) {
            return;
        }
        let Some(slot) = self.net.handlers.get_mut(index) else {
            return;
        };
        let old = slot.replace(handler);
        drop(old);
        self.net.swaps += 1;
        log::debug!("#{index} handler replaced");
        // The new handler's `on_open` may itself ask for a successor: `call` installs it.
        self.call(index, |h, cx| h.on_open(cx));
        // Input kept from before (a switch asked for outside `on_data`, with an unfinished
        // frame kept) is offered now. Inside `deliver` the kept input is out of its slot during
        // the call, so this does nothing there and `deliver` offers the tail itself.
        self.deliver(index, &[]);
    }
}
