//! The use cases' shared frame. Each use case first proves what the principal may do, then
//! derives the scope from the principal — never from its arguments — and only then touches
//! the store. The use cases themselves live by subject: `sessions`, `keys` (tenants and API
//! keys), `users`, `risks`, `audit`, `catalogue`, `connectors`, `correlate`.

use std::sync::Arc;

use vigil_domain::{Permission, Role};
use vigil_store::{Scope, Store};

use crate::{JwtKey, Principal, ServiceError, ServiceResult};

/// Password hashes computed at once. Each argon2id run holds 19 MiB and a core for tens of
/// milliseconds; more wait their turn in a bounded queue.
pub const PASSWORD_HASHES_CONCURRENT_MAX: usize = 4;
/// Callers waiting for a hashing slot at most; past it (a flood), 503 with a retry hint.
pub const PASSWORD_QUEUE_MAX: usize = 256;
/// Longest a caller waits for a hashing slot before 503.
pub const PASSWORD_QUEUE_WAIT_MAX: std::time::Duration = std::time::Duration::from_secs(10);

#[derive(Clone)]
pub struct Services {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) jwt: Arc<JwtKey>,
    password_slots: Arc<tokio::sync::Semaphore>,
    pub(crate) keys: Arc<crate::key_cache::KeyCache>,
    pub(crate) catalogues: Arc<crate::correlate::CatalogueCache>,
    pub(crate) reopener: Arc<dyn crate::Reopener>,
    pub(crate) master_key: Option<Arc<crate::MasterKey>>,
    pub(crate) sync_engine: Option<Arc<dyn crate::SyncEngine>>,
    pub(crate) task_runner: Option<Arc<dyn crate::TaskRunner>>,
    pub(crate) throttle: Arc<crate::throttle::LoginThrottle>,
    pub(crate) plans: Arc<crate::plans::PlanCache>,
    password_waiting: Arc<std::sync::atomic::AtomicUsize>,
}

impl Services {
    pub fn new(store: Arc<dyn Store>, jwt: JwtKey) -> Self {
        let slots = tokio::sync::Semaphore::new(PASSWORD_HASHES_CONCURRENT_MAX);
        Self {
            reopener: Arc::new(crate::StoreReopener(Arc::clone(&store))),
            store,
            jwt: Arc::new(jwt),
            password_slots: Arc::new(slots),
            keys: Arc::default(),
            catalogues: Arc::default(),
            master_key: None,
            sync_engine: None,
            task_runner: None,
            throttle: Arc::default(),
            plans: Arc::default(),
            password_waiting: Arc::default(),
        }
    }

    /// The same services sealing connector credentials under `key`. Without one, connector
    /// credentials can neither be stored nor read.
    pub fn with_master_key(mut self, key: crate::MasterKey) -> Self {
        self.master_key = Some(Arc::new(key));
        self
    }

    /// The same services with another reopener (tests inject failing ones).
    pub fn with_reopener(mut self, reopener: Arc<dyn crate::Reopener>) -> Self {
        self.reopener = reopener;
        self
    }

    /// Runs one argon2id computation on the blocking pool, if a slot is free.
    pub(crate) async fn with_password_slot<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> ServiceResult<T> {
        use std::sync::atomic::Ordering;
        let overloaded =
            ServiceError::Overloaded("too many password checks at once; retry shortly");
        let _slot = match self.password_slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                // Wait in line, a bounded line for a bounded time: a flood of logins slows
                // everyone down a little instead of turning most of them away.
                if self.password_waiting.fetch_add(1, Ordering::SeqCst) >= PASSWORD_QUEUE_MAX {
                    self.password_waiting.fetch_sub(1, Ordering::SeqCst);
                    return Err(overloaded);
                }
                let waited = tokio::time::timeout(
                    PASSWORD_QUEUE_WAIT_MAX,
                    self.password_slots.clone().acquire_owned(),
                )
                .await;
                self.password_waiting.fetch_sub(1, Ordering::SeqCst);
                match waited {
                    Ok(Ok(slot)) => slot,
                    _ => return Err(overloaded),
                }
            }
        };
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|err| ServiceError::Internal(err.to_string()))
    }

    pub(crate) fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Which store this is (`sqlite`, `postgres`).
    pub fn backend(&self) -> &'static str {
        self.store.backend()
    }

    /// Whether the store answers a trivial query (what `/readyz` asks).
    pub async fn store_answers(&self) -> ServiceResult<()> {
        Ok(self.store.ping().await?)
    }

    /// The store's connection pool, for the metrics.
    pub fn pool_stats(&self) -> vigil_store::PoolStats {
        self.store.pool_stats()
    }
}

/// The scope whose keys, users and sessions the caller administers.
pub(crate) fn access_scope(principal: &Principal) -> ServiceResult<Scope> {
    if principal.role() == Role::PlatformAdmin {
        return Ok(Scope::Platform);
    }
    principal
        .require_tenant(Permission::ManageTenantAccess)
        .map(Scope::Tenant)
}
