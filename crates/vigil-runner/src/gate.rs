//! Each instance's limits, held across every run that uses it in this process: at most
//! `concurrency_max` requests in flight and at most `rate_limit_per_minute` started per
//! minute (GCRA, `governor`), evenly spaced (no burst). A gate is rebuilt when its instance's limits change.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use vigil_automation::Instance;

/// Instances whose gates one process keeps; past it, idle gates are dropped.
pub const INSTANCE_GATES_MAX: usize = 10_000;

struct Gate {
    /// The instance's `updated_at` the limits come from: an older snapshot (a long run's)
    /// never replaces a newer gate.
    updated_at: vigil_domain::Timestamp,
    concurrency: u32,
    rate: Option<u32>,
    slots: Arc<Semaphore>,
    limiter: Option<DefaultDirectRateLimiter>,
}

#[derive(Default)]
pub(crate) struct Gates {
    gates: Mutex<HashMap<uuid::Uuid, Arc<Gate>>>,
}

/// Leave to send one request on an instance; dropping it frees the slot.
pub(crate) struct Pass {
    _slot: OwnedSemaphorePermit,
}

impl Gates {
    fn gate(&self, instance: &Instance) -> Arc<Gate> {
        let mut gates = self
            .gates
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(gate) = gates.get(&instance.id) {
            let same = gate.concurrency == instance.concurrency_max
                && gate.rate == instance.rate_limit_per_minute;
            if same || gate.updated_at >= instance.updated_at {
                return Arc::clone(gate);
            }
        }
        if gates.len() >= INSTANCE_GATES_MAX {
            gates.retain(|_, gate| Arc::strong_count(gate) > 1);
        }
        let gate = Arc::new(Gate {
            updated_at: instance.updated_at,
            concurrency: instance.concurrency_max,
            rate: instance.rate_limit_per_minute,
            slots: Arc::new(Semaphore::new(instance.concurrency_max.max(1) as usize)),
            limiter: instance
                .rate_limit_per_minute
                .and_then(NonZeroU32::new)
                .map(|n| RateLimiter::direct(Quota::per_minute(n).allow_burst(NonZeroU32::MIN))),
        });
        gates.insert(instance.id, Arc::clone(&gate));
        gate
    }

    /// Waits for a free slot on the instance, then for its rate limit.
    pub(crate) async fn enter(&self, instance: &Instance) -> Pass {
        let gate = self.gate(instance);
        let slot = Arc::clone(&gate.slots)
            .acquire_owned()
            .await
            .expect("gate semaphores are never closed");
        if let Some(limiter) = &gate.limiter {
            limiter.until_ready().await;
        }
        Pass { _slot: slot }
    }
}
