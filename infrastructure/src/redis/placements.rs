//! Async placements with one Redis: the reservation script records a placement beside
//! its hold, in the same step, so that accepting one costs a round trip to Redis and
//! no database write. Its row is written once, already resolved, by whoever resolves
//! it — the consumer with its order, the sweeper or a failed publish as `failed` —
//! and that insert is what decides between them (the row's id is unique). A re-lay
//! writes the queued ones as rows first, and carries them as it always has. A task
//! whose placement has neither a row nor a record (Redis lost it) is written from the
//! task: nothing resolves a placement without writing its row.
//!
//! Keys (on one node, next to the product's): `<prefix>:pl:<id>` the record
//! (`b:u,b:u|<the placement as JSON>`, its units where they were reserved),
//! `<prefix>:plq` the queued ones by acceptance time (ms), and
//! `<prefix>:plk:<len>:<user>:<key>` the placement of a buyer's Idempotency-Key. All
//! three go once the placement's row is written.

use std::collections::HashSet;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use flash_sale_domain::UserId;
use flash_sale_domain::allocation::Allocation;
use flash_sale_domain::gateway::{Fulfil, Fulfilled, GatewayError, PlacementGateway};
use flash_sale_domain::order::{IdempotencyKey, Order};
use flash_sale_domain::placement::{Placement, PlacementId, PlacementStatus};

use super::Redis;
use crate::db::SeaOrmPlacementGateway;
use crate::task::PlacementTask;

/// The keys a recorded placement is written under, in the order the reservation
/// script takes them after the buckets: the record, the queue, and the index of the
/// buyer's Idempotency-Key when there is one.
pub(super) fn record_keys(prefix: &str, placement: &Placement) -> Vec<String> {
    let mut keys = vec![record_key(prefix, placement.id.as_str()), queue_key(prefix)];
    if let Some(key) = &placement.idempotency_key {
        keys.push(index_key(prefix, &placement.user_id, key));
    }
    keys
}

fn record_key(prefix: &str, id: &str) -> String {
    format!("{prefix}:pl:{id}")
}

fn queue_key(prefix: &str) -> String {
    format!("{prefix}:plq")
}

fn index_key(prefix: &str, user: &UserId, key: &IdempotencyKey) -> String {
    format!(
        "{prefix}:plk:{}:{}:{}",
        user.as_str().len(),
        user.as_str(),
        key.as_str()
    )
}

/// The placement as the record holds it (the script puts the units in front).
pub(super) fn record_json(placement: &Placement) -> String {
    serde_json::to_string(&PlacementTask::from(placement)).unwrap_or_default()
}

/// A record read back: `b:u,b:u|<json>`, queued.
fn parse_record(text: &str) -> Option<Placement> {
    let (parts, json) = text.split_once('|')?;
    let mut placement = serde_json::from_str::<PlacementTask>(json)
        .ok()?
        .into_placement()?;
    placement.allocation = Allocation::parse(parts)?;
    (placement.allocation.quantity() == placement.quantity).then_some(placement)
}

/// The placement an async order comes from, as accepted (but for its acceptance time,
/// which the order does not keep: the order's stands in).
fn accepted_as(order: &Order) -> Option<Placement> {
    Some(Placement {
        id: PlacementId::parse(order.placement_id.as_deref()?)?,
        user_id: order.user_id.clone(),
        event_id: order.event_id,
        product_id: order.product_id,
        allocation: order.allocation.clone(),
        quantity: order.quantity,
        unit_price: order.unit_price,
        idempotency_key: order.idempotency_key.clone(),
        request_fingerprint: order.request_fingerprint.clone(),
        status: PlacementStatus::Queued,
        created_at: order.created_at,
        updated_at: order.created_at,
    })
}

/// Placements recorded in Redis until they resolve, rows in the database after.
#[derive(Debug, Clone)]
pub struct RedisPlacements {
    redis: Redis,
    db: SeaOrmPlacementGateway,
}

impl RedisPlacements {
    /// Placements recorded in `redis` (by [`super::RedisStockLedger`] on one node),
    /// their rows in `db`.
    pub fn new(redis: Redis, db: SeaOrmPlacementGateway) -> Self {
        Self { redis, db }
    }

