//! [`FaultyPlacements`] and [`FaultyQueue`]: the async strategy's ports with planned
//! faults.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use flash_sale_domain::UserId;
use flash_sale_domain::gateway::{
    Fulfil, Fulfilled, GatewayError, PlacementGateway, PlacementQueue,
};
use flash_sale_domain::order::IdempotencyKey;
use flash_sale_domain::placement::{Placement, PlacementId};

use super::Faults;

/// The real placement gateway behind a fault plan. Keys: the placement id (and the
/// buyer for `insert`); every id of the batch for `fulfil`.
pub struct FaultyPlacements {
    inner: Arc<dyn PlacementGateway>,
    faults: Faults,
}

impl FaultyPlacements {
    /// Wraps `inner`.
    pub fn wrap(inner: Arc<dyn PlacementGateway>, faults: &Faults) -> Arc<dyn PlacementGateway> {
        Arc::new(Self {
            inner,
            faults: faults.clone(),
        })
    }
}

#[async_trait]
impl PlacementGateway for FaultyPlacements {
    async fn insert(&self, p: &Placement) -> Result<(), GatewayError> {
        faulty!(
            self,
            "insert",
            format!("{} {}", p.id, p.user_id.as_str()),
            self.inner.insert(p)
        )
    }
    async fn delete(&self, id: &PlacementId) -> Result<bool, GatewayError> {
        faulty!(self, "delete", id.to_string(), self.inner.delete(id))
    }
    async fn find(&self, id: &PlacementId) -> Result<Option<Placement>, GatewayError> {
        faulty!(self, "find_placement", id.to_string(), self.inner.find(id))
    }
    async fn find_by_idempotency_key(
        &self,
        user: &UserId,
        key: &IdempotencyKey,
    ) -> Result<Option<Placement>, GatewayError> {
        faulty!(
            self,
            "find_placement_by_key",
            user.as_str().to_owned(),
            self.inner.find_by_idempotency_key(user, key)
        )
    }
    async fn fulfil(&self, batch: &[Fulfil]) -> Result<Vec<Fulfilled>, GatewayError> {
        let key = batch
            .iter()
            .map(|f| format!("{} {}", f.order.id, f.order.user_id.as_str()))
            .collect::<Vec<_>>()
            .join(" ");
        faulty!(self, "fulfil", key, self.inner.fulfil(batch))
    }
    async fn fail(
        &self,
        id: &PlacementId,
        code: &str,
        message: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, GatewayError> {
        faulty!(
            self,
            "fail",
            id.to_string(),
            self.inner.fail(id, code, message, now)
        )
    }
    async fn queued(
        &self,
        before: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<Placement>, GatewayError> {
        faulty!(
            self,
            "queued",
            String::new(),
            self.inner.queued(before, limit)
        )
    }
    async fn existing(&self, ids: &[String]) -> Result<HashSet<String>, GatewayError> {
        faulty!(self, "existing", String::new(), self.inner.existing(ids))
    }
    async fn write_rows(&self, ids: &[String]) -> Result<HashSet<String>, GatewayError> {
        faulty!(
            self,
            "write_rows",
            String::new(),
            self.inner.write_rows(ids)
        )
    }
}

/// The real task queue behind a fault plan. Key: the placement id and buyer.
pub struct FaultyQueue {
    inner: Arc<dyn PlacementQueue>,
    faults: Faults,
}

impl FaultyQueue {
    /// Wraps `inner`.
    pub fn wrap(inner: Arc<dyn PlacementQueue>, faults: &Faults) -> Arc<dyn PlacementQueue> {
        Arc::new(Self {
            inner,
            faults: faults.clone(),
        })
    }
}

#[async_trait]
impl PlacementQueue for FaultyQueue {
    async fn publish(&self, task: &Placement) -> Result<(), GatewayError> {
        faulty!(
            self,
            "publish",
            format!("{} {}", task.id, task.user_id.as_str()),
            self.inner.publish(task)
        )
    }
    async fn next_batch(&self, max: usize, wait: Duration) -> Vec<Placement> {
        self.inner.next_batch(max, wait).await
    }
}
