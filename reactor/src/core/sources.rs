//! User sources in the reactor's slab: added, changed, removed, and served when ready (S1).
//!
//! # Implementation notes
//! A source's callback gets the loop-wide context, which reaches the slab the source lives in;
//! so, as a connection's handler is, the source is taken out of its slot while its callback
//! runs. Changes asked for meanwhile (by the callback's own context, or by its
//! [`PostAction`]) are recorded in the slot's wanted state (`enabled`, `interest`, `removed`)
//! and applied when it is put back, by the one function that talks to the poller (`sync`).

use std::io;

use mio::{Interest, Registry, Token};

use crate::core::{Core, Net, Source};
use crate::source::{PostAction, SourceEvent, SourceId, UserSource};
use crate::transport::Readiness;
use crate::LoopCx;

/// A user source's slot.
pub(crate) struct UserSlot<App> {
    /// Generation of this slot's occupant (see [`SourceId`]).
    generation: u32,
    /// The source; `None` only while its callback runs.
    inner: Option<Box<dyn UserSource<App>>>,
    /// What it should be watched for.
    pub(crate) interest: Interest,
    /// Whether it should be watched at all.
    pub(crate) enabled: bool,
    /// Removal asked for while its callback ran.
    removed: bool,
    /// Register again even if nothing changed ([`PostAction::Rearm`]).
    rearm: bool,
    /// What the poller has now: `Some(interest)` while registered.
    registered: Option<Interest>,
}

/// Brings the poller in line with what the slot wants.
fn sync<App>(
    registry: &Registry,
    index: usize,
    slot: &mut UserSlot<App>,
    inner: &mut dyn UserSource<App>,
) -> io::Result<()> {
    let token = Token(index);
    let rearm = std::mem::take(&mut slot.rearm);
    match (slot.enabled, slot.registered) {
        (false, Some(_)) => {
            slot.registered = None;
            inner.deregister(registry)
        }
        (true, None) => {
            inner.register(registry, token, slot.interest)?;
            slot.registered = Some(slot.interest);
            Ok(())
        }
        (true, Some(now)) if now != slot.interest || rearm => {
            inner.reregister(registry, token, slot.interest)?;
            slot.registered = Some(slot.interest);
            Ok(())
        }
        _ => Ok(()),
    }
}

impl<App> Net<App> {
    fn user_slot(&mut self, id: SourceId) -> Option<&mut UserSlot<App>> {
        match self.sources.get_mut(id.index as usize) {
            Some(Source::User(s)) if s.generation == id.generation => Some(s),
            _ => None,
        }
    }

    /// Registers a user source and gives it a slot.
    pub(crate) fn add_user_source(
        &mut self,
        mut inner: Box<dyn UserSource<App>>,
        interest: Interest,
    ) -> io::Result<SourceId> {
        let index = self.sources.vacant_key();
        inner.register(&self.registry, Token(index), interest)?;
        self.next_generation = self.next_generation.wrapping_add(1);
        let generation = self.next_generation;
        self.sources.insert(Source::User(Box::new(UserSlot {
            generation,
            inner: Some(inner),
            interest,
            enabled: true,
            removed: false,
            rearm: false,
            registered: Some(interest),
        })));
        Ok(SourceId {
            index: index as u32,
            generation,
        })
    }

    /// Removes a user source, deregistering it; while its callback runs, when it returns.
    pub(crate) fn remove_user_source(&mut self, id: SourceId) -> bool {
        let index = id.index as usize;
        let Some(slot) = self.user_slot(id) else {
            return false;
        };
        if slot.inner.is_none() {
            slot.removed = true;
            return true;
        }
        if let Some(Source::User(mut slot)) = self.sources.try_remove(index) {
            if let (Some(inner), Some(_)) = (slot.inner.as_mut(), slot.registered) {
                if let Err(e) = inner.deregister(&self.registry) {
                    log::debug!("deregistering {id}: {e}");
                }
            }
        }
        true
    }

    /// Changes what a user source wants and applies it now, or when its running callback
    /// returns. A failure to apply it removes the source.
    pub(crate) fn change_user_source(
        &mut self,
        id: SourceId,
        change: impl FnOnce(&mut UserSlot<App>),
    ) -> io::Result<bool> {
        let Some(Source::User(slot)) = self.sources.get_mut(id.index as usize) else {
            return Ok(false);
        };
        if slot.generation != id.generation {
            return Ok(false);
        }
        change(slot);
        let Some(mut inner) = slot.inner.take() else {
            return Ok(true);
        };
        let result = sync(&self.registry, id.index as usize, slot, &mut *inner);
        slot.inner = Some(inner);
        if let Err(e) = result {
            self.remove_user_source(id);
            return Err(e);
        }
        Ok(true)
    }

    /// User sources registered now.
    pub(crate) fn user_sources(&self) -> usize {
        self.sources
            .iter()
            .filter(|(_, s)| matches!(s, Source::User(_)))
            .count()
    }
}

impl<App> Core<App> {
    /// Runs a ready user source's callback, then applies what it asked for.
    pub(crate) fn serve_user_source(&mut self, index: usize, ready: Readiness) {
        let Some(Source::User(slot)) = self.net.sources.get_mut(index) else {
            return;
        };
        // An event queued before the source was disabled.
        if slot.registered.is_none() {
            return;
        }
        let Some(mut inner) = slot.inner.take() else {
            return;
        };
        let event = SourceEvent {
            id: SourceId {
                index: index as u32,
                generation: slot.generation,
            },
            readable: ready.readable,
            writable: ready.writable,
            error: ready.error,
            hup: ready.read_closed,
        };
        let action = inner.ready(&mut LoopCx::new(self), event);
        // Slots of user sources are only removed here or when their source is not running.
        let net = &mut self.net;
        let Some(Source::User(slot)) = net.sources.get_mut(index) else {
            return;
        };
        match action {
            PostAction::Continue => {}
            PostAction::Rearm => slot.rearm = true,
            PostAction::Disable => slot.enabled = false,
            PostAction::Remove => slot.removed = true,
        }
        if slot.removed {
            if slot.registered.is_some() {
                if let Err(e) = inner.deregister(&net.registry) {
                    log::debug!("deregistering {}: {e}", event.id);
                }
            }
            net.sources.try_remove(index);
            return;
        }
        let result = sync(&net.registry, index, slot, &mut *inner);
        slot.inner = Some(inner);
        if let Err(e) = result {
            log::warn!("{}: registering again failed: {e}; removed", event.id);
            net.remove_user_source(event.id);
        }
    }
}
