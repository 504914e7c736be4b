//! One Redis: each step that moves stock is one script over every key it touches.

use flash_sale_domain::UserId;
use flash_sale_domain::allocation::Allocation;
use flash_sale_domain::gateway::{GatewayError, Reservation, ReserveRequest};
use flash_sale_domain::product::ProductId;
use flash_sale_domain::stock::{BucketDelta, home_bucket, probe_order};

use super::super::placements::{record_json, record_keys};
use super::{FINISH_RETURN, RESERVE, RedisStockLedger, SETTLE, TAKE, allocation_of, unexpected};

/// What the reservation script answered (`Err(n)`: the product has `n` buckets now).
fn reservation_of(answer: &[i64]) -> Result<Result<Reservation, u32>, GatewayError> {
    Ok(match answer {
        [0, left, parts @ ..] => Ok(Reservation::Reserved {
            allocation: allocation_of(parts)
                .ok_or_else(|| GatewayError::Internal("reserve: no parts".into()))?,
            left: *left,
        }),
        [1] => Ok(Reservation::NotLoaded),
        [2] => Ok(Reservation::Suspended),
        [3, used] => Ok(Reservation::LimitExceeded {
            used: u32::try_from(*used).unwrap_or(u32::MAX),
        }),
        [4, left] => Ok(Reservation::SoldOut { left: *left }),
        [5, n] => Err(u32::try_from(*n).unwrap_or(1)),
        [7, lag] => Ok(Reservation::Backlogged {
            lag: std::time::Duration::from_millis(u64::try_from(*lag).unwrap_or_default()),
        }),
        other => return Err(unexpected("reserve", other.first().copied().unwrap_or(-99))),
    })
}

impl RedisStockLedger {
    /// `Err(n)` when the product has `n` buckets now. A product of several buckets is
    /// asked with the buyer's home bucket first, and with every bucket (in the
    /// buyer's probe order) only when that one holds too few.
    pub(super) async fn reserve_single(
        &self,
        request: &ReserveRequest<'_>,
        count: u32,
    ) -> Result<Result<Reservation, u32>, GatewayError> {
        if count > 1 {
            let home = [home_bucket(request.user_id, count)];
            let answer = self.reserve_in(request, count, &home).await?;
            if answer != [6] {
                return reservation_of(&answer);
            }
        }
        let order: Vec<u32> = probe_order(request.user_id, count).collect();
        reservation_of(&self.reserve_in(request, count, &order).await?)
    }

    /// One call of the reservation script over `buckets`.
    async fn reserve_in(
        &self,
        request: &ReserveRequest<'_>,
        count: u32,
        buckets: &[u32],
    ) -> Result<Vec<i64>, GatewayError> {
        let keys = self.keys(request.product_id);
        let mut invocation = RESERVE.prepare_invoke();
        invocation.key(&keys.meta).key(&keys.quota).key(&keys.res);
        for &b in buckets {
            invocation.key(keys.bucket(b));
        }
        // A placement is recorded beside its hold (see `redis::placements`).
        let record = request
            .placement
            .map(|p| (record_keys(self.redis.prefix(), p), record_json(p)));
        if let Some((record_keys, _)) = &record {
            for key in record_keys {
                invocation.key(key);
            }
        }
        invocation
            .arg(request.user_id.as_str())
            .arg(request.quantity)
            .arg(request.limit)
            .arg(request.token)
            .arg(request.kind.letter())
            .arg(count);
        match &record {
            Some((record_keys, json)) => invocation.arg(record_keys.len()).arg(json),
            None => invocation.arg(0).arg(""),
        };
        invocation
            .arg(u64::try_from(self.queue_bound.max_lag.as_millis()).unwrap_or(u64::MAX))
            .arg(self.queue_bound.in_flight);
        for &b in buckets {
            invocation.arg(b);
        }
        let mut conn = self.redis.conn();
        self.redis
            .run("reserve", invocation.invoke_async(&mut conn))
            .await
    }

    /// Settles with the buckets of `belief`, then once more with the record's own when
    /// they differ (the hold was moved by a re-arrangement).
    pub(super) async fn settle_single(
        &self,
        product_id: ProductId,
        token: &str,
        belief: &Allocation,
        mode: &str,
    ) -> Result<(), GatewayError> {
        let keys = self.keys(product_id);
        let mut parts = belief.clone();
        for _ in 0..2 {
            let mut invocation = SETTLE.prepare_invoke();
            invocation.key(&keys.res).key(&keys.quota);
            for part in parts.parts() {
                invocation.key(keys.bucket(part.bucket_no));
            }
            invocation.arg(token).arg(mode);
            for part in parts.parts() {
                invocation.arg(part.bucket_no);
            }
            let mut conn = self.redis.conn();
            let answer: (i64, String) = self
                .redis
                .run("settle", invocation.invoke_async(&mut conn))
                .await?;
            match answer {
                (0 | 1, _) => return Ok(()),
                (-3, text) => {
                    parts = Allocation::parse(&text).ok_or_else(|| {
                        GatewayError::Internal(format!("settle: a record says {text}").into())
                    })?;
                }
                (code, _) => return Err(unexpected("settle", code)),
            }
        }
        Err(GatewayError::Internal(
            "settle: the record kept moving".into(),
        ))
    }

    pub(super) async fn finish_return_single(
        &self,
        product_id: ProductId,
        token: &str,
        deltas: &[BucketDelta],
        quota: Option<(&UserId, u32)>,
    ) -> Result<(), GatewayError> {
        let keys = self.keys(product_id);
        let (user, units) = quota.map_or(("", 0), |(user, units)| (user.as_str(), units));
        let mut invocation = FINISH_RETURN.prepare_invoke();
        invocation.key(&keys.ret).key(&keys.quota);
        for d in deltas {
            invocation.key(keys.bucket(d.bucket_no));
        }
        invocation.arg(token).arg(user).arg(units);
        for d in deltas {
            invocation.arg(d.delta);
        }
        let mut conn = self.redis.conn();
        let _: i64 = self
            .redis
            .run("finish return", invocation.invoke_async(&mut conn))
            .await?;
        Ok(())
    }

    pub(super) async fn take_single(
        &self,
        product_id: ProductId,
        deltas: &[BucketDelta],
    ) -> Result<bool, GatewayError> {
        let keys = self.keys(product_id);
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
}
