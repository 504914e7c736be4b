//! [`SharedCache`] on Redis: plain string values with a time to live.

use std::time::Duration;

use async_trait::async_trait;
use flash_sale_domain::gateway::{GatewayError, SharedCache};

use super::Redis;

/// The shared cache level in Redis (keys under `P:cache:`).
#[derive(Debug, Clone)]
pub struct RedisSharedCache {
    redis: Redis,
}

impl RedisSharedCache {
    /// A cache in `redis`.
    pub fn new(redis: Redis) -> Self {
        Self { redis }
    }

    fn key(&self, key: &str) -> String {
        format!("{}:cache:{key}", self.redis.prefix())
    }
}

#[async_trait]
impl SharedCache for RedisSharedCache {
    async fn get(&self, key: &str) -> Result<Option<String>, GatewayError> {
        let mut conn = self.redis.conn();
        self.redis
            .run(
                "get",
                redis::cmd("GET").arg(self.key(key)).query_async(&mut conn),
            )
            .await
    }

    async fn put(&self, key: &str, value: &str, ttl: Duration) -> Result<(), GatewayError> {
        let mut conn = self.redis.conn();
        self.redis
            .run(
                "set",
                redis::cmd("SET")
                    .arg(self.key(key))
                    .arg(value)
                    .arg("PX")
                    .arg(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1))
                    .query_async::<()>(&mut conn),
            )
            .await
    }

    async fn delete(&self, keys: &[String]) -> Result<(), GatewayError> {
        let mut conn = self.redis.conn();
        // One key per command: on a cluster the keys live in different slots.
        for key in keys {
            self.redis
                .run(
                    "del",
                    redis::cmd("DEL")
                        .arg(self.key(key))
                        .query_async::<i64>(&mut conn),
                )
                .await?;
        }
        Ok(())
    }
}
