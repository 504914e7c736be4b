//! Rewriting a product from the database's state (first use, re-lays).

use std::collections::HashMap;

use flash_sale_domain::UserId;
use flash_sale_domain::gateway::{GatewayError, InFlight};
use flash_sale_domain::product::ProductId;
use flash_sale_domain::stock::StockBucket;

use super::{Keys, RedisStockLedger};

/// Rows written per command when loading.
const CHUNK: usize = 500;

impl RedisStockLedger {
    /// Replaces the product's quotas, holds, returns and buckets; the suspension lease
    /// in force stays. The meta key goes last: it makes the product "loaded".
    pub(super) async fn load_state(
        &self,
        product_id: ProductId,
        buckets: &[StockBucket],
        quotas: &[(UserId, u32)],
        in_flight: &[InFlight],
    ) -> Result<(), GatewayError> {
        let keys = self.keys(product_id);
        let mut conn = self.redis.conn();
        let (old_count, susp, owner): (Option<u32>, Option<String>, Option<String>) = self
            .redis
            .run(
                "hmget",
                redis::cmd("HMGET")
                    .arg(&keys.meta)
                    .arg("buckets")
                    .arg("susp")
                    .arg("owner")
                    .query_async(&mut conn),
            )
            .await?;
        let (secs, micros): (i64, i64) = self
            .redis
            .run("time", redis::cmd("TIME").query_async(&mut conn))
            .await?;
        let now_ms = secs * 1000 + micros / 1000;
        for key in [&keys.quota, &keys.res, &keys.ret] {
            self.redis
                .run(
                    "del",
                    redis::cmd("DEL").arg(key).query_async::<i64>(&mut conn),
                )
                .await?;
        }
        self.write_quotas(&keys, quotas).await?;
        let held = self.write_holds(&keys, in_flight, now_ms).await?;
        self.write_buckets(&keys, buckets, &held).await?;
        let count = u32::try_from(buckets.len()).unwrap_or(1);
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
        let mut meta = redis::cmd("HSET");
        meta.arg(&keys.meta).arg("buckets").arg(count);
        if let (Some(susp), Some(owner)) = (susp, owner) {
            meta.arg("susp").arg(susp).arg("owner").arg(owner);
        }
        self.redis
            .run("hset", meta.query_async::<i64>(&mut conn))
            .await?;
        self.counts.insert(product_id, count);
        Ok(())
    }

    async fn write_quotas(
        &self,
        keys: &Keys,
        quotas: &[(UserId, u32)],
    ) -> Result<(), GatewayError> {
        let mut conn = self.redis.conn();
        for chunk in quotas.chunks(CHUNK) {
            let mut cmd = redis::cmd("HSET");
            cmd.arg(&keys.quota);
            for (user, used) in chunk {
                cmd.arg(user.as_str()).arg(*used);
            }
            self.redis
                .run("hset", cmd.query_async::<i64>(&mut conn))
                .await?;
        }
        Ok(())
    }

    /// The queued placements' records; per bucket, the units each holds there.
    async fn write_holds<'a>(
        &self,
        keys: &Keys,
        in_flight: &'a [InFlight],
        now_ms: i64,
    ) -> Result<HashMap<u32, Vec<(&'a str, u32)>>, GatewayError> {
        let mut conn = self.redis.conn();
        let mut held: HashMap<u32, Vec<(&str, u32)>> = HashMap::new();
        for chunk in in_flight.chunks(CHUNK) {
            let mut cmd = redis::cmd("HSET");
            cmd.arg(&keys.res);
            for f in chunk {
                for part in f.allocation.parts() {
                    held.entry(part.bucket_no)
                        .or_default()
                        .push((f.token.as_str(), part.units));
                }
                let record = format!(
                    "p|{}|{}|{now_ms}|{}",
                    f.allocation.quantity(),
                    f.allocation.encode(),
                    f.user_id.as_str()
                );
                cmd.arg(&f.token).arg(record);
            }
            self.redis
                .run("hset", cmd.query_async::<i64>(&mut conn))
                .await?;
        }
        Ok(held)
    }

    /// Each bucket anew: what it sells, what its holds keep in flight (and, for the
    /// cluster's settlements, under which token).
    async fn write_buckets(
        &self,
        keys: &Keys,
        buckets: &[StockBucket],
        held: &HashMap<u32, Vec<(&str, u32)>>,
    ) -> Result<(), GatewayError> {
        let mut conn = self.redis.conn();
        for bucket in buckets {
            let holds = held.get(&bucket.bucket_no).map_or(&[][..], Vec::as_slice);
            let units: i64 = holds.iter().map(|(_, u)| i64::from(*u)).sum();
            let key = keys.bucket(bucket.bucket_no);
            self.redis
                .run(
                    "del",
                    redis::cmd("DEL").arg(&key).query_async::<i64>(&mut conn),
                )
                .await?;
            let mut cmd = redis::cmd("HSET");
            cmd.arg(&key)
                .arg("avail")
                .arg(bucket.available - units)
                .arg("inflight")
                .arg(units);
            for (token, units) in holds {
                cmd.arg(format!("r:{token}")).arg(*units);
            }
            self.redis
                .run("hset", cmd.query_async::<i64>(&mut conn))
                .await?;
        }
        Ok(())
    }
}
