//! Intrusive doubly linked lists threaded through the entries of the slab.
//!
//! A list is just its two ends; the links live in the entries as slab indices. Pushing,
//! unlinking and popping touch at most three entries and never allocate.

use slab::Slab;

use crate::entry::{Entry, NIL};

/// A list of entries, linked through their `prev` and `next` indices.
#[derive(Clone, Copy, Debug)]
pub(crate) struct List {
    /// The first entry, or [`NIL`] when the list is empty.
    head: u32,
    /// The last entry, or [`NIL`] when the list is empty; new entries go after it so that
    /// entries leave a list in the order they joined it.
    tail: u32,
}

impl List {
    /// The empty list.
    pub(crate) const EMPTY: List = List {
        head: NIL,
        tail: NIL,
    };

    /// Whether the list holds no entry.
    pub(crate) fn is_empty(&self) -> bool {
        self.head == NIL
    }

    /// Links entry `index` in at the tail.
    pub(crate) fn push_back<T>(&mut self, entries: &mut Slab<Entry<T>>, index: u32) {
        let entry = &mut entries[index as usize];
        entry.prev = self.tail;
        entry.next = NIL;
        match self.tail {
            NIL => self.head = index,
            tail => entries[tail as usize].next = index,
        }
        self.tail = index;
    }

    /// Unlinks entry `index`, which must be in this list.
    pub(crate) fn unlink<T>(&mut self, entries: &mut Slab<Entry<T>>, index: u32) {
        let entry = &entries[index as usize];
        let (prev, next) = (entry.prev, entry.next);
        match prev {
            NIL => self.head = next,
            prev => entries[prev as usize].next = next,
        }
        match next {
            NIL => self.tail = prev,
            next => entries[next as usize].prev = prev,
        }
    }

    /// Unlinks and returns the head, if any.
    pub(crate) fn pop_front<T>(&mut self, entries: &mut Slab<Entry<T>>) -> Option<u32> {
        let head = self.head;
        if head == NIL {
            return None;
        }
        self.head = entries[head as usize].next;
        match self.head {
            NIL => self.tail = NIL,
            next => entries[next as usize].prev = NIL,
        }
        Some(head)
    }

    /// The first entry, or [`NIL`]: a detached list is walked through the `next` links,
    /// reading each link before the entry is filed elsewhere.
    pub(crate) fn head(&self) -> u32 {
        self.head
    }

    /// Empties the list and returns what it held.
    pub(crate) fn take(&mut self) -> List {
        std::mem::replace(self, List::EMPTY)
    }

    /// Moves every entry of `other` to the tail of this list, in order, in O(1).
    pub(crate) fn append<T>(&mut self, entries: &mut Slab<Entry<T>>, other: List) {
        if other.is_empty() {
            return;
        }
        match self.tail {
            NIL => self.head = other.head,
            tail => {
                entries[tail as usize].next = other.head;
                entries[other.head as usize].prev = tail;
            }
        }
        self.tail = other.tail;
    }
}
