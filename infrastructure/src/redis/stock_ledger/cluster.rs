//! A Redis Cluster: the product's slot (quota, holds, returns) and each bucket's slot
//! are separate scripts. Every bucket step is keyed by the token (`r:<token>` for a
//! hold's units, `a:<token>` for an adjustment), so a call the cluster client retries
//! changes nothing twice, and a hold's record goes last, so a crash between the steps
//! leaves a hold the recovery job can finish.

use flash_sale_domain::UserId;
use flash_sale_domain::allocation::{Allocation, BucketPart};
use flash_sale_domain::gateway::{GatewayError, Reservation, ReserveRequest};
use flash_sale_domain::product::ProductId;
use flash_sale_domain::stock::{BucketDelta, probe_order};
use redis::Value;

use super::view::{int, text};
use super::{
    BUCKET_ADJUST, BUCKET_SETTLE, BUCKET_TAKE, FINISH_RETURN_QUOTA, Keys, RECORD_PART,
    RESERVE_QUOTA, RedisStockLedger, UNRESERVE_QUOTA, unexpected,
};

/// What taking units from buckets came to.
enum Taken {
    All(Allocation),
    /// A bucket key is missing: the product must be rebuilt.
    Missing,
    /// The buckets hold `left` units, too few.
    TooFew(i64),
}

