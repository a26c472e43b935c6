//! The table of sources: every listener, connection, UDP socket and registered descriptor, at
//! the index that is its `mio` token, with freed indexes reused last-freed first (as a slab
//! does).
//!
//! # Implementation notes
//! A free slot is a variant of [`Source`] itself ([`Source::Free`], holding the next free
//! index), not a wrapper around it as in a general slab. The difference is one test per
//! look-up: with a wrapper, finding a connection asks "is the slot taken?" and then "is it a
//! connection?"; here the connection's variant is tested alone, and a free slot simply is not
//! one. Every message looks its connection up three times (the read, the handler's write, the
//! flush), through [`Table::conn_mut`]. The general accessors ([`get`](Table::get),
//! [`get_mut`](Table::get_mut)) still answer `None` for a free slot, so no caller ever sees
//! one.

use crate::core::conn::Conn;
use crate::core::Source;

/// The sources, by index (see the module's notes).
pub(crate) struct Table<App> {
    entries: Vec<Source<App>>,
    /// The next index [`insert`](Self::insert) fills: the last one freed, or the end.
    next_free: usize,
    /// Slots in use.
    len: usize,
}

impl<App> Table<App> {
    pub(crate) fn new() -> Self {
        Table {
            entries: Vec::new(),
            next_free: 0,
            len: 0,
        }
    }

    /// Slots in use.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The source at `index`, if the slot is in use.
    #[inline]
    pub(crate) fn get(&self, index: usize) -> Option<&Source<App>> {
        match self.entries.get(index) {
            Some(Source::Free(_)) | None => None,
            Some(source) => Some(source),
        }
    }

    /// The source at `index`, if the slot is in use.
    #[inline]
    pub(crate) fn get_mut(&mut self, index: usize) -> Option<&mut Source<App>> {
        match self.entries.get_mut(index) {
            Some(Source::Free(_)) | None => None,
            Some(source) => Some(source),
        }
    }

    /// The connection at `index`, if that slot holds one: one test of the slot's variant.
    #[inline(always)]
    pub(crate) fn conn_mut(&mut self, index: usize) -> Option<&mut Conn> {
        match self.entries.get_mut(index) {
            Some(Source::Conn(conn)) => Some(conn),
            _ => None,
        }
    }

    /// The index the next [`insert`](Self::insert) fills (a source registers with it as its
    /// token before it is inserted).
    pub(crate) fn vacant_key(&self) -> usize {
        self.next_free
    }

    /// Puts `source` in a free slot and returns its index, [`vacant_key`](Self::vacant_key).
    pub(crate) fn insert(&mut self, source: Source<App>) -> usize {
        debug_assert!(!matches!(source, Source::Free(_)));
        let index = self.next_free;
        if index == self.entries.len() {
            self.entries.push(source);
            self.next_free = index + 1;
        } else {
            let free = std::mem::replace(&mut self.entries[index], source);
            let Source::Free(next) = free else {
                unreachable!("the free list led to a slot in use");
            };
            self.next_free = next;
        }
        self.len += 1;
        index
    }

    /// Takes the source out of `index`, freeing the slot; `None` (and nothing changes) if the
    /// slot is not in use.
    pub(crate) fn try_remove(&mut self, index: usize) -> Option<Source<App>> {
        let slot = self.entries.get_mut(index)?;
        if matches!(slot, Source::Free(_)) {
            return None;
        }
        let source = std::mem::replace(slot, Source::Free(self.next_free));
        self.next_free = index;
        self.len -= 1;
        Some(source)
    }

    /// Every source in use, with its index, in index order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (usize, &Source<App>)> {
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, source)| !matches!(source, Source::Free(_)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(t: &Table<()>) -> Vec<(usize, &'static str)> {
        t.iter()
            .map(|(i, s)| {
                let kind = match s {
                    Source::Signals => "signals",
                    Source::Waker => "waker",
                    _ => "other",
                };
                (i, kind)
            })
            .collect()
    }

    #[test]
    fn freed_indexes_are_reused_last_freed_first_and_free_slots_are_never_seen() {
        let mut t = Table::<()>::new();
        for i in 0..4 {
            assert_eq!(t.vacant_key(), i);
            assert_eq!(t.insert(Source::Waker), i);
        }
        assert!(t.try_remove(1).is_some());
        assert!(t.try_remove(3).is_some());
        assert_eq!(t.len(), 2);
        for index in [1, 3, 4, 99] {
            assert!(t.get(index).is_none(), "{index}");
            assert!(t.get_mut(index).is_none(), "{index}");
            assert!(t.conn_mut(index).is_none(), "{index}");
            assert!(t.try_remove(index).is_none(), "{index}");
        }
        assert_eq!(t.len(), 2);
        assert_eq!(kinds(&t), [(0, "waker"), (2, "waker")]);
        // Last freed first, then the one before, then the end.
        assert_eq!(t.vacant_key(), 3);
        assert_eq!(t.insert(Source::Signals), 3);
        assert_eq!(t.insert(Source::Signals), 1);
        assert_eq!(t.insert(Source::Signals), 4);
        assert_eq!(t.len(), 5);
        assert_eq!(
            kinds(&t),
            [
                (0, "waker"),
                (1, "signals"),
                (2, "waker"),
                (3, "signals"),
                (4, "signals")
            ]
        );
        assert!(matches!(t.get(1), Some(Source::Signals)));
        assert!(t.conn_mut(1).is_none());
    }
}
