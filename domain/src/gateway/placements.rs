//! The ports of the async strategy: durable placements and the task queue.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::GatewayError;
use crate::order::{IdempotencyKey, Order, OrderError};
use crate::placement::{Placement, PlacementId};
use crate::product::PerUserLimit;
use crate::user::UserId;

/// One placement to turn into its order: the order as it will be written (its
/// `placement_id` set) and the per-user limit in force.
#[derive(Debug, Clone)]
pub struct Fulfil {
    /// The order.
    pub order: Order,
    /// The buyer's limit.
    pub limit: PerUserLimit,
    /// The placement as accepted, when it has no row of its own (it was recorded
    /// with its reservation, see [`crate::gateway::StockLedger::records_placements`]):
    /// its row is written with the order, already `succeeded`. `None`: the row exists
    /// (or existed) and is claimed.
    pub unwritten: Option<Placement>,
}

/// What became of one placement in [`PlacementGateway::fulfil`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fulfilled {
    /// The order is written and the placement `succeeded` (now, by this call).
    Placed,
    /// A database guard said no (sold out, over the limit); nothing was written and
    /// the placement is still `queued`: fail it.
    Rejected(OrderError),
    /// The placement had already left `queued` — a duplicate delivery, an earlier
    /// attempt whose answer was lost, or the sweeper failed it: nothing was written
    /// now. Its hold is settled the way it ended (settling twice changes nothing), so
    /// that a retry finishes what its lost first attempt started.
    AlreadyResolved {
        /// Whether it ended with its order written.
        succeeded: bool,
    },
}

/// Stores async placements: rows from the start (embedded mode, a Redis Cluster), or —
/// on one Redis — recorded with their reservations and written as rows once resolved.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait PlacementGateway: Send + Sync {
    /// Stores a new `queued` placement.
    ///
    /// # Errors
    /// `Duplicate(IdempotencyKey)` when the buyer already used the key;
    /// `Unavailable`.
    async fn insert(&self, placement: &Placement) -> Result<(), GatewayError>;

    /// Forgets a placement whose task could not be published (it never was
    /// accepted), if it is still `queued`; `false` when it was not (a consumer got
    /// the task after all: it is accepted).
    ///
    /// # Errors
    /// `Unavailable`.
    async fn delete(&self, id: &PlacementId) -> Result<bool, GatewayError>;

    /// The placement, if it exists.
    ///
    /// # Errors
    /// `Unavailable`.
    async fn find(&self, id: &PlacementId) -> Result<Option<Placement>, GatewayError>;

    /// The buyer's placement made with this idempotency key, if any.
    ///
    /// # Errors
    /// `Unavailable`.
    async fn find_by_idempotency_key(
        &self,
        user: &UserId,
        key: &IdempotencyKey,
    ) -> Result<Option<Placement>, GatewayError>;

    /// Writes the orders of a batch of `queued` placements and marks them `succeeded`,
    /// in as few transactions as the guards allow (one for the whole batch when every
    /// guard passes): bucket decrements summed per bucket, quotas summed per buyer,
    /// orders and ledger rows inserted together. Each order takes its units from the
    /// buckets its placement row names when it is claimed (a re-arrangement may have
    /// moved them since the task was sent). One answer per item, in order.
    ///
    /// # Errors
    /// `Unavailable` when the database cannot be reached: nothing of the failed
    /// transaction was written (earlier items may have been; a retry finds them
    /// `AlreadyResolved`).
    async fn fulfil(&self, batch: &[Fulfil]) -> Result<Vec<Fulfilled>, GatewayError>;

    /// Marks a `queued` placement `failed` with `code` and `message`; `false` when it
    /// was no longer queued (whoever resolved it settles it).
    ///
    /// # Errors
    /// `Unavailable`.
    async fn fail(
        &self,
        id: &PlacementId,
        code: &str,
        message: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, GatewayError>;

    /// Up to `limit` placements still `queued` that were accepted before `before`,
    /// oldest first.
    ///
    /// # Errors
    /// `Unavailable`.
    async fn queued(
        &self,
        before: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<Placement>, GatewayError>;

    /// Which of `ids` have a placement row (in any status).
    ///
    /// # Errors
    /// `Unavailable`.
    async fn existing(
        &self,
        ids: &[String],
    ) -> Result<std::collections::HashSet<String>, GatewayError>;

    /// Which of `ids` have a placement row, after writing a `queued` row for each of
    /// them that is still queued but recorded elsewhere (with its reservation, in the
    /// stock ledger): a re-lay carries queued rows to their new buckets, so it makes
    /// every queued placement a row first. A gateway that always writes rows answers
    /// as [`Self::existing`].
    ///
    /// # Errors
    /// `Unavailable`.
    async fn write_rows(
        &self,
        ids: &[String],
    ) -> Result<std::collections::HashSet<String>, GatewayError>;
}

/// Carries placement tasks from the request to the consumer (an in-process queue, or
/// a broker). Delivery is at least once: the consumer is idempotent.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait PlacementQueue: Send + Sync {
    /// Hands the task over; once this returns `Ok`, the task will be delivered.
    ///
    /// # Errors
    /// `Unavailable` when the queue cannot take it (full, or the broker is down).
    async fn publish(&self, task: &Placement) -> Result<(), GatewayError>;

    /// This instance's share of the tasks: waits up to `wait` for the first, then takes
    /// what is there, up to `max`. Empty when none came.
    async fn next_batch(&self, max: usize, wait: std::time::Duration) -> Vec<Placement>;
}
