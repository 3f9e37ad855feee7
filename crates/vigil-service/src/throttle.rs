//! Failed logins are limited per account and per client address, so a password cannot be
//! guessed at speed: each key may fail a burst of times, then once per refill period (GCRA,
//! `governor`). A key over its budget is refused with a time to retry — before any password
//! is hashed, so a flood of throttled attempts costs nothing — and the moment a key becomes
//! throttled is audited. Successful logins cost no budget.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

/// Failed logins one account (tenant and e-mail) may make in a row.
pub const LOGIN_FAILURES_PER_ACCOUNT_BURST: u32 = 5;
/// After the burst, one more failed login per account per this period.
pub const LOGIN_ACCOUNT_REFILL: Duration = Duration::from_secs(60);
/// Failed logins one client address may make in a row (offices share addresses).
pub const LOGIN_FAILURES_PER_ADDRESS_BURST: u32 = 20;
/// After the burst, one more failed login per address per this period.
pub const LOGIN_ADDRESS_REFILL: Duration = Duration::from_secs(15);
/// Keys remembered at most by each limit; past it, forgotten keys start with a full budget.
pub const LOGIN_THROTTLE_KEYS_MAX: usize = 100_000;

type Limiter<K> = RateLimiter<K, DefaultKeyedStateStore<K>, DefaultClock>;

/// What a throttled key is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Throttled {
    Account(String),
    Address(IpAddr),
}

impl Throttled {
    pub(crate) fn limit(&self) -> &'static str {
        match self {
            Throttled::Account(_) => "account",
            Throttled::Address(_) => "address",
        }
    }
}

pub(crate) struct LoginThrottle {
    accounts: Limiter<String>,
    addresses: Limiter<IpAddr>,
    blocked: Mutex<HashMap<Throttled, Instant>>,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        Self {
            accounts: RateLimiter::keyed(quota(
                LOGIN_FAILURES_PER_ACCOUNT_BURST,
                LOGIN_ACCOUNT_REFILL,
            )),
            addresses: RateLimiter::keyed(quota(
                LOGIN_FAILURES_PER_ADDRESS_BURST,
                LOGIN_ADDRESS_REFILL,
            )),
            blocked: Mutex::default(),
        }
    }
}

fn quota(burst: u32, refill: Duration) -> Quota {
    Quota::with_period(refill)
        .expect("a non-zero period")
        .allow_burst(NonZeroU32::new(burst).expect("a non-zero burst"))
}

/// The account key: the scope (tenant slug, or none for the platform) and the e-mail, both
/// as typed but lowercased, so that case does not buy more guesses.
pub(crate) fn account_key(tenant: Option<&str>, email: &str) -> String {
    format!(
        "{}/{}",
        tenant.unwrap_or("").trim().to_lowercase(),
        email.trim().to_lowercase()
    )
}

/// An IPv6 client counts by its /64: one host usually holds a whole one.
pub(crate) fn address_key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(bits.into())
            }
        },
        v4 => v4,
    }
}

impl LoginThrottle {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Throttled, Instant>> {
        self.blocked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Before a login: how long to wait when the account or the address is throttled.
    pub(crate) fn check(&self, account: &str, address: Option<IpAddr>) -> Option<Duration> {
        let now = Instant::now();
        let blocked = self.lock();
        let keys = [
            Some(Throttled::Account(account.to_owned())),
            address.map(|a| Throttled::Address(address_key(a))),
        ];
        keys.iter()
            .flatten()
            .filter_map(|key| blocked.get(key))
            .filter(|until| **until > now)
            .map(|until| *until - now)
            .max()
    }

    /// After a failed login: spends one failure of each budget, and answers the keys this
    /// failure used up, with how long they are throttled.
    pub(crate) fn failed(
        &self,
        account: &str,
        address: Option<IpAddr>,
    ) -> Vec<(Throttled, Duration)> {
        let clock = DefaultClock::default();
        let mut newly = Vec::new();
        if let Err(not_until) = self.accounts.check_key(&account.to_owned()) {
            let wait = not_until.wait_time_from(clock.now());
            newly.push((Throttled::Account(account.to_owned()), wait));
        }
        if let Some(address) = address.map(address_key)
            && let Err(not_until) = self.addresses.check_key(&address)
        {
            newly.push((
                Throttled::Address(address),
                not_until.wait_time_from(clock.now()),
            ));
        }
        let now = Instant::now();
        let mut blocked = self.lock();
        if blocked.len() >= LOGIN_THROTTLE_KEYS_MAX {
            blocked.retain(|_, until| *until > now);
        }
        for (key, wait) in &newly {
            blocked.insert(key.clone(), now + *wait);
        }
        drop(blocked);
        for limiter_len in [self.accounts.len(), self.addresses.len()] {
            if limiter_len >= LOGIN_THROTTLE_KEYS_MAX {
                self.accounts.retain_recent();
                self.addresses.retain_recent();
            }
        }
        newly
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_is_throttled_after_its_burst_of_failures() {
        let throttle = LoginThrottle::default();
        let account = account_key(Some("Acme"), "Ana@Acme.Example");
        assert_eq!(account, account_key(Some("acme"), "ana@acme.example"));
        for _ in 0..LOGIN_FAILURES_PER_ACCOUNT_BURST {
            assert_eq!(throttle.check(&account, None), None);
            assert!(throttle.failed(&account, None).is_empty());
        }
        let newly = throttle.failed(&account, None);
        assert_eq!(newly.len(), 1);
        assert_eq!(newly[0].0.limit(), "account");
        let wait = throttle.check(&account, None).expect("throttled");
        assert!(
            wait <= LOGIN_ACCOUNT_REFILL && wait > Duration::ZERO,
            "{wait:?}"
        );
        assert_eq!(
            throttle.check(&account_key(Some("acme"), "bo@acme.example"), None),
            None
        );
    }

    #[test]
    fn an_address_is_throttled_across_accounts() {
        let throttle = LoginThrottle::default();
        let address: IpAddr = "2001:db8::1".parse().unwrap();
        for n in 0..LOGIN_FAILURES_PER_ADDRESS_BURST {
            throttle.failed(&format!("/user{n}@x.example"), Some(address));
        }
        let newly = throttle.failed("/another@x.example", Some(address));
        assert!(
            newly.iter().any(|(key, _)| key.limit() == "address"),
            "{newly:?}"
        );
        let same_64: IpAddr = "2001:db8::ffff".parse().unwrap();
        assert!(throttle.check("/fresh@x.example", Some(same_64)).is_some());
        let other: IpAddr = "2001:db8:1::1".parse().unwrap();
        assert_eq!(throttle.check("/fresh@x.example", Some(other)), None);
    }
}
