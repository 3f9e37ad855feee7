//! vigil-runner: the task runner engine. Runs arrive queued (stored first, by the service's
//! `request_run`), wait in a bounded in-memory queue, and execute on a bounded pool: each
//! run's dependency closure in order, each step's request rendered from the run's input, its
//! instance's config and secrets and its dependencies' outputs, sent through the one outbound
//! policy under its instance's rate and concurrency limits, retried as its task says, its
//! outputs read from the answer. Every step and attempt is written as it happens (secrets
//! masked), and every way a run can end writes a terminal status: success, failure, the run's
//! deadline, a cancel, or this process stopping (and, after a crash, the next start).
//!
//! Implements the service layer's `TaskRunner` port; reaches the store only through the
//! engine-only use cases (`run_plan`, `start_run`, `save_step`, `finish_run`, `reap_runs`).

mod call;
mod execute;
mod gate;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{Semaphore, mpsc, watch};
use vigil_domain::{PageRequest, SourceUrl, TenantId};
use vigil_outbound::Outbound;
use vigil_service::{Principal, ServiceError, ServiceResult, Services, TaskRunner};

pub use gate::INSTANCE_GATES_MAX;

/// Runs executing at once in one process by default.
pub const RUN_WORKERS_DEFAULT: usize = 32;
/// Runs waiting in one process's queue at most by default; past it a new run is refused (503).
pub const RUN_QUEUE_MAX_DEFAULT: usize = 10_000;
/// How often the reaper ends runs past their deadline.
pub const REAP_INTERVAL: Duration = Duration::from_secs(30);
/// Largest answer a step reads, in bytes; past it the attempt fails (not retried).
pub const STEP_RESPONSE_BYTES_MAX: usize = 8 * 1024 * 1024;
/// Queued runs a starting process picks up per tenant at most (the rest wait for the next
/// reaper pass).
pub const RECOVER_PER_TENANT_MAX: u32 = 1_000;

/// How the runner is set up.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// The client every step's request goes through.
    pub outbound: Outbound,
    pub workers: usize,
    pub queue_max: usize,
    /// This process's name in the runs it takes (`VIGIL_NODE_ID`): at start, runs still
    /// `running` under it were interrupted by its previous life.
    pub node: String,
}

impl RunnerConfig {
    /// The defaults, with an outbound client whose answers are capped at
    /// `STEP_RESPONSE_BYTES_MAX` and whose calls may last a task's longest timeout.
    pub fn new(policy: vigil_outbound::OutboundPolicy, node: String) -> Self {
        let limits = vigil_outbound::OutboundLimits {
            request_timeout: Duration::from_millis(u64::from(vigil_automation::TIMEOUT_MS_MAX)),
            response_bytes_max: STEP_RESPONSE_BYTES_MAX,
            ..vigil_outbound::OutboundLimits::default()
        };
        Self {
            outbound: Outbound::new(policy, limits),
            workers: RUN_WORKERS_DEFAULT,
            queue_max: RUN_QUEUE_MAX_DEFAULT,
            node,
        }
    }
}

/// Why a run stops before its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    Go,
    /// Someone canceled it (the store says so already).
    Canceled,
    /// This process is stopping.
    Shutdown,
}

struct Job {
    tenant: TenantId,
    run: uuid::Uuid,
}

pub(crate) struct Inner {
    pub(crate) services: Services,
    pub(crate) outbound: Outbound,
    pub(crate) node: String,
    pub(crate) gates: gate::Gates,
    queue: mpsc::Sender<Job>,
    jobs: Mutex<Option<mpsc::Receiver<Job>>>,
    /// Runs executing here, each with the channel that stops it.
    stops: Mutex<HashMap<uuid::Uuid, watch::Sender<Stop>>>,
    /// Runs in the queue, not yet taken: a run is queued once however often it is submitted
    /// (the reaper submits what the store says is queued).
    pending: Mutex<HashSet<uuid::Uuid>>,
    /// Set when the pool stops: a run that starts after it stops at once.
    stopping: AtomicBool,
    workers: usize,
}

/// The task runner. Cheap to clone; clones share the queue and the pool.
#[derive(Clone)]
pub struct Runner {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("node", &self.inner.node)
            .field("workers", &self.inner.workers)
            .finish_non_exhaustive()
    }
}

impl Runner {
    /// A runner storing through `services` (which must not hold this runner: give it the
    /// services the port is added to afterwards).
    pub fn new(services: Services, config: RunnerConfig) -> Self {
        let (queue, jobs) = mpsc::channel(config.queue_max.max(1));
        Self {
            inner: Arc::new(Inner {
                services,
                outbound: config.outbound,
                node: config.node,
                gates: gate::Gates::default(),
                queue,
                jobs: Mutex::new(Some(jobs)),
                stops: Mutex::default(),
                pending: Mutex::default(),
                stopping: AtomicBool::new(false),
                workers: config.workers.max(1),
            }),
        }
    }