    /// The records of `ids` that are still there, in order.
    async fn records(&self, ids: &[&str]) -> Result<Vec<Option<Placement>>, GatewayError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let prefix = self.redis.prefix();
        let mut get = redis::cmd("MGET");
        for id in ids {
            get.arg(record_key(prefix, id));
        }
        let mut conn = self.redis.conn();
        let texts: Vec<Option<String>> = self.redis.run("mget", get.query_async(&mut conn)).await?;
        Ok(texts
            .iter()
            .map(|text| text.as_deref().and_then(parse_record))
            .collect())
    }

    async fn record(&self, id: &str) -> Result<Option<Placement>, GatewayError> {
        Ok(self.records(&[id]).await?.pop().flatten())
    }

    /// Drops the records of placements whose rows are written (resolved). A failure
    /// leaves them to the sweeper, which finds their rows resolved and comes back.
    async fn forget(&self, placements: &[&Placement]) {
        if placements.is_empty() {
            return;
        }
        let prefix = self.redis.prefix();
        let mut pipe = redis::pipe();
        let mut dequeue = redis::cmd("ZREM");
        dequeue.arg(queue_key(prefix));
        for p in placements {
            pipe.cmd("DEL")
                .arg(record_key(prefix, p.id.as_str()))
                .ignore();
            if let Some(key) = &p.idempotency_key {
                pipe.cmd("DEL")
                    .arg(index_key(prefix, &p.user_id, key))
                    .ignore();
            }
            dequeue.arg(p.id.as_str());
        }
        pipe.add_command(dequeue).ignore();
        let mut conn = self.redis.conn();
        if let Err(e) = self
            .redis
            .run("forget", pipe.query_async::<()>(&mut conn))
            .await
        {
            tracing::warn!(error = %flash_sale_domain::Chain(&e), count = placements.len(), "resolved placements keep their records; the sweeper drops them");
        }
    }

    /// Up to `limit` recorded placements accepted before `before`, oldest first; ids in
    /// the queue without a record (dropped halfway) leave it.
    async fn recorded_before(
        &self,
        before: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<Placement>, GatewayError> {
        let prefix = self.redis.prefix();
        let mut conn = self.redis.conn();
        let ids: Vec<String> = self
            .redis
            .run(
                "zrangebyscore",
                redis::cmd("ZRANGEBYSCORE")
                    .arg(queue_key(prefix))
                    .arg("-inf")
                    .arg(format!("({}", before.timestamp_millis()))
                    .arg("LIMIT")
                    .arg(0)
                    .arg(limit)
                    .query_async(&mut conn),
            )
            .await?;
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let records = self.records(&refs).await?;
        let gone: Vec<&str> = refs
            .iter()
            .zip(&records)
            .filter(|(_, r)| r.is_none())
            .map(|(id, _)| *id)
            .collect();
        if !gone.is_empty() {
            let mut drop = redis::cmd("ZREM");
            drop.arg(queue_key(prefix)).arg(&gone);
            self.redis
                .run("zrem", drop.query_async::<i64>(&mut conn))
                .await?;
        }
        Ok(records.into_iter().flatten().collect())
    }

    /// Resolves a recorded placement as `failed` by writing its row, unless a row is
    /// there already (then the row is failed if still queued); whether this call
    /// failed it. `keep_key`: the row keeps the buyer's Idempotency-Key (a replay
    /// answers it), or frees it (the placement was never accepted).
    async fn fail_recorded(
        &self,
        placement: &Placement,
        code: &str,
        message: &str,
        now: DateTime<Utc>,
        keep_key: bool,
    ) -> Result<bool, GatewayError> {
        let mut failed = placement.clone();
        failed.status = PlacementStatus::Failed {
            code: code.to_owned(),
            message: message.to_owned(),
        };
        failed.updated_at = now;
        if !keep_key {
            failed.idempotency_key = None;
        }
        let failed_now = self.db.adopt(&failed).await?
            || self.db.fail(&placement.id, code, message, now).await?;
        self.forget(&[placement]).await;
        Ok(failed_now)
    }
}

#[async_trait]
impl PlacementGateway for RedisPlacements {
    async fn insert(&self, p: &Placement) -> Result<(), GatewayError> {
        self.db.insert(p).await
    }

