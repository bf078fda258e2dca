//! A per-address budget of refused publishes, so stream keys cannot be guessed over
//! RTMP: after `burst` refusals an address is refused at once, without asking the
//! control plane, until its budget refills at one attempt per `refill`.
//!
//! The budget itself is a keyed `governor` limiter that only refusals draw from.
//! Because `governor` cannot look without drawing, an address whose refusal took
//! the last cell is remembered in a small penalty box until a cell is back.
//! IPv6 addresses share one budget per /64, which is what one client usually holds.

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv6Addr},
    num::NonZeroU32,
    sync::Mutex,
    time::{Duration, Instant},
};

use governor::{
    Quota, RateLimiter,
    clock::{Clock, DefaultClock},
    middleware::StateInformationMiddleware,
    state::keyed::DefaultKeyedStateStore,
};

/// Most addresses kept in the penalty box; past it, expired entries are swept and,
/// if still full, the newest offender is not boxed (the limiter still counts it).
const MAX_BOXED: usize = 100_000;
/// Every this many refusals, budgets that have refilled are forgotten, so refusals
/// from ever new addresses cannot grow the limiter's memory without bound.
const PRUNE_EVERY: u64 = 1024;

/// Failed-publish budget of every peer address.
pub struct PublishBudget {
    /// Refusals per address group.
    refusals: RateLimiter<
        IpAddr,
        DefaultKeyedStateStore<IpAddr>,
        DefaultClock,
        StateInformationMiddleware,
    >,
    /// Address groups out of budget, and until when.
    boxed: Mutex<HashMap<IpAddr, Instant>>,
    /// The limiter's clock, to turn its answers into instants.
    clock: DefaultClock,
    /// Refusals recorded, for pruning.
    recorded: std::sync::atomic::AtomicU64,
}

impl PublishBudget {
    /// Allows `burst` refusals per address, refilled at one per `refill`.
    pub fn new(burst: NonZeroU32, refill: Duration) -> Self {
        let refill = refill.max(Duration::from_millis(1));
        let quota = Quota::with_period(refill)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(burst);
        Self {
            refusals: RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>(),
            boxed: Mutex::default(),
            clock: DefaultClock::default(),
            recorded: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Tells whether `addr` (as nginx wrote it) has run out of budget. Addresses
    /// that are not IPs (nginx's own relay) never run out.
    pub fn exhausted(&self, addr: &str) -> bool {
        let Some(group) = group(addr) else {
            return false;
        };
        let mut boxed = self.boxed();
        match boxed.get(&group) {
            Some(until) if *until > Instant::now() => true,
            Some(_) => {
                boxed.remove(&group);
                false
            }
            None => false,
        }
    }

    /// Records a refused publish from `addr`; returns whether that used up its budget.
    pub fn refused(&self, addr: &str) -> bool {
        let Some(group) = group(addr) else {
            return false;
        };
        let recorded = self
            .recorded
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if recorded % PRUNE_EVERY == PRUNE_EVERY - 1 {
            self.refusals.retain_recent();
            let now = Instant::now();
            self.boxed().retain(|_, until| *until > now);
        }
        let wait = match self.refusals.check_key(&group) {
            Ok(left) if left.remaining_burst_capacity() > 0 => return false,
            Ok(left) => left.quota().replenish_interval(),
            Err(not_until) => not_until.wait_time_from(self.clock.now()),
        };
        let mut boxed = self.boxed();
        if boxed.len() >= MAX_BOXED {
            let now = Instant::now();
            boxed.retain(|_, until| *until > now);
            self.refusals.retain_recent();
        }
        if boxed.len() < MAX_BOXED {
            boxed.insert(group, Instant::now() + wait);
        }
        true
    }

    fn boxed(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Instant>> {
        self.boxed.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Returns the budget group of an address: the IPv4 address, or the IPv6 /64.
fn group(addr: &str) -> Option<IpAddr> {
    match addr.parse::<IpAddr>().ok()? {
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => {
            let net = u128::from(v6) & (u128::MAX << 64);
            Some(IpAddr::V6(Ipv6Addr::from(net)))
        }
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4),
        v4 => Some(v4),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(burst: u32) -> PublishBudget {
        PublishBudget::new(NonZeroU32::new(burst).unwrap(), Duration::from_secs(3600))
    }

    #[test]
    fn an_address_runs_dry_after_its_burst_and_others_do_not() {
        let budget = budget(3);
        for _ in 0..2 {
            assert!(!budget.exhausted("192.0.2.1"));
            assert!(!budget.refused("192.0.2.1"));
        }
        assert!(!budget.exhausted("192.0.2.1"));
        assert!(
            budget.refused("192.0.2.1"),
            "the 3rd refusal uses the budget up"
        );
        assert!(budget.exhausted("192.0.2.1"));
        assert!(!budget.exhausted("192.0.2.2"));
    }

    #[test]
    fn ipv6_shares_a_budget_per_64_and_mapped_v4_is_v4() {
        let budget = budget(2);
        budget.refused("2001:db8::1");
        budget.refused("2001:db8::2");
        assert!(budget.exhausted("2001:db8::ffff"));
        assert!(!budget.exhausted("2001:db8:0:1::1"));
        budget.refused("198.51.100.7");
        budget.refused("::ffff:198.51.100.7");
        assert!(budget.exhausted("198.51.100.7"));
    }

    #[test]
    fn the_relay_and_garbage_never_run_dry() {
        let budget = budget(1);
        for _ in 0..5 {
            assert!(!budget.refused("127.0.0.1:1935/stream/x"));
        }
        assert!(!budget.exhausted("127.0.0.1:1935/stream/x"));
        assert!(!budget.exhausted(""));
    }

    #[test]
    fn refusals_from_ever_new_addresses_do_not_grow_memory_without_bound() {
        let budget = PublishBudget::new(NonZeroU32::new(5).unwrap(), Duration::from_millis(1));
        for i in 0..20_000u32 {
            let [a, b, c, d] = (0x0a00_0000 + i).to_be_bytes();
            budget.refused(&format!("{a}.{b}.{c}.{d}"));
        }
        std::thread::sleep(Duration::from_millis(10));
        for i in 0..PRUNE_EVERY as u32 {
            budget.refused(&format!("192.0.2.{}", i % 200));
        }
        assert!(
            budget.refusals.len() < 2_000,
            "{} budgets kept after they refilled",
            budget.refusals.len()
        );
    }

    #[test]
    fn the_budget_refills() {
        let budget = PublishBudget::new(NonZeroU32::MIN, Duration::from_millis(20));
        assert!(budget.refused("192.0.2.9"));
        assert!(budget.exhausted("192.0.2.9"));
        let deadline = Instant::now() + Duration::from_secs(5);
        while budget.exhausted("192.0.2.9") {
            assert!(Instant::now() < deadline, "the budget never refilled");
            std::thread::yield_now();
        }
    }
}
