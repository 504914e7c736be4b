//! [`StockLedger`] in Redis, shared by every instance.
//!
//! Per product `P:p7`: `{P:p7}:meta` (bucket count, suspend flag; its existence means
//! "loaded"), `{P:p7}:quota` (user → units held), `{P:p7}:res` (reservations in flight,
//! by token) and `{P:p7}:ret` (returns in flight, by token); per bucket `{P:p7:b3}`
//! (`avail`, `inflight`, `susp`). On one Redis a reservation is one script
//! (`reserve.lua`); on a cluster it is the quota in the product's slot, then the units
//! in a bucket's slot (see the scripts' headers). Records keyed by token make every
//! settle and return happen at most once, even when a reply is lost and the call is
//! repeated.

use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use flash_sale_domain::UserId;
use flash_sale_domain::gateway::{
    GatewayError, InFlight, LedgerView, Reservation, ReserveRequest, Settlement, StockLedger,
};
use flash_sale_domain::product::{ProductError, ProductId};
use flash_sale_domain::stock::{BucketDelta, StockBucket, probe_order};
use redis::Script;

use super::Redis;

macro_rules! script {
    ($name:ident, $file:literal) => {
        static $name: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!($file)));
    };
}

script!(RESERVE, "lua/reserve.lua");
script!(SETTLE, "lua/settle.lua");
script!(BEGIN_RETURN, "lua/begin_return.lua");
script!(FINISH_RETURN, "lua/finish_return.lua");
script!(TAKE, "lua/take.lua");
script!(RESERVE_QUOTA, "lua/reserve_quota.lua");
script!(BUCKET_TAKE, "lua/bucket_take.lua");
script!(RECORD_BUCKET, "lua/record_bucket.lua");
script!(UNRESERVE_QUOTA, "lua/unreserve_quota.lua");
script!(BUCKET_ADJUST, "lua/bucket_adjust.lua");
script!(FINISH_RETURN_QUOTA, "lua/finish_return_quota.lua");

/// Records older than this belong to an instance that died mid-operation: a reload
/// does not wait for them (the database holds the truth).
const STALE_MS: i64 = 15_000;
/// Quota rows written per command when loading.
const QUOTA_CHUNK: usize = 500;

/// The stock ledger in Redis.
#[derive(Debug, Clone)]
pub struct RedisStockLedger {
    redis: Redis,
    split: bool,
    counts: moka::sync::Cache<ProductId, u32>,
}

struct Keys {
    meta: String,
    quota: String,
    res: String,
    ret: String,
    base: String,
}

impl Keys {
    fn bucket(&self, bucket_no: u32) -> String {
        format!("{{{}:b{bucket_no}}}", self.base)
    }
}

fn now_ms() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis(),
    )
    .unwrap_or(i64::MAX)
}

fn suspended() -> GatewayError {
    GatewayError::rejected(ProductError::Suspended)
}

fn unexpected(what: &str, code: i64) -> GatewayError {
    GatewayError::Internal(format!("{what} answered {code}"))
}

impl RedisStockLedger {
    /// A ledger in `redis`: one script per reservation on one node, the two-step
    /// form on a cluster.
    pub fn new(redis: Redis) -> Self {
        let split = redis.is_cluster();
        Self::with_mode(redis, split)
    }

