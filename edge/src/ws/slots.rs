//! Caps on the sockets one edge process holds: all of them (`NOVA_WS_MAX_SOCKETS`, a
//! semaphore), and those of one client (`NOVA_WS_MAX_SOCKETS_PER_IP`, per IPv4
//! address or IPv6 /64), so a crowd or one greedy client gets a clear refusal
//! instead of exhausting file descriptors or memory.

use std::{net::IpAddr, sync::Arc};

use dashmap::DashMap;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::ratelimit::client_key;

/// The places for sockets, shared by every request.
#[derive(Debug, Clone)]
pub struct Slots {
    /// One permit per socket this edge may hold.
    edge: Arc<Semaphore>,
    /// Sockets held per client key; an entry is removed when its count drops to 0.
    clients: Arc<DashMap<IpAddr, usize>>,
    /// The edge-wide maximum.
    max: usize,
    /// The per-client maximum.
    max_per_client: usize,
}

/// Why no place was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoSlot {
    /// The edge holds its maximum.
    EdgeFull,
    /// This client holds its maximum.
    ClientFull,
}

/// One socket's place; freed when dropped.
#[derive(Debug)]
pub struct Slot {
    /// The edge-wide permit.
    _permit: OwnedSemaphorePermit,
    /// The client's count to decrement.
    clients: Arc<DashMap<IpAddr, usize>>,
    /// The client key.
    key: IpAddr,
}

impl Slots {
    /// Allows `max` sockets at once, `max_per_client` of them per client.
    pub fn new(max: usize, max_per_client: usize) -> Self {
        Self {
            edge: Arc::new(Semaphore::new(max.min(Semaphore::MAX_PERMITS))),
            clients: Arc::default(),
            max: max.min(Semaphore::MAX_PERMITS),
            max_per_client,
        }
    }

    /// Takes a place for the client at `ip`.
    pub fn try_take(&self, ip: IpAddr) -> Result<Slot, NoSlot> {
        let key = client_key(ip);
        {
            let mut held = self.clients.entry(key).or_insert(0);
            if *held >= self.max_per_client {
                return Err(NoSlot::ClientFull);
            }
            *held += 1;
        }
        let slot = |permit| Slot {
            _permit: permit,
            clients: self.clients.clone(),
            key,
        };
        match self.edge.clone().try_acquire_owned() {
            Ok(permit) => Ok(slot(permit)),
            Err(_) => {
                release(&self.clients, key);
                Err(NoSlot::EdgeFull)
            }
        }
    }

    /// Places taken now.
    pub fn taken(&self) -> usize {
        self.max - self.edge.available_permits()
    }

    /// Clients holding at least one place.
    pub fn clients(&self) -> usize {
        self.clients.len()
    }
}

fn release(clients: &DashMap<IpAddr, usize>, key: IpAddr) {
    if let Some(mut held) = clients.get_mut(&key) {
        *held = held.saturating_sub(1);
    }
    clients.remove_if(&key, |_, held| *held == 0);
}

impl Drop for Slot {
    fn drop(&mut self) {
        release(&self.clients, self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(raw: &str) -> IpAddr {
        raw.parse().unwrap()
    }

    #[test]
    fn places_are_capped_and_come_back_when_dropped() {
        let slots = Slots::new(2, 10);
        let a = slots.try_take(ip("10.0.0.1")).expect("first");
        let _b = slots.try_take(ip("10.0.0.2")).expect("second");
        assert_eq!(
            slots.try_take(ip("10.0.0.3")).unwrap_err(),
            NoSlot::EdgeFull
        );
        assert_eq!(slots.taken(), 2, "a refusal takes nothing");
        assert_eq!(slots.clients(), 2, "the refused client is not remembered");
        drop(a);
        assert!(
            slots.try_take(ip("10.0.0.3")).is_ok(),
            "a freed place is reusable"
        );
    }

    #[test]
    fn one_client_holds_at_most_its_share_per_64() {
        let slots = Slots::new(100, 2);
        let a = slots.try_take(ip("2001:db8::1")).expect("first");
        let _b = slots.try_take(ip("2001:db8::2")).expect("second, same /64");
        assert_eq!(
            slots.try_take(ip("2001:db8::3")).unwrap_err(),
            NoSlot::ClientFull
        );
        assert!(slots.try_take(ip("2001:db8:0:1::1")).is_ok(), "another /64");
        drop(a);
        assert!(slots.try_take(ip("2001:db8::3")).is_ok(), "a freed place");
    }
}
