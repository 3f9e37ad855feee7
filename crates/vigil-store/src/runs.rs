//! What the store keeps of runs: each run of a task on an instance, and the steps of its
//! dependency closure with every attempt. Runs name their task and instance by value (no
//! reference), so a deleted app's or instance's history stays. Every change of status is
//! conditional on the status it leaves, so two writers (the runner, a cancel, the reaper)
//! never both win: the first terminal status stays.

use async_trait::async_trait;
use vigil_automation::{Run, RunFilter, RunStatus, Step};
use vigil_domain::{PageRequest, TenantId, Timestamp};

use crate::{Change, Page, StoreResult};

#[async_trait]
pub trait RunRepo: Send + Sync {
    /// Keeps a new queued run (audited as `run.create`, without its input).
    async fn create_run(&self, tenant: TenantId, change: &Change, run: &Run) -> StoreResult<()>;
    /// The run with its steps in order.
    async fn get_run(&self, tenant: TenantId, id: uuid::Uuid) -> StoreResult<Run>;
    /// Newest first, without their steps.
    async fn list_runs(
        &self,
        tenant: TenantId,
        filter: &RunFilter,
        page: PageRequest,
    ) -> StoreResult<Page<Run>>;
    /// Queued → running on `runner`, with its first step. `false` (nothing written) when the
    /// run is not queued any more (canceled, or taken by another runner).
    async fn start_run(
        &self,
        tenant: TenantId,
        id: uuid::Uuid,
        runner: &str,
        at: Timestamp,
        first: &Step,
    ) -> StoreResult<bool>;
    /// Writes the step (new, or replacing the one of its `seq`) while the run is running;
    /// `false` (nothing written) when it is not any more.
    async fn save_step(&self, tenant: TenantId, run: uuid::Uuid, step: &Step) -> StoreResult<bool>;
    /// Queued or running → the terminal `status`, writing `last` first; steps still running
    /// end with the run's status. `false` (nothing written) when the run was over already.
    async fn finish_run(
        &self,
        tenant: TenantId,
        id: uuid::Uuid,
        status: RunStatus,
        error: Option<&str>,
        at: Timestamp,
        last: Option<&Step>,
    ) -> StoreResult<bool>;
    /// Queued or running → canceled (audited as `run.cancel`); `Conflict` when it is over.
    async fn cancel_run(
        &self,
        tenant: TenantId,
        change: &Change,
        id: uuid::Uuid,
        at: Timestamp,
    ) -> StoreResult<Run>;
    /// Ends what nobody will finish: runs running on `runner` (a node that restarted) fail
    /// as `INTERRUPTED`; queued or running runs past their deadline are `timed_out`
    /// (`DEADLINE_PASSED`). Answers how many it ended.
    async fn reap_runs(
        &self,
        tenant: TenantId,
        runner: Option<&str>,
        now: Timestamp,
    ) -> StoreResult<u64>;
    /// Up to `limit` queued runs, oldest first: what a restarted node picks up again.
    async fn queued_runs(&self, tenant: TenantId, limit: u32) -> StoreResult<Vec<uuid::Uuid>>;
}

/// A step's attempts as the stores keep them (JSON text).
pub fn attempts_text(attempts: &[vigil_automation::Attempt]) -> String {
    serde_json::to_string(attempts).unwrap_or_else(|_| "[]".to_owned())
}

/// A step's attempts read back; `Corrupt` when the text is not what `attempts_text` writes.
pub fn attempts_from(text: &str) -> StoreResult<Vec<vigil_automation::Attempt>> {
    serde_json::from_str(text).map_err(|err| corrupt(format!("attempts: {err}")))
}

/// A step's outputs read back.
pub fn outputs_from(
    text: Option<&str>,
) -> StoreResult<Option<serde_json::Map<String, serde_json::Value>>> {
    text.map(|text| serde_json::from_str(text).map_err(|err| corrupt(format!("outputs: {err}"))))
        .transpose()
}

/// A run or step column that does not read back.
pub fn corrupt(reason: impl std::fmt::Display) -> crate::StoreError {
    crate::StoreError::Corrupt {
        table: "runs",
        source: vigil_domain::ParseError::new("run", reason.to_string()),
    }
}
