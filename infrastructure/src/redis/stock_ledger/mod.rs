//! [`StockLedger`] in Redis, shared by every instance.
//!
//! Per product `P:p7`: `{P:p7}:meta` (bucket count and the suspension lease; its
//! existence means "loaded"), `{P:p7}:quota` (user → units held), `{P:p7}:res` (holds,
//! by token: `kind|qty|b:u,b:u|ts_ms|user`) and `{P:p7}:ret` (returns in progress, by
//! token); per bucket `{P:p7:b3}` (`avail`, `inflight`, and on a cluster the units
//! each hold took from it, `r:<token>`). On one Redis a reservation, a settlement and
//! a view are one script each ([`single`]); on a cluster the product's slot and each
//! bucket's slot are separate steps, each keyed by the token so that a retried call
//! changes nothing twice ([`cluster`]). Every script takes its time from Redis.

mod cluster;
mod load;
mod single;
mod view;

use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;
use flash_sale_domain::UserId;
use flash_sale_domain::allocation::{Allocation, BucketPart};
use flash_sale_domain::gateway::{
    GatewayError, InFlight, LedgerView, Reservation, ReserveRequest, Settlement, StockLedger,
    Suspension,
};
use flash_sale_domain::product::{ProductError, ProductId};
use flash_sale_domain::stock::{BucketDelta, StockBucket};
use redis::Script;

use super::Redis;

macro_rules! script {
    ($name:ident, $file:literal) => {
        pub(super) static $name: LazyLock<Script> =
            LazyLock::new(|| Script::new(include_str!(concat!("../lua/", $file))));
    };
}

script!(RESERVE, "reserve.lua");
script!(SETTLE, "settle.lua");
script!(BEGIN_RETURN, "begin_return.lua");
script!(FINISH_RETURN, "finish_return.lua");
script!(TAKE, "take.lua");
script!(SUSPEND, "suspend.lua");
script!(VIEW, "view.lua");
script!(VIEW_META, "view_meta.lua");
script!(RESERVE_QUOTA, "reserve_quota.lua");
script!(BUCKET_TAKE, "bucket_take.lua");
script!(RECORD_PART, "record_part.lua");
script!(BUCKET_SETTLE, "bucket_settle.lua");
script!(UNRESERVE_QUOTA, "unreserve_quota.lua");
script!(BUCKET_ADJUST, "bucket_adjust.lua");
script!(FINISH_RETURN_QUOTA, "finish_return_quota.lua");

/// The stock ledger in Redis.
#[derive(Debug, Clone)]
pub struct RedisStockLedger {
    redis: Redis,
    split: bool,
    counts: moka::sync::Cache<ProductId, u32>,
    queue_bound: QueueBound,
}

/// How far behind the placement queue may fall before new placements are refused
/// (only where the reservation records placements: see [`RedisStockLedger::reserve`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueBound {
    /// The longest a placement may wait beyond those being written; zero: no bound.
    pub max_lag: Duration,
    /// The placements the consumers may be writing at once (not counted as waiting).
    pub in_flight: usize,
}

/// A product's keys.
pub(super) struct Keys {
    pub(super) meta: String,
    pub(super) quota: String,
    pub(super) res: String,
    pub(super) ret: String,
    base: String,
}

impl Keys {
    pub(super) fn bucket(&self, bucket_no: u32) -> String {
        format!("{{{}:b{bucket_no}}}", self.base)
    }
}

pub(super) fn unexpected(what: &str, code: i64) -> GatewayError {
    GatewayError::Internal(format!("{what} answered {code}").into())
}

/// `b1, u1, b2, u2, …` as an allocation.
pub(super) fn allocation_of(flat: &[i64]) -> Option<Allocation> {
    let parts = flat
        .chunks(2)
        .map(|pair| match pair {
            [b, u] => Some(BucketPart {
                bucket_no: u32::try_from(*b).ok()?,
                units: u32::try_from(*u).ok()?,
            }),
            _ => None,
        })
        .collect::<Option<Vec<_>>>()?;
    Allocation::from_parts(parts)
}

impl RedisStockLedger {
    /// A ledger in `redis`: one script per step on one node, the split form on a
    /// cluster.
    pub fn new(redis: Redis) -> Self {
        let split = redis.is_cluster();
        Self::with_mode(redis, split)
    }

    /// A ledger using the cluster's split scripts even on one node (tests run the
    /// cluster path against a single Redis this way).
    pub fn split_scripts(redis: Redis) -> Self {
        Self::with_mode(redis, true)
    }

    fn with_mode(redis: Redis, split: bool) -> Self {
        Self {
            redis,
            split,
            counts: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(5))
                .build(),
            queue_bound: QueueBound::default(),
        }
    }

    /// The same ledger refusing placements (before taking anything) while the
    /// placements it recorded wait longer than `bound` allows: the consumers are
    /// behind, and a placement accepted now would wait longer still.
    #[must_use]
    pub fn with_queue_bound(mut self, bound: QueueBound) -> Self {
        self.queue_bound = bound;
        self
    }

    pub(super) fn keys(&self, product_id: ProductId) -> Keys {
        let base = format!("{}:p{}", self.redis.prefix(), product_id.0);
        Keys {
            meta: format!("{{{base}}}:meta"),
            quota: format!("{{{base}}}:quota"),
            res: format!("{{{base}}}:res"),
            ret: format!("{{{base}}}:ret"),
            base,
        }
    }

    /// The product's bucket count, `None` when it is not loaded.
    pub(super) async fn bucket_count(
        &self,
        product_id: ProductId,
    ) -> Result<Option<u32>, GatewayError> {
        if let Some(count) = self.counts.get(&product_id) {
            return Ok(Some(count));
        }
        let keys = self.keys(product_id);
        let mut conn = self.redis.conn();
        let count: Option<u32> = self
            .redis
            .run(
                "hget",
                redis::cmd("HGET")
                    .arg(&keys.meta)
                    .arg("buckets")
                    .query_async(&mut conn),
            )
            .await?;
        if let Some(count) = count {
            self.counts.insert(product_id, count);
        }
        Ok(count)
    }

    async fn lease(
        &self,
        product_id: ProductId,
        op: &str,
        suspension: &Suspension,
    ) -> Result<bool, GatewayError> {
        let keys = self.keys(product_id);
        let mut conn = self.redis.conn();
        let done: i64 = self
            .redis
            .run(
                "suspend",
                SUSPEND
                    .key(&keys.meta)
                    .arg(op)
                    .arg(&suspension.owner)
                    .arg(
                        u64::try_from(suspension.ttl.as_millis())
                            .unwrap_or(u64::MAX)
                            .max(1),
                    )
                    .invoke_async(&mut conn),
            )
            .await?;
        Ok(done == 1)
    }
}