    /// A ledger using the cluster's two-step scripts even on one node (tests run the
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
        }
    }

    fn keys(&self, product_id: ProductId) -> Keys {
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
    async fn bucket_count(&self, product_id: ProductId) -> Result<Option<u32>, GatewayError> {
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

    async fn reserve_single(
        &self,
        request: &ReserveRequest<'_>,
        keys: &Keys,
        count: u32,
    ) -> Result<Result<Reservation, u32>, GatewayError> {
        let order: Vec<u32> = probe_order(request.user_id, count).collect();
        let mut invocation = RESERVE.prepare_invoke();
        invocation.key(&keys.meta).key(&keys.quota).key(&keys.res);
        for &b in &order {
            invocation.key(keys.bucket(b));
        }
        invocation
            .arg(request.user_id.as_str())
            .arg(request.quantity)
            .arg(request.limit)
            .arg(request.token)
            .arg(now_ms());
        for &b in &order {
            invocation.arg(b);
        }
        let mut conn = self.redis.conn();
        let answer: Vec<i64> = self
            .redis
            .run("reserve", invocation.invoke_async(&mut conn))
            .await?;
        Ok(match answer.as_slice() {
            [0, bucket, left] => Ok(Reservation::Reserved {
                bucket_no: u32::try_from(*bucket).unwrap_or(0),
                left: *left,
            }),
            [1] => Ok(Reservation::NotLoaded),
            [2] => Ok(Reservation::Suspended),
            [3, used] => Ok(Reservation::LimitExceeded {
                used: u32::try_from(*used).unwrap_or(u32::MAX),
            }),
            [4, left] => Ok(Reservation::SoldOut { left: *left }),
            [5, n] => Err(u32::try_from(*n).unwrap_or(1)),
            other => return Err(unexpected("reserve", other.first().copied().unwrap_or(-99))),
        })
    }

    async fn reserve_cluster(
        &self,
        request: &ReserveRequest<'_>,
        keys: &Keys,
        count: u32,
    ) -> Result<Result<Reservation, u32>, GatewayError> {
        let mut conn = self.redis.conn();
        let answer: Vec<i64> = self
            .redis
            .run(
                "reserve quota",
                RESERVE_QUOTA
                    .key(&keys.meta)
                    .key(&keys.quota)
                    .key(&keys.res)
                    .arg(request.user_id.as_str())
                    .arg(request.quantity)
                    .arg(request.limit)
                    .arg(request.token)
                    .arg(now_ms())
                    .arg(count)
                    .invoke_async(&mut conn),
            )
            .await?;
        match answer.as_slice() {
            [0, -1] => {}
            [0, bucket] => {
                return Ok(Ok(Reservation::Reserved {
                    bucket_no: u32::try_from(*bucket).unwrap_or(0),
                    left: -1,
                }));
            }
            [1] => return Ok(Ok(Reservation::NotLoaded)),
            [2] => return Ok(Ok(Reservation::Suspended)),
            [3, used] => {
                return Ok(Ok(Reservation::LimitExceeded {
                    used: u32::try_from(*used).unwrap_or(u32::MAX),
                }));
            }
            [5, n] => return Ok(Err(u32::try_from(*n).unwrap_or(1))),
            other => {
                return Err(unexpected(
                    "reserve quota",
                    other.first().copied().unwrap_or(-99),
                ));
            }
        }
        let mut left = 0;
        for bucket_no in probe_order(request.user_id, count) {
            let answer: Vec<i64> = self
                .redis
                .run(
                    "bucket take",
                    BUCKET_TAKE
                        .key(keys.bucket(bucket_no))
                        .arg(request.quantity)
                        .invoke_async(&mut conn),
                )
                .await?;
            match answer.as_slice() {
                [1, _] => {
                    let _: i64 = self
                        .redis
                        .run(
                            "record bucket",
                            RECORD_BUCKET
                                .key(&keys.res)
                                .arg(request.token)
                                .arg(bucket_no)
                                .invoke_async(&mut conn),
                        )
                        .await?;
                    return Ok(Ok(Reservation::Reserved {
                        bucket_no,
                        left: -1,
                    }));
                }
                [0, avail] => left += avail,
                [-1 | -2] => {
                    self.unreserve(keys, request.token, "release").await?;
                    if answer[0] == -1 {
                        self.forget_layout(keys).await?;
                        return Ok(Ok(Reservation::NotLoaded));
                    }
                    return Ok(Ok(Reservation::Suspended));
                }
                other => {
                    return Err(unexpected(
                        "bucket take",
                        other.first().copied().unwrap_or(-99),
                    ));
                }
            }
        }
        self.unreserve(keys, request.token, "release").await?;
        Ok(Ok(Reservation::SoldOut { left }))
    }

    /// The product-slot half of ending a reservation; its bucket and quantity.
    async fn unreserve(
        &self,
        keys: &Keys,
        token: &str,
        mode: &str,
    ) -> Result<Option<(i64, i64)>, GatewayError> {
        let mut conn = self.redis.conn();
        let answer: Vec<i64> = self
            .redis
            .run(
                "unreserve quota",
                UNRESERVE_QUOTA
                    .key(&keys.res)
                    .key(&keys.quota)
                    .arg(token)
                    .arg(mode)
                    .invoke_async(&mut conn),
            )
            .await?;
        Ok(match answer.as_slice() {
            [1, bucket, quantity] => Some((*bucket, *quantity)),
            _ => None,
        })
    }

    /// A bucket went missing: drop the meta key so the product is rebuilt whole.
    async fn forget_layout(&self, keys: &Keys) -> Result<(), GatewayError> {
        let mut conn = self.redis.conn();
        let _: i64 = self
            .redis
            .run(
                "del",
                redis::cmd("DEL").arg(&keys.meta).query_async(&mut conn),
            )
            .await?;
        Ok(())
    }

    async fn adjust_bucket(
        &self,
        keys: &Keys,
        bucket_no: u32,
        avail: i64,
        inflight: i64,
    ) -> Result<i64, GatewayError> {
        let mut conn = self.redis.conn();
        self.redis
            .run(
                "bucket adjust",
                BUCKET_ADJUST
                    .key(keys.bucket(bucket_no))
                    .arg(avail)
                    .arg(inflight)
                    .invoke_async(&mut conn),
            )
            .await
    }

    async fn set_suspended(&self, product_id: ProductId, on: bool) -> Result<bool, GatewayError> {
        let keys = self.keys(product_id);
        let Some(count) = self.bucket_count(product_id).await? else {
            return Ok(false);
        };
        let flag = i32::from(on);
        let mut conn = self.redis.conn();
        self.redis
            .run(
                "hset",
                redis::cmd("HSET")
                    .arg(&keys.meta)
                    .arg("susp")
                    .arg(flag)
                    .query_async::<i64>(&mut conn),
            )
            .await?;
        for b in 0..count {
            self.redis
                .run(
                    "hset",
                    redis::cmd("HSET")
                        .arg(keys.bucket(b))
                        .arg("susp")
                        .arg(flag)
                        .query_async::<i64>(&mut conn),
                )
                .await?;
        }
        Ok(true)
    }

    /// Whether a record of `hash` is younger than [`STALE_MS`].
    async fn has_fresh_records(
        &self,
        hash: &str,
        value_ts: fn(&str) -> Option<i64>,
    ) -> Result<bool, GatewayError> {
        let mut conn = self.redis.conn();
        let records: Vec<(String, String)> = self
            .redis
            .run(
                "hgetall",
                redis::cmd("HGETALL").arg(hash).query_async(&mut conn),
            )
            .await?;
        let now = now_ms();
        Ok(records
            .iter()
            .filter_map(|(_, value)| value_ts(value))
            .any(|ts| now - ts < STALE_MS))
    }
}

/// The timestamp of a reservation record, `bucket|qty|ts|user`.
fn reservation_ts(value: &str) -> Option<i64> {
    value.split('|').nth(2)?.parse().ok()
}

/// The timestamp of a return record.
fn return_ts(value: &str) -> Option<i64> {
    value.parse().ok()
}

#[async_trait]
impl StockLedger for RedisStockLedger {
    #[tracing::instrument(skip_all, fields(product.id = request.product_id.0))]
    async fn reserve(&self, request: ReserveRequest<'_>) -> Result<Reservation, GatewayError> {
        let keys = self.keys(request.product_id);
        for _ in 0..3 {
            let Some(count) = self.bucket_count(request.product_id).await? else {
                return Ok(Reservation::NotLoaded);
            };
            let answer = if self.split {
                self.reserve_cluster(&request, &keys, count).await?
            } else {
                self.reserve_single(&request, &keys, count).await?
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

    async fn settle(
        &self,
        product_id: ProductId,
        token: &str,
        bucket_no: u32,
        _quantity: u32,
        settlement: Settlement<'_>,
    ) -> Result<(), GatewayError> {
        let keys = self.keys(product_id);
        let mode = match settlement {
            Settlement::Committed => "commit",
            Settlement::Released(_) => "release",
        };
        if self.split {
            if let Some((bucket, quantity)) = self.unreserve(&keys, token, mode).await?
                && let Ok(bucket) = u32::try_from(bucket)
            {
                let avail = if mode == "release" { quantity } else { 0 };
                self.adjust_bucket(&keys, bucket, avail, -quantity).await?;
            }
            return Ok(());
        }
        let mut conn = self.redis.conn();
        let _: i64 = self
            .redis
            .run(
                "settle",
                SETTLE
                    .key(&keys.res)
                    .key(&keys.quota)
                    .key(keys.bucket(bucket_no))
                    .arg(token)
                    .arg(mode)
                    .invoke_async(&mut conn),
            )
            .await?;
        Ok(())
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
                    .arg(now_ms())
                    .invoke_async(&mut conn),
            )
            .await?;
        match answer {
            1 => Ok(true),
            0 => Ok(false),
            -1 => Err(suspended()),
            other => Err(unexpected("begin return", other)),
        }
    }

    async fn finish_return(
        &self,
        product_id: ProductId,
        token: &str,
        deltas: &[BucketDelta],
        quota: Option<(&UserId, u32)>,
    ) -> Result<(), GatewayError> {
        let keys = self.keys(product_id);
        let (user, units) = quota.map_or(("", 0), |(user, units)| (user.as_str(), units));
        let mut conn = self.redis.conn();
        if self.split {
            let ended: i64 = self
                .redis
                .run(
                    "finish return",
                    FINISH_RETURN_QUOTA
                        .key(&keys.ret)
                        .key(&keys.quota)
                        .arg(token)
                        .arg(user)
                        .arg(units)
                        .invoke_async(&mut conn),
                )
                .await?;
            if ended == 1 {
                for d in deltas {
                    self.adjust_bucket(&keys, d.bucket_no, d.delta, 0).await?;
                }
            }
            return Ok(());
        }
        let mut invocation = FINISH_RETURN.prepare_invoke();
        invocation.key(&keys.ret).key(&keys.quota);
        for d in deltas {
            invocation.key(keys.bucket(d.bucket_no));
        }
        invocation.arg(token).arg(user).arg(units);
        for d in deltas {
            invocation.arg(d.delta);
        }
        let _: i64 = self
            .redis
            .run("finish return", invocation.invoke_async(&mut conn))
            .await?;
        Ok(())
    }

    async fn take(
        &self,
        product_id: ProductId,
        deltas: &[BucketDelta],
    ) -> Result<bool, GatewayError> {
        let keys = self.keys(product_id);
        if self.split {
            for (i, d) in deltas.iter().enumerate() {
                if self.adjust_bucket(&keys, d.bucket_no, d.delta, 0).await? != 1 {
                    for undo in &deltas[..i] {
                        self.adjust_bucket(&keys, undo.bucket_no, -undo.delta, 0)
                            .await?;
                    }
                    return Ok(false);
                }
            }
            return Ok(true);
        }
        let mut invocation = TAKE.prepare_invoke();
        for d in deltas {
            invocation.key(keys.bucket(d.bucket_no));
        }
        for d in deltas {
            invocation.arg(-d.delta);
        }
        let mut conn = self.redis.conn();
        let taken: i64 = self
            .redis
            .run("take", invocation.invoke_async(&mut conn))
            .await?;
        Ok(taken == 1)
    }

    #[tracing::instrument(skip_all, fields(product.id = product_id.0))]
    async fn load(
        &self,
        product_id: ProductId,
        buckets: &[StockBucket],
        quotas: &[(UserId, u32)],
        in_flight: &[InFlight],
    ) -> Result<(), GatewayError> {
        let keys = self.keys(product_id);
        let mut conn = self.redis.conn();
        let (old_count, susp): (Option<u32>, Option<String>) = self
            .redis
            .run(
                "hmget",
                redis::cmd("HMGET")
                    .arg(&keys.meta)
                    .arg("buckets")
                    .arg("susp")
                    .query_async(&mut conn),
            )
            .await?;
        let susp = i32::from(susp.as_deref() == Some("1"));
        for key in [&keys.quota, &keys.res, &keys.ret] {
            self.redis
                .run(
                    "del",
                    redis::cmd("DEL").arg(key).query_async::<i64>(&mut conn),
                )
                .await?;
        }
        for chunk in quotas.chunks(QUOTA_CHUNK) {
            let mut cmd = redis::cmd("HSET");
            cmd.arg(&keys.quota);
            for (user, used) in chunk {
                cmd.arg(user.as_str()).arg(*used);
            }
            self.redis
                .run("hset", cmd.query_async::<i64>(&mut conn))
                .await?;
        }
        let now_ms = now_ms();
        let mut held: HashMap<u32, i64> = HashMap::new();
        for chunk in in_flight.chunks(QUOTA_CHUNK) {
            let mut cmd = redis::cmd("HSET");
            cmd.arg(&keys.res);
            for f in chunk {
                *held.entry(f.bucket_no).or_default() += i64::from(f.quantity);
                let record = format!(
                    "{}|{}|{now_ms}|{}",
                    f.bucket_no,
                    f.quantity,
                    f.user_id.as_str()
                );
                cmd.arg(&f.token).arg(record);
            }
            self.redis
                .run("hset", cmd.query_async::<i64>(&mut conn))
                .await?;
        }
        let count = u32::try_from(buckets.len()).unwrap_or(1);
        for bucket in buckets {
            let held = held.get(&bucket.bucket_no).copied().unwrap_or(0);
            self.redis
                .run(
                    "hset",
                    redis::cmd("HSET")
                        .arg(keys.bucket(bucket.bucket_no))
                        .arg("avail")
                        .arg(bucket.available - held)
                        .arg("inflight")
                        .arg(held)
                        .arg("susp")
                        .arg(susp)
                        .query_async::<i64>(&mut conn),
                )
                .await?;
        }
        for stale in count..old_count.unwrap_or(0) {
            self.redis
                .run(
                    "del",
                    redis::cmd("DEL")
                        .arg(keys.bucket(stale))
                        .query_async::<i64>(&mut conn),
                )
                .await?;
        }
        // Last: the meta key makes the product "loaded".
        self.redis
            .run(
                "hset",
                redis::cmd("HSET")
                    .arg(&keys.meta)
                    .arg("buckets")
                    .arg(count)
                    .arg("susp")
                    .arg(susp)
                    .query_async::<i64>(&mut conn),
            )
            .await?;
        self.counts.insert(product_id, count);
        Ok(())
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
        self.counts.invalidate(&product_id);
        let Some(count) = self.bucket_count(product_id).await? else {
            return Ok(None);
        };
        let keys = self.keys(product_id);
        let mut conn = self.redis.conn();
        let mut view = LedgerView {
            available: Vec::with_capacity(count as usize),
            in_flight: Vec::with_capacity(count as usize),
        };
        for b in 0..count {
            let (avail, inflight): (Option<i64>, Option<i64>) = self
                .redis
                .run(
                    "hmget",
                    redis::cmd("HMGET")
                        .arg(keys.bucket(b))
                        .arg("avail")
                        .arg("inflight")
                        .query_async(&mut conn),
                )
                .await?;
            view.available.push(avail.unwrap_or(0));
            view.in_flight.push(inflight.unwrap_or(0));
        }
        Ok(Some(view))
    }

    async fn suspend(&self, product_id: ProductId, wait: Duration) -> Result<bool, GatewayError> {
        if !self.set_suspended(product_id, true).await? {
            return Ok(true);
        }
        let keys = self.keys(product_id);
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let busy = self.has_fresh_records(&keys.res, reservation_ts).await?
                || self.has_fresh_records(&keys.ret, return_ts).await?;
            if !busy {
                return Ok(true);
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn resume(&self, product_id: ProductId) -> Result<(), GatewayError> {
        self.set_suspended(product_id, false).await.map(|_| ())
    }
}