    #[tracing::instrument(skip_all, fields(placement.id = %id))]
    async fn delete(&self, id: &PlacementId) -> Result<bool, GatewayError> {
        match self.record(id.as_str()).await? {
            Some(placement) => {
                self.fail_recorded(
                    &placement,
                    flash_sale_app::error::ErrorCode::Unavailable.as_str(),
                    "the order queue could not take the placement",
                    Utc::now(),
                    false,
                )
                .await
            }
            None => self.db.delete(id).await,
        }
    }

    #[tracing::instrument(skip_all, fields(placement.id = %id))]
    async fn find(&self, id: &PlacementId) -> Result<Option<Placement>, GatewayError> {
        match self.record(id.as_str()).await? {
            Some(placement) => Ok(Some(placement)),
            None => self.db.find(id).await,
        }
    }

    #[tracing::instrument(skip_all)]
    async fn find_by_idempotency_key(
        &self,
        user: &UserId,
        key: &IdempotencyKey,
    ) -> Result<Option<Placement>, GatewayError> {
        let mut conn = self.redis.conn();
        let id: Option<String> = self
            .redis
            .run(
                "get",
                redis::cmd("GET")
                    .arg(index_key(self.redis.prefix(), user, key))
                    .query_async(&mut conn),
            )
            .await?;
        if let Some(id) = id.as_deref().and_then(PlacementId::parse)
            && let Some(placement) = self.find(&id).await?
        {
            return Ok(Some(placement));
        }
        self.db.find_by_idempotency_key(user, key).await
    }

    #[tracing::instrument(skip_all, fields(batch.size = batch.len()))]
    async fn fulfil(&self, batch: &[Fulfil]) -> Result<Vec<Fulfilled>, GatewayError> {
        let ids: Vec<&str> = batch
            .iter()
            .map(|item| item.order.placement_id.as_deref().unwrap_or_default())
            .collect();
        let records = self.records(&ids).await?;
        // A placement with no row was never resolved (every resolution writes its row),
        // so its task stands for it even when Redis lost its record: the task is the
        // durable copy, as the broker's message is.
        let batch: Vec<Fulfil> = batch
            .iter()
            .zip(records)
            .map(|(item, record)| Fulfil {
                unwritten: record.or_else(|| accepted_as(&item.order)),
                ..item.clone()
            })
            .collect();
        let outcomes = self.db.fulfil(&batch).await?;
        let resolved: Vec<&Placement> = batch
            .iter()
            .zip(&outcomes)
            .filter(|(_, outcome)| !matches!(outcome, Fulfilled::Rejected(_)))
            .filter_map(|(item, _)| item.unwritten.as_ref())
            .collect();
        self.forget(&resolved).await;
        Ok(outcomes)
    }

    #[tracing::instrument(skip_all, fields(placement.id = %id))]
    async fn fail(
        &self,
        id: &PlacementId,
        code: &str,
        message: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, GatewayError> {
        match self.record(id.as_str()).await? {
            Some(placement) => {
                self.fail_recorded(&placement, code, message, now, true)
                    .await
            }
            None => self.db.fail(id, code, message, now).await,
        }
    }

    #[tracing::instrument(skip_all)]
    async fn queued(
        &self,
        before: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<Placement>, GatewayError> {
        let mut queued = self.db.queued(before, limit).await?;
        let mut seen: HashSet<PlacementId> = queued.iter().map(|p| p.id.clone()).collect();
        for placement in self.recorded_before(before, limit).await? {
            if seen.insert(placement.id.clone()) {
                queued.push(placement);
            }
        }
        queued.sort_by_key(|p| p.created_at);
        queued.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(queued)
    }

    async fn existing(&self, ids: &[String]) -> Result<HashSet<String>, GatewayError> {
        self.db.existing(ids).await
    }

    #[tracing::instrument(skip_all, fields(ids = ids.len()))]
    async fn write_rows(&self, ids: &[String]) -> Result<HashSet<String>, GatewayError> {
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let recorded: Vec<Placement> = self.records(&refs).await?.into_iter().flatten().collect();
        self.db.adopt_all(&recorded).await?;
        self.db.existing(ids).await
    }
}