#[async_trait]
impl StockLedger for RedisStockLedger {
    #[tracing::instrument(skip_all, fields(product.id = request.product_id.0))]
    async fn reserve<'a>(&self, request: ReserveRequest<'a>) -> Result<Reservation, GatewayError> {
        for _ in 0..3 {
            let Some(count) = self.bucket_count(request.product_id).await? else {
                return Ok(Reservation::NotLoaded);
            };
            let answer = if self.split {
                self.reserve_split(&request, count).await?
            } else {
                self.reserve_single(&request, count).await?
            };
            match answer {
                Ok(Reservation::NotLoaded) => {
                    self.counts.invalidate(&request.product_id);
                    return Ok(Reservation::NotLoaded);
                }
                Ok(reservation) => return Ok(reservation),
                // The layout changed since we read it: read it again.
                Err(count) => self.counts.insert(request.product_id, count),
            }
        }
        Ok(Reservation::Suspended)
    }

    /// On one node: the reservation script records the placement (see
    /// [`super::RedisPlacements`]). A cluster keeps the placement's keys apart from the
    /// product's slot, so there the placement is a database row as in embedded mode.
    fn records_placements(&self) -> bool {
        !self.split
    }

    async fn settle(
        &self,
        product_id: ProductId,
        token: &str,
        allocation: &Allocation,
        settlement: Settlement,
    ) -> Result<(), GatewayError> {
        let mode = match settlement {
            Settlement::Committed => "commit",
            Settlement::Released => "release",
        };
        if self.split {
            self.settle_split(product_id, token, mode).await
        } else {
            self.settle_single(product_id, token, allocation, mode)
                .await
        }
    }

    async fn begin_return(&self, product_id: ProductId, token: &str) -> Result<bool, GatewayError> {
        let keys = self.keys(product_id);
        let mut conn = self.redis.conn();
        let answer: i64 = self
            .redis
            .run(
                "begin return",
                BEGIN_RETURN
                    .key(&keys.meta)
                    .key(&keys.ret)
                    .arg(token)
                    .invoke_async(&mut conn),
            )
            .await?;
        match answer {
            1 => Ok(true),
            0 => Ok(false),
            -1 => Err(GatewayError::rejected(ProductError::Suspended)),
            other => Err(unexpected("begin return", other)),
        }
    }

    async fn finish_return<'u>(
        &self,
        product_id: ProductId,
        token: &str,
        deltas: &[BucketDelta],
        quota: Option<(&'u UserId, u32)>,
    ) -> Result<(), GatewayError> {
        if self.split {
            self.finish_return_split(product_id, token, deltas, quota)
                .await
        } else {
            self.finish_return_single(product_id, token, deltas, quota)
                .await
        }
    }

    async fn take(
        &self,
        product_id: ProductId,
        deltas: &[BucketDelta],
    ) -> Result<bool, GatewayError> {
        if self.split {
            self.take_split(product_id, deltas).await
        } else {
            self.take_single(product_id, deltas).await
        }
    }

    #[tracing::instrument(skip_all, fields(product.id = product_id.0))]
    async fn load(
        &self,
        product_id: ProductId,
        buckets: &[StockBucket],
        quotas: &[(UserId, u32)],
        in_flight: &[InFlight],
    ) -> Result<(), GatewayError> {
        self.load_state(product_id, buckets, quotas, in_flight)
            .await
    }

    async fn is_loaded(&self, product_id: ProductId) -> Result<bool, GatewayError> {
        let keys = self.keys(product_id);
        let mut conn = self.redis.conn();
        self.redis
            .run(
                "exists",
                redis::cmd("EXISTS")
                    .arg(&keys.meta)
                    .query_async::<bool>(&mut conn),
            )
            .await
    }

    async fn view(&self, product_id: ProductId) -> Result<Option<LedgerView>, GatewayError> {
        if self.split {
            self.view_split(product_id).await
        } else {
            self.view_single(product_id).await
        }
    }

    async fn suspend(
        &self,
        product_id: ProductId,
        suspension: &Suspension,
    ) -> Result<bool, GatewayError> {
        self.lease(product_id, "suspend", suspension).await
    }

    async fn renew(
        &self,
        product_id: ProductId,
        suspension: &Suspension,
    ) -> Result<bool, GatewayError> {
        self.lease(product_id, "renew", suspension).await
    }

    async fn resume(
        &self,
        product_id: ProductId,
        suspension: &Suspension,
    ) -> Result<(), GatewayError> {
        self.lease(product_id, "resume", suspension)
            .await
            .map(|_| ())
    }
}