    fn stops(&self) -> std::sync::MutexGuard<'_, HashMap<uuid::Uuid, watch::Sender<Stop>>> {
        self.inner
            .stops
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Executes queued runs until `stop` turns true: first ends what this node's previous
    /// life left running and picks up what was queued, then takes runs from the queue on a
    /// pool of `workers`, while a reaper ends late runs every `REAP_INTERVAL`. On stop, runs
    /// still executing end as interrupted; runs still queued stay queued for the next start.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let Some(mut jobs) = self.inner.jobs.lock().ok().and_then(|mut j| j.take()) else {
            tracing::error!(component = "runner", "the runner was started twice");
            return;
        };
        self.reap(Some(self.inner.node.as_str())).await;
        let reaper = tokio::spawn(self.clone().reaper(stop.clone()));
        let pool = Arc::new(Semaphore::new(self.inner.workers));
        loop {
            let permit = tokio::select! {
                _ = stop.changed() => break,
                permit = Arc::clone(&pool).acquire_owned() => permit,
            };
            let Ok(permit) = permit else { break };
            let job = tokio::select! {
                _ = stop.changed() => break,
                job = jobs.recv() => job,
            };
            let Some(job) = job else { break };
            let runner = self.clone();
            tokio::spawn(async move {
                runner.execute(job.tenant, job.run).await;
                // Only now: a resubmission while it executed was not queued again.
                runner.pending().remove(&job.run);
                drop(permit);
            });
        }
        {
            // Under the lock `watch` takes: no run registers after the broadcast below.
            let stops = self.stops();
            self.inner.stopping.store(true, Ordering::SeqCst);
            drop(stops);
        }
        reaper.abort();
        for sender in self.stops().values() {
            let _ = sender.send(Stop::Shutdown);
        }
        // Each run writes its own end; wait for them (bounded by the pool's size).
        let _ = pool.acquire_many(self.inner.workers as u32).await;
    }

    async fn reaper(self, mut stop: watch::Receiver<bool>) {
        let mut every = tokio::time::interval(REAP_INTERVAL);
        every.tick().await;
        loop {
            tokio::select! {
                _ = stop.changed() => return,
                _ = every.tick() => self.reap(None).await,
            }
        }
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, HashSet<uuid::Uuid>> {
        self.inner
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Ends what nobody will finish, in every tenant, and queues what waits.
    async fn reap(&self, node: Option<&str>) {
        let queued_max = RECOVER_PER_TENANT_MAX;
        let services = &self.inner.services;
        let mut page = PageRequest::first(vigil_domain::PAGE_SIZE_MAX);
        loop {
            let tenants = match services.list_tenants(&Principal::system(), page).await {
                Ok(tenants) => tenants,
                Err(err) => {
                    tracing::error!(component = "runner", error = %err, "listing tenants to reap runs failed");
                    return;
                }
            };
            for tenant in &tenants.items {
                let principal = Principal::system_in(tenant.id);
                match services.reap_runs(&principal, node, queued_max).await {
                    Ok((ended, queued)) => {
                        if ended > 0 {
                            tracing::warn!(component = "runner", tenant = %tenant.id, ended, "ended runs nobody will finish");
                        }
                        for run in queued {
                            if self.submit(tenant.id, run).is_err() {
                                break;
                            }
                        }
                    }
                    Err(err) => {
                        tracing::error!(component = "runner", tenant = %tenant.id, error = %err, "reaping runs failed");
                    }
                }
            }
            match tenants.next_cursor {
                Some(cursor) => page = PageRequest::new(Some(page.limit()), Some(cursor)),
                None => return,
            }
        }
    }

    /// Registers the run as executing here; the receiver says when to stop. `None` when
    /// the run already executes here or the pool is stopping.
    pub(crate) fn watch(&self, run: uuid::Uuid) -> Option<watch::Receiver<Stop>> {
        let mut stops = self.stops();
        if self.inner.stopping.load(Ordering::SeqCst) || stops.contains_key(&run) {
            return None;
        }
        let (sender, receiver) = watch::channel(Stop::Go);
        stops.insert(run, sender);
        Some(receiver)
    }

    pub(crate) fn forget(&self, run: uuid::Uuid) {
        self.stops().remove(&run);
    }

    pub(crate) fn inner(&self) -> &Inner {
        &self.inner
    }
}

#[async_trait]
impl TaskRunner for Runner {
    fn has_room(&self) -> bool {
        self.inner.queue.capacity() > 0
    }

    fn submit(&self, tenant: TenantId, run: uuid::Uuid) -> ServiceResult<()> {
        if !self.pending().insert(run) {
            return Ok(());
        }
        self.inner.queue.try_send(Job { tenant, run }).map_err(|_| {
            self.pending().remove(&run);
            ServiceError::Overloaded("too many runs are queued; retry shortly")
        })
    }

    fn cancel(&self, run: uuid::Uuid) {
        if let Some(sender) = self.stops().get(&run) {
            let _ = sender.send(Stop::Canceled);
        }
    }

    async fn probe(&self, url: &SourceUrl) -> Result<u16, String> {
        let request = self.inner.outbound.get(url.as_str());
        match self.inner.outbound.send(request).await {
            Ok(answer) => Ok(answer.status.as_u16()),
            Err(err) => Err(err.to_string()),
        }
    }
}