impl RedisStockLedger {
    /// `Err(n)` when the product has `n` buckets now.
    pub(super) async fn reserve_split(
        &self,
        request: &ReserveRequest<'_>,
        count: u32,
    ) -> Result<Result<Reservation, u32>, GatewayError> {
        let keys = self.keys(request.product_id);
        let mut conn = self.redis.conn();
        let answer: Vec<Value> = self
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
                    .arg(request.kind.letter())
                    .arg(count)
                    .invoke_async(&mut conn),
            )
            .await?;
        let code = answer.first().map_or(-99, int);
        match (code, answer.get(1)) {
            (0, Some(earlier)) => {
                let earlier = text(earlier);
                if let Some(allocation) = Allocation::parse(&earlier) {
                    return Ok(Ok(Reservation::Reserved {
                        allocation,
                        left: -1,
                    }));
                }
            }
            (1, _) => return Ok(Ok(Reservation::NotLoaded)),
            (2, _) => return Ok(Ok(Reservation::Suspended)),
            (3, Some(used)) => {
                return Ok(Ok(Reservation::LimitExceeded {
                    used: u32::try_from(int(used)).unwrap_or(u32::MAX),
                }));
            }
            (5, Some(n)) => return Ok(Err(u32::try_from(int(n)).unwrap_or(1))),
            _ => return Err(unexpected("reserve quota", code)),
        }
        match self.take_units(&keys, request, count).await? {
            Taken::All(allocation) => Ok(Ok(Reservation::Reserved {
                allocation,
                left: -1,
            })),
            Taken::Missing => {
                self.end_hold(&keys, request.token, "release").await?;
                self.forget_layout(&keys).await?;
                Ok(Ok(Reservation::NotLoaded))
            }
            Taken::TooFew(left) => {
                self.end_hold(&keys, request.token, "release").await?;
                Ok(Ok(Reservation::SoldOut { left }))
            }
        }
    }

    /// Takes the units: all from the first bucket in probe order that holds them,
    /// else from several, noting each part on the hold's record.
    async fn take_units(
        &self,
        keys: &Keys,
        request: &ReserveRequest<'_>,
        count: u32,
    ) -> Result<Taken, GatewayError> {
        let want = i64::from(request.quantity);
        let mut total = 0;
        for bucket_no in probe_order(request.user_id, count) {
            match self
                .bucket_take(keys, bucket_no, request.token, want, true)
                .await?
            {
                Some((taken, _)) if taken > 0 => {
                    self.record_part(keys, request.token, bucket_no, taken)
                        .await?;
                    return Ok(Taken::All(Allocation::single(bucket_no, request.quantity)));
                }
                Some((_, avail)) => total += avail,
                None => return Ok(Taken::Missing),
            }
        }
        if total < want {
            return Ok(Taken::TooFew(total));
        }
        let mut parts = Vec::new();
        let mut left = want;
        for bucket_no in probe_order(request.user_id, count) {
            match self
                .bucket_take(keys, bucket_no, request.token, left, false)
                .await?
            {
                Some((taken, _)) if taken > 0 => {
                    self.record_part(keys, request.token, bucket_no, taken)
                        .await?;
                    parts.push(BucketPart {
                        bucket_no,
                        units: u32::try_from(taken).unwrap_or(0),
                    });
                    left -= taken;
                }
                Some(_) => {}
                None => return Ok(Taken::Missing),
            }
            if left == 0 {
                return Ok(Allocation::from_parts(parts).map_or(Taken::TooFew(0), Taken::All));
            }
        }
        Ok(Taken::TooFew(want - left))
    }

    /// `Some((taken, avail after))`, `None` when the bucket is missing.
    async fn bucket_take(
        &self,
        keys: &Keys,
        bucket_no: u32,
        token: &str,
        want: i64,
        all: bool,
    ) -> Result<Option<(i64, i64)>, GatewayError> {
        let mut conn = self.redis.conn();
        let answer: Vec<i64> = self
            .redis
            .run(
                "bucket take",
                BUCKET_TAKE
                    .key(keys.bucket(bucket_no))
                    .arg(token)
                    .arg(want)
                    .arg(if all { "1" } else { "0" })
                    .invoke_async(&mut conn),
            )
            .await?;
        match answer.as_slice() {
            [1, units, after] => Ok(Some((*units, *after))),
            [0, left] => Ok(Some((0, *left))),
            [-1] => Ok(None),
            other => Err(unexpected(
                "bucket take",
                other.first().copied().unwrap_or(-99),
            )),
        }
    }

    async fn record_part(
        &self,
        keys: &Keys,
        token: &str,
        bucket_no: u32,
        units: i64,
    ) -> Result<(), GatewayError> {
        let mut conn = self.redis.conn();
        let _: i64 = self
            .redis
            .run(
                "record part",
                RECORD_PART
                    .key(&keys.res)
                    .arg(token)
                    .arg(bucket_no)
                    .arg(units)
                    .invoke_async(&mut conn),
            )
            .await?;
        Ok(())
    }

    /// Ends a hold: each bucket's share first, then the record (and the quota).
    async fn end_hold(&self, keys: &Keys, token: &str, mode: &str) -> Result<(), GatewayError> {
        let mut conn = self.redis.conn();
        let record: Option<String> = self
            .redis
            .run(
                "hget",
                redis::cmd("HGET")
                    .arg(&keys.res)
                    .arg(token)
                    .query_async(&mut conn),
            )
            .await?;
        let Some(record) = record else {
            return Ok(());
        };
        let parts = record.split('|').nth(2).unwrap_or("");
        let buckets = parts
            .split(',')
            .filter_map(|p| p.split_once(':'))
            .filter_map(|(b, _)| b.parse::<u32>().ok());
        for bucket in buckets {
            let _: i64 = self
                .redis
                .run(
                    "bucket settle",
                    BUCKET_SETTLE
                        .key(keys.bucket(bucket))
                        .arg(token)
                        .arg(mode)
                        .invoke_async(&mut conn),
                )
                .await?;
        }
        let _: i64 = self
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
        Ok(())
    }

    pub(super) async fn settle_split(
        &self,
        product_id: ProductId,
        token: &str,
        mode: &str,
    ) -> Result<(), GatewayError> {
        self.end_hold(&self.keys(product_id), token, mode).await
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
        token: &str,
        delta: i64,
    ) -> Result<i64, GatewayError> {
        let mut conn = self.redis.conn();
        self.redis
            .run(
                "bucket adjust",
                BUCKET_ADJUST
                    .key(keys.bucket(bucket_no))
                    .arg(token)
                    .arg(delta)
                    .invoke_async(&mut conn),
            )
            .await
    }

    pub(super) async fn finish_return_split(
        &self,
        product_id: ProductId,
        token: &str,
        deltas: &[BucketDelta],
        quota: Option<(&UserId, u32)>,
    ) -> Result<(), GatewayError> {
        let keys = self.keys(product_id);
        let (user, units) = quota.map_or(("", 0), |(user, units)| (user.as_str(), units));
        // The buckets first (each once per token), then the record: a crash in
        // between leaves a return in progress for the recovery job, never a double.
        let mut conn = self.redis.conn();
        let announced: bool = self
            .redis
            .run(
                "hexists",
                redis::cmd("HEXISTS")
                    .arg(&keys.ret)
                    .arg(token)
                    .query_async(&mut conn),
            )
            .await?;
        if !announced {
            return Ok(());
        }
        for d in deltas {
            self.adjust_bucket(&keys, d.bucket_no, token, d.delta)
                .await?;
        }
        let _: i64 = self
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
        Ok(())
    }

    pub(super) async fn take_split(
        &self,
        product_id: ProductId,
        deltas: &[BucketDelta],
    ) -> Result<bool, GatewayError> {
        let keys = self.keys(product_id);
        let token = uuid::Uuid::now_v7().to_string();
        for (i, d) in deltas.iter().enumerate() {
            if self
                .adjust_bucket(&keys, d.bucket_no, &token, d.delta)
                .await?
                != 1
            {
                let undo = format!("{token}:undo");
                for done in &deltas[..i] {
                    self.adjust_bucket(&keys, done.bucket_no, &undo, -done.delta)
                        .await?;
                }
                return Ok(false);
            }
        }
        Ok(true)
    }
}
