//! A cap on the sockets one edge process holds (`NOVA_WS_MAX_SOCKETS`), so a crowd
//! gets a clear 503 instead of exhausting file descriptors or memory.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

/// The places for sockets, shared by every request.
#[derive(Debug, Clone)]
pub struct Slots {
    taken: Arc<AtomicUsize>,
    max: usize,
}

/// One socket's place; freed when dropped.
#[derive(Debug)]
pub struct Slot(Arc<AtomicUsize>);

impl Slots {
    /// Allows `max` sockets at once.
    pub fn new(max: usize) -> Self {
        Self {
            taken: Arc::default(),
            max,
        }
    }

    /// Takes a place, or `None` when all are taken.
    pub fn try_take(&self) -> Option<Slot> {
        let before = self.taken.fetch_add(1, Ordering::AcqRel);
        if before >= self.max {
            self.taken.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Slot(self.taken.clone()))
    }

    /// Places taken now.
    pub fn taken(&self) -> usize {
        self.taken.load(Ordering::Acquire)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_capped_and_come_back_when_dropped() {
        let slots = Slots::new(2);
        let a = slots.try_take().expect("first");
        let _b = slots.try_take().expect("second");
        assert!(slots.try_take().is_none(), "third refused");
        assert_eq!(slots.taken(), 2, "a refusal takes nothing");
        drop(a);
        assert!(slots.try_take().is_some(), "a freed place is reusable");
    }
}
