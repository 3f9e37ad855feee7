//! What one client address may hold without a credential: a bounded number of requests in
//! flight and a bounded rate (GCRA, `governor`), so a slow or flooding client cannot take the
//! request slots everyone shares. Requests with an `Authorization` header are limited by
//! their credential's work instead (failed logins by the login throttle).

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

/// Requests without a credential one address may have in flight at once.
pub const UNAUTHENTICATED_IN_FLIGHT_PER_ADDRESS_MAX: usize = 16;
/// Requests without a credential one address may send in a burst...
pub const UNAUTHENTICATED_REQUESTS_PER_ADDRESS_BURST: u32 = 100;
/// ...and then one per this period (20 per second).
pub const UNAUTHENTICATED_REQUEST_REFILL: Duration = Duration::from_millis(50);
/// Addresses tracked at most before forgotten ones start afresh.
pub const CLIENT_ADDRESSES_MAX: usize = 100_000;

/// Why a request was turned away, and when to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    InFlight,
    Rate(Duration),
}

pub(crate) struct ClientLimits {
    in_flight: Mutex<HashMap<IpAddr, usize>>,
    in_flight_max: usize,
    rate: RateLimiter<IpAddr, DefaultKeyedStateStore<IpAddr>, DefaultClock>,
}

impl ClientLimits {
    pub(crate) fn new(in_flight_max: usize) -> Self {
        let quota = Quota::with_period(UNAUTHENTICATED_REQUEST_REFILL)
            .expect("a non-zero period")
            .allow_burst(
                NonZeroU32::new(UNAUTHENTICATED_REQUESTS_PER_ADDRESS_BURST).expect("non-zero"),
            );
        Self {
            in_flight: Mutex::default(),
            in_flight_max,
            rate: RateLimiter::keyed(quota),
        }
    }

    /// Admits one request without a credential from `address`; the guard frees its place.
    pub(crate) fn admit(self: &Arc<Self>, address: IpAddr) -> Result<InFlight, Refused> {
        if let Err(not_until) = self.rate.check_key(&address) {
            return Err(Refused::Rate(
                not_until.wait_time_from(DefaultClock::default().now()),
            ));
        }
        if self.rate.len() > CLIENT_ADDRESSES_MAX {
            self.rate.retain_recent();
        }
        let mut in_flight = self
            .in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = in_flight.entry(address).or_insert(0);
        if *n >= self.in_flight_max {
            return Err(Refused::InFlight);
        }
        *n += 1;
        Ok(InFlight {
            limits: Arc::clone(self),
            address,
        })
    }
}

/// A place in flight, given back on drop.
pub(crate) struct InFlight {
    limits: Arc<ClientLimits>,
    address: IpAddr,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut in_flight = self
            .limits
            .in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = in_flight.get_mut(&self.address) {
            *n -= 1;
            if *n == 0 {
                in_flight.remove(&self.address);
            }
        }
    }
}
