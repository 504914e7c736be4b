//! [`TallyGateway`] on Redis: every instance adds its counts to one hash per product
//! (`P:tally:<product>`, fields `<second>:<outcome>`), so every instance's console
//! shows the same figures.

use std::collections::BTreeMap;

use async_trait::async_trait;
use flash_sale_domain::gateway::{GatewayError, Tally, TallyGateway};
use flash_sale_domain::product::ProductId;

use super::Redis;
use crate::embedded::KEEP;

/// The console's counts, shared by every instance.
#[derive(Debug, Clone)]
pub struct RedisTally {
    redis: Redis,
}

impl RedisTally {
    /// Counts in `redis`.
    pub fn new(redis: Redis) -> Self {
        Self { redis }
    }

    fn key(&self, product: ProductId) -> String {
        format!("{}:tally:{}", self.redis.prefix(), product.0)
    }
}

#[async_trait]
impl TallyGateway for RedisTally {
    async fn add(&self, second: i64, counts: &[(ProductId, Tally)]) -> Result<(), GatewayError> {
        let mut conn = self.redis.conn();
        // One pipeline per product: its fields share one key (and, on a cluster, one slot).
        for (product, tally) in counts {
            let key = self.key(*product);
            let mut pipe = redis::pipe();
            for (outcome, n) in tally.iter().enumerate().filter(|(_, n)| **n > 0) {
                pipe.cmd("HINCRBY")
                    .arg(&key)
                    .arg(format!("{second}:{outcome}"))
                    .arg(*n)
                    .ignore();
            }
            pipe.cmd("EXPIRE").arg(&key).arg(2 * KEEP).ignore();
            self.redis
                .run("tally add", pipe.query_async::<()>(&mut conn))
                .await?;
        }
        Ok(())
    }

    async fn since(
        &self,
        product: ProductId,
        since: i64,
    ) -> Result<Vec<(i64, Tally)>, GatewayError> {
        let key = self.key(product);
        let mut conn = self.redis.conn();
        let fields: Vec<(String, u64)> = self
            .redis
            .run(
                "tally read",
                redis::cmd("HGETALL").arg(&key).query_async(&mut conn),
            )
            .await?;
        let mut seconds: BTreeMap<i64, Tally> = BTreeMap::new();
        let mut stale = Vec::new();
        for (field, n) in fields {
            let parsed = field.split_once(':').and_then(|(second, outcome)| {
                Some((second.parse::<i64>().ok()?, outcome.parse::<usize>().ok()?))
            });
            match parsed {
                Some((second, outcome)) if second >= since => {
                    if let Some(slot) = seconds.entry(second).or_default().get_mut(outcome) {
                        *slot += n;
                    }
                }
                Some((second, _)) if second >= since - KEEP => {}
                _ => stale.push(field),
            }
        }
        if !stale.is_empty() {
            self.redis
                .run(
                    "tally prune",
                    redis::cmd("HDEL")
                        .arg(&key)
                        .arg(&stale)
                        .query_async::<u64>(&mut conn),
                )
                .await?;
        }
        Ok(seconds.into_iter().collect())
    }
}
